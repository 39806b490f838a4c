//! Request bodies, read only where a handler needs one and only after what can be checked
//! without it (credentials in headers, permissions) was checked. Every read is bounded twice:
//! in size (an announced `Content-Length` over the limit is refused before a byte is read)
//! and in time (actix-web bounds how long the request head may take, not the body).

use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::web::{self, Bytes};

use crate::error::Error;

/// The whole body, at most `limit` bytes, received within `deadline`.
pub async fn read_limited(
    headers: &HeaderMap,
    payload: web::Payload,
    limit: usize,
    deadline: Duration,
) -> Result<Bytes, Error> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if announced.is_some_and(|length| length > limit as u64) {
        return Err(Error::PayloadTooLarge(limit));
    }
    match tokio::time::timeout(deadline, payload.to_bytes_limited(limit)).await {
        Err(_) => Err(Error::RequestTimeout(deadline)),
        Ok(Err(_)) => Err(Error::PayloadTooLarge(limit)),
        Ok(Ok(Err(_))) => Err(Error::InvalidRequest(
            "the request body is incomplete".into(),
        )),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}
