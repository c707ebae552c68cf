//! A small fake of the platform for the backend's unit tests: steps 1–6 on one axum
//! server on 127.0.0.1:0, counting requests and failing the ones a test scripts, and an
//! [`InPage`] that sends page requests to it over plain HTTP. (tests/client_douyin_creator.rs
//! checks the wire itself; this checks the backend's steps, records and resumption.)

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::platform::backend::BoxFuture;
use crate::platform::in_page::{InPage, PageMethod, PageReply, PageRequest};
use crate::platform::{PublishError, RetryPolicy};

use super::sts::tests::token_for;
use super::{CreatorSettings, DouyinCreator};

pub(crate) const STORE_URI: &str = "tos-cn/obj";
/// The cover image's `StoreUri` and `Uri` (§12).
pub(crate) const IMAGE_URI: &str = "tos-cn-i-jm8ajry58r/cover1";

/// One request as the fake saw it: call, path and query, headers, body.
pub(crate) type Seen = (String, String, Vec<(String, String)>, Bytes);

/// What the fake saw and what it is told to refuse.
#[derive(Default)]
pub(crate) struct Fake {
    /// Requests by call name (`auth`, `apply`, `init`, `part:N`, `finish`, `commit`, …).
    pub calls: Mutex<HashMap<String, usize>>,
    /// Statuses (with a body) a call answers before it works, by call name.
    pub fail: Mutex<HashMap<String, VecDeque<(u16, serde_json::Value)>>>,
    pub parts: Mutex<BTreeMap<u32, Bytes>>,
    /// How many uploads were applied for; each gets its own vid.
    vids: AtomicUsize,
    pub finished: Mutex<Option<Bytes>>,
    pub reloads: AtomicUsize,
    /// The ImageX requests (§12) as received: call, path and query, headers, body.
    pub images: Mutex<Vec<Seen>>,
}

impl Fake {
    pub(crate) fn count(&self, call: &str) -> usize {
        self.calls.lock().unwrap().get(call).copied().unwrap_or(0)
    }

    pub(crate) fn fail(&self, call: &str, status: u16, body: serde_json::Value) {
        self.fail
            .lock()
            .unwrap()
            .entry(call.into())
            .or_default()
            .push_back((status, body));
    }
}

fn reply(status: u16, body: serde_json::Value) -> Response {
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        axum::Json(body),
    )
        .into_response()
}

