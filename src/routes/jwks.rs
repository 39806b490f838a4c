//! `GET /.well-known/jwks.json`: every configured public key with its RFC 7638 thumbprint as
//! `kid`, for registry 3.x's `auth.token.jwks` option.

use actix_web::{web, HttpResponse};

use crate::state::AppState;

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=300"))
        .json(state.keys.current().jwks())
}
