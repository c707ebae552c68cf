//! One POST of one event to one sink, with its own client and time limits: the body in
//! the sink's format, `X-Dropcast-Event` and `X-Dropcast-Id` (the event id, the same on
//! every redelivery), and `X-Dropcast-Signature` when the sink has a secret. Errors name
//! the status or the network failure, never the URL (it may hold a token).

use std::time::Duration;

use crate::config::NotifySink;

use super::event::Event;
use super::format::render;
use super::sign::{SIGNATURE_HEADER, signature};

/// The header naming the event kind.
pub const EVENT_HEADER: &str = "X-Dropcast-Event";
/// The header carrying the event id.
pub const ID_HEADER: &str = "X-Dropcast-Id";

/// How long one delivery may take in all (a receiver that hangs holds nothing else up).
pub(crate) const SEND_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a delivery did not take.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    #[error("the receiver answered HTTP {0}")]
    Status(u16),
    #[error("{0}")]
    Network(String),
}

/// The notification client (its own: a slow receiver never holds a platform connection).
#[derive(Clone)]
pub(crate) struct Sender {
    client: reqwest::Client,
}

impl Sender {
    pub(crate) fn new() -> Result<Sender, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dropcast/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot make the notification client: {}", chain(&e)))?;
        Ok(Sender { client })
    }

    /// POSTs `event` (whose stored JSON is `json`) to `sink`; the status when it is 2xx.
    pub(crate) async fn send(
        &self,
        sink: &NotifySink,
        event: &Event,
        json: &str,
    ) -> Result<u16, SendError> {
        let body = render(sink.format, event, json);
        let mut request = self
            .client
            .post(sink.url.clone())
            .header(reqwest::header::CONTENT_TYPE, body.content_type)
            .header(EVENT_HEADER, event.event.as_str())
            .header(ID_HEADER, &event.id);
        for (name, value) in &body.headers {
            request = request.header(*name, value);
        }
        if let Some(secret) = &sink.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body.bytes));
        }
        let answer = request
            .body(body.bytes)
            .send()
            .await
            .map_err(|e| SendError::Network(chain(&e)))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            Ok(status)
        } else {
            Err(SendError::Status(status))
        }
    }
}

/// reqwest's error and its causes, without the URL.
fn chain(e: &reqwest::Error) -> String {
    let mut words = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        "the request failed".to_owned()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !text.contains("://") && !words.contains(&text) {
            words.push_str(": ");
            words.push_str(&text);
        }
        source = s.source();
    }
    words
}
