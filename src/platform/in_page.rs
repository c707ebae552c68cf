//! Requests made from inside a logged-in platform page (docs/douyin-creator.md §0): the
//! page's own script signs them, so they go out as `fetch` evaluated in the page over the
//! Chrome DevTools Protocol. Backends that need it hold an [`InPage`]; the browser module
//! implements it, tests may implement it over plain HTTP.

use super::PublishError;
use super::backend::BoxFuture;

/// One request to send from the page (`fetch(url, {method, headers, body, credentials:
/// 'include'})`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub method: PageMethod,
    /// Absolute, on the page's own site.
    pub url: reqwest::Url,
    /// Extra headers (the page adds its own signatures).
    pub headers: Vec<(String, String)>,
    /// A JSON or form body, as text.
    pub body: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageMethod {
    Get,
    Post,
}

/// What the page's `fetch` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageReply {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl PageReply {
    /// The first header named `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A logged-in page of one account, to send requests from.
pub trait InPage: Send + Sync {
    /// Loads the upload page afresh (its signing state does not last), so that the next
    /// requests are signed by a new page load. A page that shows a login instead is
    /// `PublishError::AuthExpired { what: Expired::Cookie, .. }`.
    fn reload<'a>(&'a self, account: &'a str) -> BoxFuture<'a, Result<(), PublishError>>;

    /// Sends `request` from the account's page. Transport failures inside the page are
    /// `PublishError::Transient`; the HTTP status and body are the caller's to judge.
    fn fetch<'a>(
        &'a self,
        account: &'a str,
        request: PageRequest,
    ) -> BoxFuture<'a, Result<PageReply, PublishError>>;

    /// Lets go of `account`'s page for now (a browser: closed cleanly), to be opened again
    /// by the next request.
    fn release<'a>(&'a self, _account: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// Closes every page and what holds it (a browser: cleanly, so its profile keeps the
    /// session), when the program stops.
    fn close_all(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