async fn handle(
    State((fake, addr)): State<(Arc<Fake>, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let call = match uri.path() {
        "/web/api/media/upload/auth/v5/" => "auth".to_owned(),
        "/" if q("Action") == "ApplyUploadInner" => "apply".to_owned(),
        "/" if q("Action") == "ApplyImageUpload" => "image_apply".to_owned(),
        "/" if q("Action") == "CommitImageUpload" => "image_commit".to_owned(),
        p if p.starts_with("/tos-cn-i-") => "image_put".to_owned(),
        "/" => "commit".to_owned(),
        "/web/api/media/aweme/create_v2/" => "create".to_owned(),
        "/janus/douyin/creator/pc/work_list" => "work_list".to_owned(),
        _ => match q("phase").as_str() {
            "transfer" => format!("part:{}", q("part_number")),
            phase => phase.to_owned(),
        },
    };
    *fake.calls.lock().unwrap().entry(call.clone()).or_default() += 1;
    if call.starts_with("image_") {
        let pairs = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let target = uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default();
        let seen = (call.clone(), target, pairs, body.clone());
        fake.images.lock().unwrap().push(seen);
    }
    let scripted = fake
        .fail
        .lock()
        .unwrap()
        .get_mut(&call)
        .and_then(VecDeque::pop_front);
    if let Some((status, body)) = scripted {
        return reply(status, body);
    }
    match call.as_str() {
        "auth" => {
            let auth = json!({"AccessKeyID": "AK", "SecretAccessKey": "SK",
                "SessionToken": token_for("42"), "ExpiredTime": "2099-01-01T00:00:00Z"});
            reply(200, json!({"status_code": 0, "auth": auth.to_string()}))
        }
        "apply" => {
            let n = fake.vids.fetch_add(1, Ordering::SeqCst) + 1;
            reply(
                200,
                json!({"Result": {"InnerUploadAddress": {"UploadNodes": [{"Vid": format!("v{n}"),
                "UploadHost": addr, "StoreInfos": [{"StoreUri": STORE_URI, "Auth": "TOSAUTH"}],
                "SessionKey": format!("sk{n}")}]}}}),
            )
        }
        "init" => reply(200, json!({"code": 2000, "data": {"uploadid": "U"}})),
        c if c.starts_with("part:") => {
            let n: u32 = q("part_number").parse().unwrap();
            let crc = format!("{:08x}", crc32fast::hash(&body));
            fake.parts.lock().unwrap().insert(n, body);
            reply(200, json!({"code": 2000, "data": {"crc32": crc}}))
        }
        "finish" => {
            let all: Vec<u8> = fake
                .parts
                .lock()
                .unwrap()
                .values()
                .flat_map(|b| b.iter().copied())
                .collect();
            *fake.finished.lock().unwrap() = Some(Bytes::from(all));
            reply(200, json!({"code": 2000, "data": {"key": STORE_URI}}))
        }
        "commit" => {
            let vid = format!("v{}", fake.vids.load(Ordering::SeqCst));
            reply(
                200,
                json!({"Result": {"Results": [{"Vid": vid, "PosterUri": "poster",
                "VideoMeta": {"Width": 1080, "Height": 1920, "Duration": 1.0}}]}}),
            )
        }
        "image_apply" => reply(
            200,
            json!({"Result": {"UploadAddress": {"UploadHosts": [addr], "SessionKey": "isk",
            "StoreInfos": [{"StoreUri": IMAGE_URI, "Auth": "IMGAUTH"}]}}}),
        ),
        "image_put" => {
            let crc = format!("{:08x}", crc32fast::hash(&body));
            reply(
                200,
                json!({"success": 0, "error": {"code": 200, "error": "Success"}, "payload": {"hash": crc}}),
            )
        }
        "image_commit" => reply(
            200,
            json!({"Result": {"Results": [{"Uri": IMAGE_URI, "UriStatus": 2000}],
            "PluginResult": [{"ImageUri": IMAGE_URI, "ImageWidth": 720, "ImageHeight": 1280}]}}),
        ),
        "create" => reply(200, json!({"status_code": 0, "item_id": "123"})),
        "work_list" => reply(
            200,
            json!({"status_code": 0, "aweme_list": [], "has_more": false}),
        ),
        _ => reply(404, json!({})),
    }
}

/// The test page: requests go to the fake over plain HTTP; reloads are counted.
pub(crate) struct Page {
    http: reqwest::Client,
    fake: Arc<Fake>,
}

impl InPage for Page {
    fn reload<'a>(&'a self, _account: &'a str) -> BoxFuture<'a, Result<(), PublishError>> {
        self.fake.reloads.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }

    fn fetch<'a>(
        &'a self,
        _account: &'a str,
        request: PageRequest,
    ) -> BoxFuture<'a, Result<PageReply, PublishError>> {
        Box::pin(async move {
            let req = match request.method {
                PageMethod::Get => self.http.get(request.url),
                PageMethod::Post => self.http.post(request.url),
            };
            let req = match request.body {
                Some(body) => req.body(body),
                None => req,
            };
            let resp = req.send().await.map_err(|e| PublishError::Transient {
                reason: e.to_string(),
                retry_after: None,
            })?;
            let status = resp.status().as_u16();
            let body = resp.bytes().await.unwrap_or_default().to_vec();
            Ok(PageReply {
                status,
                headers: Vec::new(),
                body,
            })
        })
    }
}

/// A running fake and a client for it (one part at a time, so tests know the order).
pub(crate) async fn start() -> (Arc<Fake>, DouyinCreator) {
    let fake = Arc::new(Fake::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::disable())
        .with_state((fake.clone(), addr.to_string()));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let base: reqwest::Url = format!("http://{addr}").parse().unwrap();
    let page = Arc::new(Page {
        http: reqwest::Client::new(),
        fake: fake.clone(),
    });
    let client = DouyinCreator::new(
        CreatorSettings {
            creator_url: base.clone(),
            vod_url: base.clone(),
            imagex_url: base,
            upload_scheme: "http".into(),
            timeout: Duration::from_secs(20),
            retry: RetryPolicy {
                attempts: 1,
                initial: Duration::from_millis(1),
                max: Duration::from_millis(1),
            },
            max_rate: None,
            parallel_parts: 1,
        },
        page,
    )
    .unwrap();
    (fake, client)
}
