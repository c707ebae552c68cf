//! Steps 1, 5 and 6 (docs/douyin-creator.md §1, §5, §6): requests to `creator_url` sent
//! from inside the account's logged-in creator page, and their answers sorted into error
//! classes. An empty 403 (the page's guard refused the signature) reloads the page once and
//! tries again; a second one, `status_code` 8 or 110, or a risk check pause the account.

use std::time::{SystemTime, UNIX_EPOCH};

use super::sts::{self, StsCredentials};
use super::vod::CommittedVideo;
use super::{
    Call, DouyinCreator, bad_answer, common_status, endpoint, parse, post, rejected, wire,
    with_query,
};
use crate::domain::{Post, PostDraft};
use crate::platform::backend::Created;
use crate::platform::backoff::retrying;
use crate::platform::in_page::{PageMethod, PageReply, PageRequest};
use crate::platform::{Expired, PublishError};

/// `run dropcast login` (the lead's messages name the account).
const LOGIN_HINT: &str = "the account's browser session needs `dropcast login`";

fn cookie_expired(call: Call, why: impl std::fmt::Display) -> PublishError {
    PublishError::AuthExpired {
        what: Expired::Cookie,
        reason: format!("{}: {why}; {LOGIN_HINT}", call.name()),
    }
}

/// The page's guard refused the request: 403 with nothing in the body.
fn guard_refused(reply: &PageReply) -> bool {
    reply.status == 403 && reply.body.iter().all(u8::is_ascii_whitespace)
}

/// A creator answer: risk check, HTTP status, then `status_code`, then the body as `T`.
/// `status_code` 2 "video already published" is left to the caller (it reads it first).
fn creator_answer<T: serde::de::DeserializeOwned>(
    call: Call,
    reply: &PageReply,
) -> Result<T, PublishError> {
    if reply.header(wire::H_RISK_DECISION).is_some() {
        return Err(cookie_expired(
            call,
            "a risk check wants the user (x-tt-verify-passport-decision)",
        ));
    }
    common_status(call, reply.status, None)?;
    if reply.status == 401 || guard_refused(reply) {
        return Err(cookie_expired(
            call,
            format_args!("HTTP {} from the page's guard", reply.status),
        ));
    }
    let status: Option<wire::StatusOnly> = serde_json::from_slice(&reply.body).ok();
    match status {
        Some(s) if s.status_code == wire::STATUS_OK && (200..300).contains(&reply.status) => {
            parse(call, &reply.body)
        }
        Some(s) if s.status_code == wire::STATUS_NOT_LOGGED_IN => Err(cookie_expired(
            call,
            format_args!("not logged in (status_code {})", s.status_code),
        )),
        Some(s) if s.status_code == wire::STATUS_VERIFY_FAILED => Err(cookie_expired(
            call,
            format_args!("verification failed (status_code {})", s.status_code),
        )),
        Some(s) if s.status_code != wire::STATUS_OK => Err(rejected(
            call,
            format_args!(
                "status_code {}: {}",
                s.status_code,
                super::redacted(s.status_msg.as_deref(), &[])
            ),
        )),
        _ if !(200..300).contains(&reply.status) => {
            Err(rejected(call, format_args!("HTTP {}", reply.status)))
        }
        _ => Err(parse::<wire::StatusOnly>(call, &reply.body)
            .err()
            .unwrap_or_else(|| bad_answer(call, "no status_code"))),
    }
}

impl DouyinCreator {
    /// Sends `request` from `account`'s page; an empty 403 reloads the page and sends it
    /// once more (its signing state does not last). A fetch that failed inside the page
    /// leaves create_v2's outcome unknown.
    async fn in_page(
        &self,
        call: Call,
        account: &str,
        request: PageRequest,
    ) -> Result<PageReply, PublishError> {
        let page = &self.inner.page;
        tracing::debug!(step = call.name(), "request from the page");
        let lost = |e: PublishError| match e {
            PublishError::Transient { reason, .. } if call.lost_answer_is_unknown() => {
                PublishError::Unknown {
                    reason: format!("{}: {reason}", call.name()),
                }
            }
            e => e,
        };
        let reply = page.fetch(account, request.clone()).await.map_err(lost)?;
        if !guard_refused(&reply) || reply.header(wire::H_RISK_DECISION).is_some() {
            return Ok(reply);
        }
        tracing::info!(
            step = call.name(),
            "the page's guard refused the request; loading the page afresh and trying once more"
        );
        page.reload(account).await?;
        page.fetch(account, request).await.map_err(lost)
    }

