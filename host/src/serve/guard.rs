//! What every request passes before a handler sees it, and what every API
//! answer gets on its way out:
//!
//! - **Bodies** are read here, whole, within `body_timeout` and up to
//!   `max_body` bytes: a body announced larger is refused at once (413), a
//!   client that sends too slowly is cut off (408). Handlers get the bytes.
//! - **`/v1` speaks JSON:** a body of another `Content-Type` gets 415, and an
//!   error the framework answers itself (405, 413, a rejected query) is put
//!   in the API's error format. Every `/v1` answer is `Cache-Control:
//!   no-store` (they carry personal data, keys and link secrets), and a 401
//!   names its scheme in `WWW-Authenticate`.
//! - **Failed authentications** (a wrong key) are throttled per address and
//!   per key prefix: after `auth_failures` (default 20) within [`WINDOW`],
//!   further calls with a key get 429 with `Retry-After` until the window
//!   ends, whether the key is right or not (else the guessing would go on),
//!   and the block is logged. A call with a valid key costs one map lookup
//!   more; a call without a key gets its 401 as always.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State as AxumState};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, State};

/// How long and how much a request may take, from `klar.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From the connection's first byte (or the end of the last answer) to
    /// the end of the request's headers; also how long an idle keep-alive
    /// connection stays open.
    pub header_timeout: Duration,
    /// To read a request's whole body.
    pub body_timeout: Duration,
    /// The largest body, in bytes: enough for a batch of 10,000 contacts.
    pub max_body: usize,
    /// Wrong keys from one address (or with one key prefix) within
    /// [`WINDOW`] after which klar answers 429.
    pub auth_failures: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_body: 32 * 1024 * 1024,
            auth_failures: 20,
        }
    }
}

/// The window in which failed authentications are counted.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts failed authentications per address and per key prefix.
#[derive(Debug, Default)]
pub struct Throttle {
    seen: Mutex<HashMap<Who, Window>>,
    /// Whether any wrong key was seen: until then (the normal case) a call
    /// takes no lock.
    any: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    Address(IpAddr),
    KeyPrefix(String),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

impl Throttle {
    /// Whether no wrong key was ever seen: then nobody is blocked, and a
    /// call needs no lock (nor the keys of [`who`]).
    fn quiet(&self) -> bool {
        !self.any.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Seconds until `who` may try again, if it is blocked now.
    fn blocked(&self, who: &[Who], limit: u32, now: Instant) -> Option<u64> {
        if self.quiet() {
            return None;
        }
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        who.iter()
            .filter_map(|w| seen.get(w))
            .filter(|w| w.failures >= limit)
            .filter_map(|w| WINDOW.checked_sub(now.duration_since(w.started)))
            .filter(|left| !left.is_zero())
            // Rounded up: a client that waits this long is let in.
            .map(|left| left.as_secs() + u64::from(left.subsec_nanos() > 0))
            .max()
    }

    /// Records a failure; true when it is the one that starts a block.
    fn failed(&self, who: &[Who], limit: u32, now: Instant) -> bool {
        self.any.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // An attacker with many addresses must not grow the map for ever.
        if seen.len() > 100_000 {
            seen.retain(|_, w| now.duration_since(w.started) < WINDOW);
        }
        let mut starts = false;
        for w in who {
            let window = seen.entry(w.clone()).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(window.started) >= WINDOW {
                *window = Window {
                    started: now,
                    failures: 0,
                };
            }
            window.failures += 1;
            starts |= window.failures == limit;
        }
        starts
    }
}

/// Who a call with the key in `authorization` counts for: its address and
/// the first characters of the key (enough to tell keys apart, too few to be
/// worth anything).
fn who(peer: SocketAddr, authorization: &HeaderValue) -> Vec<Who> {
    let mut who = vec![Who::Address(peer.ip())];
    let key = authorization
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    if let Some(key) = key {
        who.push(Who::KeyPrefix(key.chars().take(13).collect()));
    }
    who
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// The middleware: see the module comment.
pub(super) async fn guard(
    AxumState(state): AxumState<State>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with("/v1/");
    let mut response = if api {
        api_call(&state, peer, request, next).await
    } else {
        match read_body(&state.limits, request).await {
            Ok(request) => next.run(request).await,
            Err(refusal) => refusal,
        }
    };
    if api {
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if response.status() == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"klar\""),
            );
        }
        response = in_json(response).await;
    }
    response
}

