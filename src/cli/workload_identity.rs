//! `regauth workload-identity create|list|delete`, through the same service as the API
//! (audited as `cli:<OS user>`).

use chrono::Utc;

use super::store::open_store;
use super::WorkloadIdentityCommand;
use crate::config::Settings;
use crate::domain::text::printable;
use crate::domain::workload_identity::{Conditions, Expected, WorkloadIdentityRequest};
use crate::service::caller::Caller;
use crate::service::workload_identity;
use crate::views;

/// `CLAIM=VALUE` flags as conditions: a claim given twice or more is an any-of.
fn parse_conditions(flags: &[String]) -> anyhow::Result<Conditions> {
    let mut conditions = Conditions::new();
    for flag in flags {
        let Some((claim, value)) = flag.split_once('=') else {
            anyhow::bail!("--condition {flag:?} is not CLAIM=VALUE");
        };
        let claim = claim.trim().to_owned();
        let value = value.to_owned();
        let merged = match conditions.remove(&claim) {
            None => Expected::One(value),
            Some(Expected::One(first)) => Expected::AnyOf(vec![first, value]),
            Some(Expected::AnyOf(mut values)) => {
                values.push(value);
                Expected::AnyOf(values)
            }
        };
        conditions.insert(claim, merged);
    }
    Ok(conditions)
}

pub async fn run(settings: &Settings, command: WorkloadIdentityCommand) -> anyhow::Result<()> {
    let store = open_store(settings).await?;
    let caller = Caller::operator();
    match command {
        WorkloadIdentityCommand::Create {
            owner,
            name,
            issuer,
            audience,
            conditions,
            scopes,
            max_ttl,
            allow_from,
            json,
        } => {
            let owner = owner.find(store.as_ref()).await?;
            let request = WorkloadIdentityRequest {
                name,
                issuer,
                audience,
                conditions: parse_conditions(&conditions)?,
                scopes: vec![scopes],
                max_ttl,
                ip_restriction_ranges: allow_from,
            };
            let created = workload_identity::create(
                store.as_ref(),
                &caller,
                &owner,
                request,
                &settings.oidc_issuers,
                Utc::now(),
            )
            .await?;
            for warning in &created.warnings {
                eprintln!("warning: {warning}");
            }
            if json {
                super::print_json(&views::WorkloadIdentityView::new(&created.policy))?;
            } else {
                println!("id:       {}", created.policy.id);
                println!("username: {}", created.policy.username());
                println!("scopes:   {}", created.policy.scopes.names().join(","));
                println!("Jobs log in with this username and their OIDC token as password.");
            }
        }
        WorkloadIdentityCommand::List { owner, json } => {
            let owner = owner.find(store.as_ref()).await?;
            let policies = workload_identity::list(store.as_ref(), &caller, &owner).await?;
            if json {
                let list: Vec<_> = policies
                    .iter()
                    .map(views::WorkloadIdentityView::new)
                    .collect();
                super::print_json(&list)?;
            } else {
                println!(
                    "{:<6} {:<24} {:<24} {:<40} SCOPES",
                    "ID", "NAME", "USERNAME", "ISSUER"
                );
                for policy in &policies {
                    println!(
                        "{:<6} {:<24} {:<24} {:<40} {}",
                        policy.id,
                        printable(&policy.name),
                        policy.username(),
                        printable(&policy.issuer),
                        policy.scopes.names().join(",")
                    );
                }
            }
        }
        WorkloadIdentityCommand::Delete { owner, id } => {
            let owner = owner.find(store.as_ref()).await?;
            workload_identity::delete(store.as_ref(), &caller, &owner, id, Utc::now()).await?;
            println!("deleted workload identity {id}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_claims_become_any_of() {
        let conditions = parse_conditions(&[
            "project_id=20".into(),
            "ref=main".into(),
            "ref=release".into(),
            "kubernetes.io.namespace=a=b".into(),
        ])
        .unwrap();
        assert_eq!(conditions["project_id"], Expected::One("20".into()));
        assert_eq!(
            conditions["ref"],
            Expected::AnyOf(vec!["main".into(), "release".into()])
        );
        assert_eq!(
            conditions["kubernetes.io.namespace"],
            Expected::One("a=b".into())
        );
        assert!(parse_conditions(&["novalue".into()]).is_err());
    }
}
