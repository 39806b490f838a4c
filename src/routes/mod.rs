//! Thin actix handlers, one file per resource, and the one function that registers them all
//! (used by `serve` and by the tests alike).

pub mod api;
pub mod body;
pub mod forward_auth;
pub mod health;
pub mod jwks;
pub mod metrics;
pub mod oauth;
pub mod observe;
pub mod token;
pub mod ui;
pub mod workload_identities;

use actix_web::web;

/// Every route but `/metrics` (see [`configure_metrics`]).
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/jwt/auth")
                .route(web::get().to(token::get_token))
                .route(web::post().to(token::post_token)),
        )
        .route("/.well-known/jwks.json", web::get().to(jwks::jwks))
        // Any method: nginx's auth_request sub-request keeps the original one.
        .route(
            "/-/forward-auth",
            web::route().to(forward_auth::forward_auth),
        )
        .route("/-/health", web::get().to(health::health))
        .route("/-/readiness", web::get().to(health::readiness))
        .configure(api::configure)
        .configure(oauth::configure)
        // Last: its `/{project path}/-/...` patterns must not shadow anything above.
        .configure(ui::configure);
}

/// `/metrics`: on the main listener, or alone on `metrics_listen` when that is set.
pub fn configure_metrics(config: &mut web::ServiceConfig) {
    config.route("/metrics", web::get().to(metrics::metrics));
}
