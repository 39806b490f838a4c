//! Request bodies, read only where a handler needs one and only after what can be checked
//! without it (credentials in headers, permissions) was checked. Every read is bounded twice:
//! in size (an announced `Content-Length` over the limit is refused before a byte is read)
//! and in time (actix-web bounds how long the request head may take, not the body).
//!
//! The time bound does not rely on each handler: [`close_after_unread_body`] wraps every
//! request's body in a stream that fails once `request_body_timeout` has passed since the
//! request arrived, so even a reader that forgot [`read_limited`] cannot be held by a client
//! that stops sending (a stalled body held a connection for ever, and `max_connections` of
//! them were an outage).

use std::cell::RefCell;
use std::future::Future as _;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage as _;

use crate::error::Error;
use crate::state::AppState;

/// A management API body: at most `api_body_limit` bytes within `request_body_timeout`. Read
/// only once the caller is known, so nobody without credentials can make the server wait.
pub async fn read_api_body(
    request: &actix_web::HttpRequest,
    payload: actix_web::web::Payload,
    state: &AppState,
) -> Result<actix_web::web::Bytes, Error> {
    let limits = &state.settings.limits;
    read_limited(
        request.headers(),
        payload,
        limits.api_body_limit,
        limits.request_body_timeout,
    )
    .await
}

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
        Ok(Ok(Err(error))) if timed_out(&error) => Err(Error::RequestTimeout(deadline)),
        Ok(Ok(Err(_))) => Err(Error::InvalidRequest(
            "the request body is incomplete".into(),
        )),
        Ok(Ok(Ok(body))) => Ok(body),
    }
}

/// The body stream's own deadline (below) ran out.
fn timed_out(error: &actix_web::Error) -> bool {
    matches!(
        error.as_error::<PayloadError>(),
        Some(PayloadError::Io(io)) if io.kind() == std::io::ErrorKind::TimedOut
    )
}

/// Keeps an unread request body from holding its connection, and bounds how long any reader
/// may wait for one. actix-web drains the rest of a chunked body that a handler dropped (or
/// never took), with no deadline, so a client could stall there for ever. Holding the body's
/// receiver until the response is sent makes it close the connection after the response
/// instead (then `client_disconnect_timeout`).
pub async fn close_after_unread_body(
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<HoldingBody>, actix_web::Error> {
    let timeout = request
        .app_data::<web::Data<AppState>>()
        .map_or(DEFAULT_BODY_TIMEOUT, |state| {
            state.settings.limits.request_body_timeout
        });
    let shared = Rc::new(RefCell::new(request.take_payload()));
    request.set_payload(Payload::Stream {
        payload: Box::pin(SharedPayload {
            payload: Rc::clone(&shared),
            deadline_at: tokio::time::Instant::now() + timeout,
            deadline: None,
        }),
    });
    let response = next.call(request).await?;
    Ok(response.map_body(|_, body| HoldingBody {
        body: body.boxed(),
        _request_body: shared,
    }))
}

/// A response body that keeps the request body's receiver alive until the response was
/// written, which is when actix decides whether the connection goes on.
pub struct HoldingBody {
    body: BoxBody,
    _request_body: Rc<RefCell<Payload>>,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}

/// The body deadline where no `AppState` is registered (never in `serve`).
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What handlers read: the shared receiver, cut off at the body deadline.
struct SharedPayload {
    payload: Rc<RefCell<Payload>>,
    deadline_at: tokio::time::Instant,
    /// The timer, made only when a read has to wait (most requests have no body to wait for).
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl futures_core::Stream for SharedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let polled = match this.payload.try_borrow_mut() {
            Ok(mut payload) => Pin::new(&mut *payload).poll_next(cx),
            // Never borrowed elsewhere while polled; end the stream rather than panic.
            Err(_) => Poll::Ready(None),
        };
        if polled.is_ready() {
            return polled;
        }
        let deadline_at = this.deadline_at;
        let deadline = this
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline_at)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive within request_body_timeout",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}