    fn page_get<K: AsRef<str>, V: AsRef<str>>(&self, path: &str, query: &[(K, V)]) -> PageRequest {
        PageRequest {
            method: PageMethod::Get,
            url: with_query(endpoint(&self.inner.creator_url, path), query),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Loads `account`'s upload page afresh (once per publish, docs/douyin-creator.md §0).
    pub async fn reload_page(&self, account: &str) -> Result<(), PublishError> {
        self.inner.page.reload(account).await
    }

    /// Step 1: the STS credentials (and uploader id) for `account`. Also the login check:
    /// `status_code` 0 means the session works.
    pub async fn credentials(&self, account: &str) -> Result<StsCredentials, PublishError> {
        let call = Call::Auth;
        retrying(&self.inner.retry, call.name(), || async {
            let req = self.page_get::<&str, &str>(wire::PATH_UPLOAD_AUTH, &[]);
            let reply = self.in_page(call, account, req).await?;
            let answer: wire::AuthAnswer = creator_answer(call, &reply)?;
            sts::parse_auth(answer.auth.as_deref()).map_err(|e| bad_answer(call, e))
        })
        .await
    }

    /// Step 5: create the post. Retried only on answers that prove nothing was made
    /// (429, 5xx, the guard's empty 403 after a reload); a lost or unreadable answer is
    /// `Unknown`. "video already published" is [`Created::AlreadyPublished`].
    pub async fn create(
        &self,
        account: &str,
        video: &CommittedVideo,
        draft: &PostDraft,
        extras: &wire::CreateExtras,
    ) -> Result<Created, PublishError> {
        let call = Call::Create;
        let hashtags = draft
            .entities
            .iter()
            .filter(|e| matches!(e.kind, crate::domain::EntityKind::Hashtag { .. }))
            .count();
        if hashtags > wire::MAX_HASHTAGS {
            return Err(rejected(
                call,
                format_args!(
                    "{hashtags} hashtags; Douyin takes at most {}",
                    wire::MAX_HASHTAGS
                ),
            ));
        }
        let poster = video.poster.as_deref().unwrap_or(&video.store_uri);
        let body = wire::create_body(
            &wire::CreateVideo {
                vid: &video.vid,
                poster,
                width: video.width,
                height: video.height,
            },
            draft,
            extras,
        )
        .and_then(|b| serde_json::to_string(&b))
        .map_err(|e| rejected(call, format_args!("cannot encode the body: {e}")))?;
        let request = PageRequest {
            method: PageMethod::Post,
            url: with_query(
                endpoint(&self.inner.creator_url, wire::PATH_CREATE),
                wire::CREATE_QUERY,
            ),
            headers: vec![("content-type".into(), wire::CT_JSON.into())],
            body: Some(body),
        };
        retrying(&self.inner.retry, call.name(), || async {
            let reply = self.in_page(call, account, request.clone()).await?;
            if (200..300).contains(&reply.status)
                && serde_json::from_slice::<wire::StatusOnly>(&reply.body).is_ok_and(|s| {
                    wire::is_already_published(s.status_code, s.status_msg.as_deref())
                })
            {
                return Ok(Created::AlreadyPublished);
            }
            let created: wire::CreateAnswer = creator_answer(call, &reply)?;
            match created.post_id() {
                Some(id) => Ok(Created::Posted(post(id))),
                None => Err(bad_answer(
                    call,
                    "status_code 0 but neither `item_id` nor `aweme_id`",
                )),
            }
        })
        .await
    }

    /// Step 6: the account's post of `vid`, from its work list, newest first. An item
    /// with `video.vid` matches by it alone; one without matches by exact `desc` ==
    /// `text` and `create_time` ≥ `since` rounded down to the second. When nothing
    /// matched and some item had no `vid`, the list cannot prove the post absent:
    /// `Unknown` (the pipeline then never re-sends on its own).
    pub async fn find_post(
        &self,
        account: &str,
        vid: &str,
        text: &str,
        since: SystemTime,
    ) -> Result<Option<Post>, PublishError> {
        let call = Call::WorkList;
        let since = since
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        let mut cursor: Option<i64> = None;
        let mut unprovable = 0usize;
        for _ in 0..wire::WORK_MAX_PAGES {
            let mut query = vec![
                (wire::Q_STATUS, wire::WORK_STATUS_ALL.to_owned()),
                (wire::Q_PAGE_SIZE, wire::WORK_PAGE_SIZE.to_string()),
            ];
            if let Some(c) = cursor {
                query.push((wire::Q_MAX_CURSOR, c.to_string()));
            }
            let request = self.page_get(wire::PATH_WORK_LIST, &query);
            let list: wire::WorkList = retrying(&self.inner.retry, call.name(), || async {
                let reply = self.in_page(call, account, request.clone()).await?;
                creator_answer(call, &reply)
            })
            .await?;
            let (works, more, next) = list.into_page();
            for work in works {
                let listed_vid = work.video.as_ref().and_then(|v| v.vid.as_deref());
                let ours = match listed_vid.filter(|v| !v.is_empty()) {
                    Some(listed) => listed == vid,
                    None => {
                        let same = work.desc.as_deref() == Some(text)
                            && work.create_time.is_some_and(|t| t >= since);
                        if !same {
                            unprovable += 1;
                        }
                        same
                    }
                };
                if ours {
                    return match work.aweme_id.filter(|id| !id.is_empty()) {
                        Some(id) => Ok(Some(post(&id))),
                        None => Err(bad_answer(call, "a listed post has no `aweme_id`")),
                    };
                }
            }
            match next {
                Some(next) if more && Some(next) != cursor => cursor = Some(next),
                _ => break,
            }
        }
        if unprovable > 0 {
            return Err(PublishError::Unknown {
                reason: format!(
                    "{}: {unprovable} listed post(s) carry no video id and none has our text and time, so the list cannot tell whether ours exists",
                    call.name()
                ),
            });
        }
        Ok(None)
    }

    /// §6: the challenge id of hashtag `name`; only an exact `cha_name` match counts.
    /// Who `account`'s session is: its nickname and uid, as the site says.
    pub async fn whoami(&self, account: &str) -> Result<String, PublishError> {
        let call = Call::UserInfo;
        let req = self.page_get::<&str, &str>(wire::PATH_USER_INFO, &[]);
        let reply = self.in_page(call, account, req).await?;
        let info: wire::UserInfo = creator_answer(call, &reply)?;
        let user = info
            .user
            .ok_or_else(|| bad_answer(call, "no `user` in the answer"))?;
        let uid = match user.uid {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(bad_answer(call, "no `user.uid` in the answer")),
        };
        Ok(match user.nickname.filter(|n| !n.is_empty()) {
            Some(nick) => format!("{nick} (uid {uid})"),
            None => format!("uid {uid}"),
        })
    }

    pub async fn challenge_id(
        &self,
        account: &str,
        name: &str,
    ) -> Result<Option<String>, PublishError> {
        let call = Call::ChallengeSug;
        let request = self.page_get(
            wire::PATH_CHALLENGE_SUG,
            &[
                (wire::Q_KEYWORD, name),
                (wire::Q_SOURCE, wire::CHALLENGE_SOURCE),
                (wire::Q_AID, wire::CHALLENGE_AID),
            ],
        );
        let sug: wire::ChallengeSug = retrying(&self.inner.retry, call.name(), || async {
            let reply = self.in_page(call, account, request.clone()).await?;
            // This endpoint may answer without `status_code` (the 2020 shape).
            if (200..300).contains(&reply.status)
                && reply.header(wire::H_RISK_DECISION).is_none()
                && serde_json::from_slice::<wire::StatusOnly>(&reply.body).is_err()
            {
                return parse(call, &reply.body);
            }
            creator_answer(call, &reply)
        })
        .await?;
        Ok(sug
            .sug_list
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.cha_name.as_deref() == Some(name))
            .and_then(|c| c.cid.filter(|id| !id.is_empty())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> PageReply {
        PageReply {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn creator_answers_sort_into_the_pages_classes() {
        let class = |r: PageReply, call| {
            creator_answer::<wire::StatusOnly>(call, &r)
                .err()
                .map(|e| e.class())
        };
        assert_eq!(
            class(reply(200, r#"{"status_code":0}"#), Call::Create),
            None
        );
        for code in [8, 110] {
            let e = creator_answer::<wire::StatusOnly>(
                Call::Create,
                &reply(200, &format!(r#"{{"status_code":{code}}}"#)),
            )
            .unwrap_err();
            assert!(
                matches!(
                    e,
                    PublishError::AuthExpired {
                        what: Expired::Cookie,
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("dropcast login"), "{e}");
        }
        assert_eq!(
            class(
                reply(200, r#"{"status_code":49,"status_msg":"span"}"#),
                Call::Create
            ),
            Some("rejected")
        );
        assert_eq!(class(reply(403, ""), Call::Create), Some("auth_expired"));
        assert_eq!(class(reply(403, "{}"), Call::Create), Some("rejected"));
        assert_eq!(class(reply(502, ""), Call::Create), Some("transient"));
        assert_eq!(class(reply(429, ""), Call::WorkList), Some("rate_limited"));
        assert_eq!(class(reply(200, "<html>"), Call::Create), Some("unknown"));
        assert_eq!(class(reply(200, "<html>"), Call::Auth), Some("rejected"));
        let mut risky = reply(200, r#"{"status_code":0}"#);
        risky
            .headers
            .push((wire::H_RISK_DECISION.into(), "verify".into()));
        assert_eq!(class(risky, Call::Create), Some("auth_expired"));
    }
}
