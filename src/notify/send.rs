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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};

    use super::*;
    use crate::config::NotifyFormat;
    use crate::notify::event::EventKind;
    use crate::notify::event::EventSet;
    use crate::secret::Secret;

    type Got = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A receiver on 127.0.0.1:0 answering `status`; what it got, and its URL.
    async fn receiver(status: StatusCode) -> (Got, reqwest::Url) {
        let got: Got = Arc::default();
        let sink = Arc::clone(&got);
        let app = axum::Router::new().route(
            "/t",
            axum::routing::post(move |h: HeaderMap, b: Bytes| {
                let sink = Arc::clone(&sink);
                async move {
                    sink.lock().unwrap().push((h, b));
                    status
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/t", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (got, reqwest::Url::parse(&url).unwrap())
    }

    fn sink(url: reqwest::Url, format: NotifyFormat, secret: Option<&str>) -> NotifySink {
        NotifySink {
            url,
            secret: secret.map(Secret::new),
            events: EventSet::ALL,
            format,
        }
    }

    #[tokio::test]
    async fn an_ntfy_post_carries_its_headers_and_the_signature_of_its_exact_body() {
        let (got, url) = receiver(StatusCode::OK).await;
        let mut event = Event::with_id(EventKind::Paused, "id-1".into(), 0);
        event.account = Some("main".into());
        let sender = Sender::new().unwrap();
        let s = sink(url, NotifyFormat::Ntfy, Some("k"));
        assert_eq!(
            sender.send(&s, &event, &event.to_json()).await.unwrap(),
            200
        );
        let (headers, body) = got.lock().unwrap()[0].clone();
        let h = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_owned();
        assert_eq!(h("title"), "dropcast: paused (main)");
        assert_eq!(h("priority"), "4");
        assert_eq!(h("x-dropcast-id"), "id-1");
        assert_eq!(h("x-dropcast-event"), "paused");
        assert_eq!(
            h("x-dropcast-signature"),
            signature(&Secret::new("k"), &body)
        );
        assert!(h("content-type").starts_with("text/plain"));
    }

    #[tokio::test]
    async fn an_unsigned_sink_sends_no_signature_and_a_refusal_is_an_error() {
        let (got, url) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
        let event = Event::with_id(EventKind::Published, "id-2".into(), 0);
        let sender = Sender::new().unwrap();
        let s = sink(url, NotifyFormat::Slack, None);
        let e = sender.send(&s, &event, &event.to_json()).await.unwrap_err();
        assert!(matches!(e, SendError::Status(503)), "{e}");
        let (headers, _) = got.lock().unwrap()[0].clone();
        assert!(headers.get(SIGNATURE_HEADER).is_none());
    }

    #[tokio::test]
    async fn a_network_error_never_names_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = reqwest::Url::parse(&format!("http://127.0.0.1:{port}/TOKEN123")).unwrap();
        let event = Event::with_id(EventKind::Failed, "id-3".into(), 0);
        let e = Sender::new()
            .unwrap()
            .send(&sink(url, NotifyFormat::Json, None), &event, "{}")
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("cannot connect"), "{text}");
        assert!(!text.contains("TOKEN123"), "{text}");
    }
}