async fn api_call(state: &State, peer: SocketAddr, request: Request, next: Next) -> Response {
    // Only a wrong key is a failed authentication; a call without one (a
    // client that forgot the header) guesses nothing. The header is kept
    // (a cheap clone) because the request moves on to the handler.
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .filter(|v| v.as_bytes().starts_with(b"Bearer "))
        .cloned();
    let now = Instant::now();
    let limit = state.limits.auth_failures;
    let blocked = match &authorization {
        Some(auth) if !state.throttle.quiet() => {
            state.throttle.blocked(&who(peer, auth), limit, now)
        }
        _ => None,
    };
    if let Some(wait) = blocked {
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_authentications",
            format!("too many calls with an invalid key; try again in {wait} s"),
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    if has_body(&request) && !is_json(&request) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with `Content-Type: application/json`",
        );
    }
    let response = match read_body(&state.limits, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => return refusal,
    };
    let Some(auth) = authorization.filter(|_| response.status() == StatusCode::UNAUTHORIZED) else {
        return response;
    };
    let who = who(peer, &auth);
    if state.throttle.failed(&who, limit, now) {
        tracing::warn!(
            address = %peer.ip(),
            key_prefix = who.get(1).map_or("", |w| match w {
                Who::KeyPrefix(p) => p.as_str(),
                Who::Address(_) => "",
            }),
            "{limit} failed authentications within {} s: further calls get 429 until the window ends",
            WINDOW.as_secs()
        );
    }
    response
}

fn has_body(request: &Request) -> bool {
    let length = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(n) => n > 0,
        None => request.headers().contains_key(header::TRANSFER_ENCODING),
    }
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body within the limits; the request comes back with it
/// buffered, or the answer that refuses it.
async fn read_body(limits: &Limits, request: Request) -> Result<Request, Response> {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::DELETE
    ) && !has_body(&request)
    {
        return Ok(request);
    }
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than {} MiB; send a batch in parts",
                limits.max_body / (1024 * 1024)
            ),
        )
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limits.max_body as u64) {
        return Err(too_large());
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
        Ok(Err(_)) => Err(too_large()),
        Err(_) => Err(error(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the body did not arrive within {} s",
                limits.body_timeout.as_secs()
            ),
        )),
    }
}

/// An error answer that is not JSON yet (the framework's own: 405, a
/// rejected query or path) in the API's error format, with its text as the
/// message.
async fn in_json(response: Response) -> Response {
    let status = response.status();
    let allow = response.headers().get(header::ALLOW).cloned();
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    if json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    } else {
        text
    };
    // A 405 keeps the methods it allows.
    let mut answer = error(status, code, message);
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_failures_block_an_address_for_the_rest_of_the_minute() {
        let throttle = Throttle::default();
        let who = [Who::Address(IpAddr::from([192, 0, 2, 1]))];
        let other = [Who::Address(IpAddr::from([192, 0, 2, 2]))];
        let t0 = Instant::now();
        for n in 1..20 {
            assert!(!throttle.failed(&who, 20, t0), "{n}");
            assert_eq!(throttle.blocked(&who, 20, t0), None);
        }
        assert!(throttle.failed(&who, 20, t0), "the 20th starts the block");
        let later = t0 + Duration::from_secs(15);
        assert_eq!(throttle.blocked(&who, 20, later), Some(45));
        assert_eq!(
            throttle.blocked(&other, 20, t0),
            None,
            "another address is free"
        );
        assert_eq!(
            throttle.blocked(&who, 20, t0 + WINDOW),
            None,
            "the window ended"
        );
        assert!(
            !throttle.failed(&who, 20, t0 + WINDOW),
            "a new window counts from 1"
        );
    }
}
