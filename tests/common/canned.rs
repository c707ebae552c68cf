//! A canned server for client tests: a tiny axum server on 127.0.0.1:0 that records every
//! request it is sent and answers with scripted replies, or with a handler the test gives.

use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn query(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_str(self.uri.query().unwrap_or("")).unwrap()
    }

    pub fn query_value(&self, key: &str) -> Option<String> {
        self.query()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }
}

/// A scripted answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Never answer at all.
    pub hang: bool,
}

/// `body` as JSON with this status.
pub fn reply(status: u16, body: Value) -> Reply {
    raw(status, &body.to_string())
}

/// `body` as JSON with 200.
pub fn ok(body: Value) -> Reply {
    reply(200, body)
}

/// `body` as it is, labelled JSON, with this status.
pub fn raw(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_owned(),
        hang: false,
    }
}

/// No answer, ever: the request stays open.
pub fn hang() -> Reply {
    Reply {
        hang: true,
        ..raw(200, "")
    }
}

/// JSON with this status, for handlers.
pub fn json_reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
}

type Answer = Arc<dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

#[derive(Clone)]
struct Shared {
    replies: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Option<Answer>,
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        uri,
        headers,
        body,
    };
    shared.seen.lock().unwrap().push(seen.clone());
    if let Some(answer) = &shared.answer {
        return answer(seen).await;
    }
    let next = shared.replies.lock().unwrap().pop_front();
    let Some(r) = next else {
        return (StatusCode::IM_A_TEAPOT, "no canned reply left").into_response();
    };
    if r.hang {
        std::future::pending::<()>().await;
    }
    let mut resp = (StatusCode::from_u16(r.status).unwrap(), r.body).into_response();
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in r.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// The running server: its address, what it was sent, the replies still to give.
pub struct Server {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Server {
    /// Answers each request with the next of `replies` (418 when none is left).
    pub async fn start(replies: Vec<Reply>) -> Server {
        let server = Self::serve(None).await;
        server.shared.replies.lock().unwrap().extend(replies);
        server
    }

    /// Answers each request with `answer(seen)`; `make` is given the server's address.
    pub async fn answering<A, F>(make: impl FnOnce(SocketAddr) -> A) -> Server
    where
        A: Fn(Seen) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let answer = make(listener.local_addr().unwrap());
        let answer: Answer = Arc::new(move |seen| Box::pin(answer(seen)));
        Self::serve_on(listener, Some(answer))
    }

    async fn serve(answer: Option<Answer>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve_on(listener, answer)
    }

    fn serve_on(listener: tokio::net::TcpListener, answer: Option<Answer>) -> Server {
        let shared = Shared {
            replies: Arc::default(),
            seen: Arc::default(),
            answer,
        };
        let app = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, shared }
    }

    pub fn push(&self, r: Reply) {
        self.shared.replies.lock().unwrap().push_back(r);
    }

    /// Every request so far, in the order they arrived.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Forgets the requests seen so far.
    pub fn forget(&self) {
        self.shared.seen.lock().unwrap().clear();
    }
}
