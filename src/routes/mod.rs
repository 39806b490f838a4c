//! Thin actix handlers, one file per resource, and the one function that registers them all
//! (used by `serve` and by the tests alike).

pub mod api;
pub mod body;
pub mod forward_auth;
pub mod health;
pub mod jwks;
pub mod leaks;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod preferences;
pub mod registry_events;
pub mod requests;
pub mod restrictions;
pub mod route_list;
pub mod token;
pub mod token_lifecycle;
pub mod ui;
pub mod workload_identities;

use actix_web::web;

use route_list::{ListedRoute, RouteList};

/// Every route but `/metrics` (see [`configure_metrics`]).
pub fn configure(config: &mut web::ServiceConfig) {
    let mut listed = Vec::new();
    register(&mut RouteList::new(config, &mut listed));
}

/// What [`configure`] registers: every pattern with its methods.
pub fn listed_routes() -> Vec<ListedRoute> {
    let mut listed = Vec::new();
    let _app = actix_web::App::new().configure(|config| {
        register(&mut RouteList::new(config, &mut listed));
    });
    listed
}

fn register(routes: &mut RouteList<'_>) {
    routes
        .resource("/jwt/auth")
        .get(token::get_token)
        .post(token::post_token)
        .done();
    routes
        .resource("/.well-known/jwks.json")
        .get(jwks::jwks)
        .done();
    // Any method: nginx's auth_request sub-request keeps the original one.
    routes
        .resource("/-/forward-auth")
        .any(forward_auth::forward_auth)
        .done();
    routes.resource("/-/health").get(health::health).done();
    routes
        .resource("/-/readiness")
        .get(health::readiness)
        .done();
    // Before `api`: its `/api/v4/{kind}/{id}` would take this path.
    routes
        .resource("/api/v4/container_registry_event/events")
        .post(registry_events::receive)
        .done();
    api::register(routes);
    leaks::register_reports(routes);
    oauth::register(routes);
    // Last: its `/{project path}/-/...` patterns must not shadow anything above.
    ui::register(routes);
}

/// `/metrics`: on the main listener, or alone on `metrics_listen` when that is set.
pub fn configure_metrics(config: &mut web::ServiceConfig) {
    config.route("/metrics", web::get().to(metrics::metrics));
}
