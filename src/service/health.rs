//! Readiness: can this process serve token requests now? The database answers and the
//! signing key signs. `routes::health` renders the answer.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::error::Report;
use crate::jwt::KeyRing;
use crate::service::registry_token::sign;
use crate::store::Store;

/// How long the database may take to answer. Within a second, whatever the pool's acquire
/// timeout: a load balancer polling readiness must learn of an outage at once.
const DATABASE_WAIT: Duration = Duration::from_millis(500);

/// The outcome of each check: `Err` holds why it fails (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub database: Result<(), String>,
    pub signing_key: Result<(), String>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.database.is_ok() && self.signing_key.is_ok()
    }
}

/// Runs both checks.
pub async fn readiness(store: &dyn Store, keys: &Arc<KeyRing>) -> Readiness {
    let database = match tokio::time::timeout(DATABASE_WAIT, store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Report(&error).to_string()),
        Err(_) => Err("no answer within 0.5 s".to_owned()),
    };
    // Off the executor for RSA keys, like every signature.
    let signing_key = match sign(keys, json!({ "readiness": true })).await {
        Ok(_) => Ok(()),
        Err(error) => Err(Report(&error).to_string()),
    };
    Readiness {
        database,
        signing_key,
    }
}
