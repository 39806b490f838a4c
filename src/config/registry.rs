//! The registries regauth serves: their service names, and the notifications the container
//! registry sends back (`registry_events_secret`, `config/registry_events.rs`).

use serde::{Deserialize, Serialize};

use super::{invalid, RegistryEventsSecret, SettingsError};

#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Raw {
    /// Service name of the container registry.
    registry_service: String,
    /// Service name of the virtual registry.
    virtual_registry_service: String,
    /// The whole `Authorization` value the registry's notifications carry to
    /// `/api/v4/container_registry_event/events` (at least 16 printable characters; only its
    /// SHA-256 is kept). Not set: the receiver is off.
    registry_events_secret: Option<String>,
    /// Days after which a network (/24, /64) a deploy token has not acted from counts as new
    /// again: its use is recorded and warned of; `0` turns the warning off.
    registry_new_address_days: u32,
}

impl Default for Raw {
    fn default() -> Self {
        Raw {
            registry_service: "container_registry".into(),
            virtual_registry_service: "dependency_proxy".into(),
            registry_events_secret: None,
            registry_new_address_days: 30,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// The container registry's service name.
    pub service: String,
    /// The virtual registry's (dependency proxy's) service name.
    pub virtual_service: String,
    /// The `Authorization` header the registry's notifications carry; `None` turns the
    /// receiver (`/api/v4/container_registry_event/events`) off.
    pub events_secret: Option<RegistryEventsSecret>,
    /// A deploy token acting at the registry from a network (/24, /64) it has not used in
    /// this many days is a new address, recorded and warned of; 0 turns that off.
    pub new_address_days: u32,
}

impl Raw {
    pub(super) fn validate(self) -> Result<RegistrySettings, SettingsError> {
        for (name, value) in [
            ("registry_service", &self.registry_service),
            ("virtual_registry_service", &self.virtual_registry_service),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(name, "must not be empty"));
            }
        }
        if self.registry_service == self.virtual_registry_service {
            return Err(invalid(
                "virtual_registry_service",
                "must differ from registry_service",
            ));
        }
        let events_secret = self
            .registry_events_secret
            .as_deref()
            .filter(|value| !value.is_empty())
            .map(RegistryEventsSecret::parse)
            .transpose()
            .map_err(|message| invalid("registry_events_secret", message))?;
        if self.registry_new_address_days > 3650 {
            return Err(invalid(
                "registry_new_address_days",
                "at most 3650 (0 turns the new-address warning off)",
            ));
        }
        Ok(RegistrySettings {
            service: self.registry_service,
            virtual_service: self.virtual_registry_service,
            events_secret,
            new_address_days: self.registry_new_address_days,
        })
    }
}
