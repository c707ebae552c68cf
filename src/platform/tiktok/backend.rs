//! `tiktok` behind the seam: [`Backend::upload`] is creator_info and its checks (§3), the
//! init behind the fence of §8 (recorded as being sent before it goes, its `publish_id`
//! and `upload_url` after), and the chunks (§5) resumed from what the server has;
//! [`Backend::publish`] and [`Backend::find_post`] read the status (§6), since TikTok
//! posts on its own once every byte is in.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::client::Api;
use super::oauth::App;
use super::session::Sessions;
use super::tokens::unix;
use super::upload::{Ended, Upload};
use super::wire::{self, ChunkPlan, CreatorInfo, PostInfo, Status};
use crate::checkpoint::{Checkpoints, Record};
use crate::domain::{Post, PostDraft, StepName, TiktokOptions};
use crate::ledger::PartRecord;
use crate::platform::backend::{
    Backend, BoxFuture, Committed, Created, StepFailure, UploadJob, at, start_over, transient,
};
use crate::platform::backoff::retrying;
use crate::platform::{Account, PublishError, RetryPolicy};
use crate::secret::Secret;
use crate::video::VideoFile;

/// §4: the init, the fence of §8.
pub(crate) const INIT: StepName = StepName::of("init");
/// §5: the bytes; its record is what the status is asked about.
pub(crate) const UPLOAD: StepName = StepName::of("upload");
pub(crate) const STEPS: &[StepName] = &[INIT, UPLOAD];

/// How long `publish` asks the status before the job is held and asked again later (ours:
/// processing takes about a minute per GB, §6).
const STATUS_PATIENCE: Duration = Duration::from_secs(10 * 60);
const STATUS_FIRST_WAIT: Duration = Duration::from_secs(2);
const STATUS_MAX_WAIT: Duration = Duration::from_secs(20);

/// The fence (§8): written before the init is sent (`publish_id: None`) and again after.
#[derive(Serialize, Deserialize)]
struct InitRecord {
    sent_at: u64,
    publish_id: Option<String>,
}

impl Record for InitRecord {
    const STEP: StepName = INIT;
}

/// What a restart needs to resume the bytes; deleted when they are all in.
#[derive(Serialize, Deserialize)]
struct Session {
    publish_id: String,
    upload_url: String,
    /// Unix seconds of the init's answer.
    issued_at: u64,
    plan: ChunkPlan,
    username: String,
}

/// Every byte is in: what `publish` asks the status about.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Uploaded {
    publish_id: String,
    username: String,
    inbox: bool,
    /// The status said `FAILED` with this `fail_reason`: the publish_id never posts, and
    /// the next run voids this upload and inits anew (see `failed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failed: Option<String>,
}

impl Record for Uploaded {
    const STEP: StepName = UPLOAD;
    const ENDS_UPLOAD: bool = true;
}

/// What [`Committed`] carries for `publish` and `find_post`: the upload, and the job's
/// checkpoints to record a `FAILED` verdict in.
struct Handed {
    done: Uploaded,
    checkpoints: Checkpoints,
}

/// A configured `tiktok` account: its app and where its posts go.
#[derive(Clone, Debug)]
pub(crate) struct AccountSettings {
    pub app: App,
    pub inbox: bool,
}

/// The `tiktok` backend.
pub(crate) struct TiktokBackend {
    pub(crate) api: Api,
    pub(crate) sessions: Sessions,
    pub(crate) accounts: HashMap<String, AccountSettings>,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeout: Duration,
}

impl TiktokBackend {
    fn settings(&self, account: &str) -> Result<&AccountSettings, PublishError> {
        self.accounts
            .get(account)
            .ok_or_else(|| PublishError::Rejected {
                reason: format!("internal error: `{account}` is not a tiktok account"),
            })
    }

    /// Runs `call` with a fresh access token; a token the API refuses is refreshed once.
    /// Rate limits are waited out and transient errors retried (`publish.retry`).
    async fn with_token<T, F, Fut>(
        &self,
        account: &str,
        step: &'static str,
        call: F,
    ) -> Result<T, PublishError>
    where
        F: Fn(Secret) -> Fut,
        Fut: std::future::Future<Output = Result<T, PublishError>>,
    {
        let app = &self.settings(account)?.app;
        retrying(&self.retry, step, || async {
            let token = self.sessions.access(account, app, None).await?;
            match call(token.clone()).await {
                Err(e) if wire::is_token_refused(&e) => {
                    info!(
                        account,
                        "TikTok refused the access token; refreshing it once"
                    );
                    let token = self.sessions.access(account, app, Some(&token)).await?;
                    call(token).await
                }
                other => other,
            }
        })
        .await
    }

    /// §3, for the checks and the creator's names.
    pub(crate) async fn creator_info(&self, account: &str) -> Result<CreatorInfo, PublishError> {
        let info = self
            .with_token(account, "creator_info", |t| async move {
                self.api.creator_info(account, &t).await
            })
            .await?;
        self.sessions
            .remember_names(account, &info.creator_nickname, &info.creator_username)
            .await;
        Ok(info)
    }

    /// The creator's username (for a post's address): saved with the tokens, else asked.
    async fn username(&self, account: &str) -> Result<String, PublishError> {
        match self.sessions.stored(account)?.username {
            Some(username) => Ok(username),
            None => Ok(self.creator_info(account).await?.creator_username),
        }
    }

    async fn status(&self, account: &str, publish_id: &str) -> Result<Status, PublishError> {
        self.with_token(account, "status", |t| async move {
            self.api.status(account, &t, publish_id).await
        })
        .await
    }

    async fn upload_and_commit(&self, job: &UploadJob<'_>) -> Result<Committed, StepFailure> {
        match job.checkpoints.load::<Uploaded>().await {
            Ok(Some(done)) if !voided(job, &done).await? => {
                info!(step = "upload", publish_id = %done.publish_id, "every byte was sent before");
                return Ok(committed(done, job));
            }
            Ok(_) => {}
            Err(e) => start_over(job.checkpoints, UPLOAD, e).await?,
        }
        let account = job.account.name.as_str();
        let inbox = self.settings(account).map_err(at(INIT))?.inbox;
        loop {
            let session = match job
                .checkpoints
                .session::<Session>()
                .await
                .map_err(at(UPLOAD))?
            {
                Some(s) => s,
                None => self.init(job).await?,
            };
            job.observer.step(&UPLOAD);
            match self.send(job, &session).await.map_err(at(UPLOAD))? {
                Ended::Complete => {
                    let done = Uploaded {
                        publish_id: session.publish_id,
                        username: session.username,
                        inbox,
                        failed: None,
                    };
                    job.checkpoints.save(&done).await.map_err(at(UPLOAD))?;
                    info!(step = "upload", publish_id = %done.publish_id, "every byte is in");
                    return Ok(committed(done, job));
                }
                Ended::Lost => {
                    if let Some(done) = self.after_lost_url(job, &session, inbox).await? {
                        return Ok(committed(done, job));
                    }
                }
            }
        }
    }

    /// The upload URL expired or is gone: the status says whether the bytes are in. Only
    /// a `FAILED` or still incomplete upload allows a new init (§8); the session is then
    /// forgotten and `Ok(None)` says to init again.
    async fn after_lost_url(
        &self,
        job: &UploadJob<'_>,
        session: &Session,
        inbox: bool,
    ) -> Result<Option<Uploaded>, StepFailure> {
        let account = job.account.name.as_str();
        let status = self
            .status(account, &session.publish_id)
            .await
            .map_err(at(UPLOAD))?;
        match status {
            Status::Uploading | Status::Failed { .. } => {
                warn!(step = "upload", publish_id = %session.publish_id, ?status, "the upload URL expired before every byte was in; a new init is allowed (§8)");
                job.checkpoints.forget().await.map_err(at(UPLOAD))?;
                Ok(None)
            }
            Status::Processing | Status::InInbox | Status::Complete { .. } => {
                let done = Uploaded {
                    publish_id: session.publish_id.clone(),
                    username: session.username.clone(),
                    inbox,
                    failed: None,
                };
                job.checkpoints.save(&done).await.map_err(at(UPLOAD))?;
                Ok(Some(done))
            }
        }
    }

    /// creator_info and its checks, then the init behind the fence; the session is saved
    /// before any byte goes.
    async fn init(&self, job: &UploadJob<'_>) -> Result<Session, StepFailure> {
        let account = job.account.name.as_str();
        job.observer.step(&INIT);
        let settings = self.settings(account).map_err(at(INIT))?;
        let draft = job.draft.ok_or_else(|| PublishError::Rejected {
            reason: "internal error: no caption for the TikTok post".into(),
        });
        let draft = draft.map_err(at(INIT))?;
        let plan = ChunkPlan::for_size(job.fingerprint.size).map_err(|e| StepFailure {
            step: INIT,
            error: PublishError::Rejected {
                reason: e.to_string(),
            },
        })?;
        let info = self.creator_info(account).await.map_err(at(INIT))?;
        check_creator(&info, &draft.tiktok, settings.inbox).map_err(at(INIT))?;
        check_duration(job.video, &info).await.map_err(at(INIT))?;
        let post_info = match settings.inbox {
            true => None,
            false => Some(post_info(draft).map_err(at(INIT))?),
        };
        // The fence (§8): "init being sent" is recorded before it goes.
        let sent_at = unix(SystemTime::now());
        let record = InitRecord {
            sent_at,
            publish_id: None,
        };
        job.checkpoints.save(&record).await.map_err(at(INIT))?;
        let initiated = self
            .with_token(account, "init", |t| {
                let post_info = post_info.as_ref();
                async move { self.api.init(account, &t, post_info, &plan).await }
            })
            .await
            .map_err(|e| match e {
                // No byte went to whatever publish_id a lost answer made: a new init is safe.
                PublishError::Unknown { reason } => PublishError::Transient {
                    reason,
                    retry_after: None,
                },
                e => e,
            })
            .map_err(at(INIT))?;
        let session = Session {
            publish_id: initiated.publish_id.clone(),
            upload_url: initiated.upload_url.expose().to_owned(),
            issued_at: unix(SystemTime::now()),
            plan,
            username: info.creator_username.clone(),
        };
        job.checkpoints
            .save_session(&session)
            .await
            .map_err(at(INIT))?;
        let record = InitRecord {
            sent_at,
            publish_id: Some(initiated.publish_id.clone()),
        };
        job.checkpoints.save(&record).await.map_err(at(INIT))?;
        info!(step = "init", publish_id = %session.publish_id, chunks = plan.total_chunk_count, "TikTok made a publish_id");
        Ok(session)
    }

    /// The chunks from the first one not recorded; a URL past its hour is not used.
    async fn send(&self, job: &UploadJob<'_>, session: &Session) -> Result<Ended, PublishError> {
        let age = unix(SystemTime::now()).saturating_sub(session.issued_at);
        if age >= wire::UPLOAD_URL_LIFETIME.as_secs() {
            return Ok(Ended::Lost);
        }
        let start = first_missing(&job.checkpoints.parts().await.map_err(transient)?);
        if start > 0 {
            info!(step = "upload", chunk = start, "resuming the upload");
        }
        let url = Secret::new(session.upload_url.clone());
        let upload = Upload {
            api: &self.api,
            url: &url,
            video: job.video,
            plan: session.plan,
            crc32: job.fingerprint.crc32,
            progress: job.progress,
            retry: self.retry,
            timeout: self.timeout,
        };
        let began = std::time::Instant::now();
        let checkpoints = job.checkpoints;
        let plan = session.plan;
        let ended = upload
            .run(start, |index| async move {
                let (_, len) = plan.chunk(index);
                let part = PartRecord {
                    number: u32::try_from(index + 1).unwrap_or(u32::MAX),
                    size: len,
                    crc32: 0,
                };
                checkpoints.record_part(part).await.map_err(transient)
            })
            .await?;
        if ended == Ended::Complete {
            job.observer
                .uploaded(plan.video_size, began.elapsed().as_secs_f64().max(1e-6));
        }
        Ok(ended)
    }

    /// Asks the status until the post exists (or is in the inbox), with a bounded backoff.
    async fn wait_for_post(&self, account: &str, handed: &Handed) -> Result<Created, PublishError> {
        let done = &handed.done;
        let started = std::time::Instant::now();
        let mut wait = STATUS_FIRST_WAIT;
        loop {
            match self.status(account, &done.publish_id).await? {
                Status::Complete { post_ids } => {
                    return Ok(Created::Posted(complete(done, &post_ids)));
                }
                Status::InInbox if done.inbox => {
                    return Ok(Created::Posted(Post::in_creator_inbox(&done.publish_id)));
                }
                // A failed publish_id never posts; asking again would only hold the job
                // forever, so even `internal` ends it here. The verdict is recorded: the
                // run after `dropcast retry` inits anew.
                Status::Failed { reason } => return Err(failed::remember(handed, &reason).await),
                other => {
                    if started.elapsed() >= STATUS_PATIENCE {
                        return Err(PublishError::Transient {
                            reason: format!(
                                "TikTok is still processing the video ({other:?}); asked again later"
                            ),
                            retry_after: None,
                        });
                    }
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(STATUS_MAX_WAIT);
        }
    }
}

/// §3's checks, before any byte goes (doc: content sharing guidelines).
fn check_creator(
    info: &CreatorInfo,
    options: &TiktokOptions,
    inbox: bool,
) -> Result<(), PublishError> {
    let refuse = |reason: String| Err(PublishError::Rejected { reason });
    if inbox {
        return Ok(());
    }
    let Some(privacy) = options.privacy else {
        return refuse(
            "the caption has no `tiktok: {privacy: …}` (TikTok requires the creator's own choice)"
                .into(),
        );
    };
    if !info
        .privacy_level_options
        .iter()
        .any(|p| p == privacy.as_str())
    {
        return refuse(format!(
            "privacy `{}` is not offered to @{}; TikTok offers: {}",
            privacy.as_str(),
            info.creator_username,
            info.privacy_level_options.join(", ")
        ));
    }
    for (on, disabled, what) in [
        (options.allow_comment, info.comment_disabled, "comments"),
        (options.allow_duet, info.duet_disabled, "duets"),
        (options.allow_stitch, info.stitch_disabled, "stitches"),
    ] {
        if on && disabled {
            return refuse(format!(
                "the caption allows {what}, which @{} has turned off in TikTok",
                info.creator_username
            ));
        }
    }
    Ok(())
}

/// Refuses, before any byte, a video longer than the creator may post (§3), its duration
/// read from the file's own headers. A file whose duration cannot be read is left to
/// TikTok's own check (said in the log).
async fn check_duration(video: &VideoFile, info: &CreatorInfo) -> Result<(), PublishError> {
    let Some(max) = info.max_video_post_duration_sec else {
        return Ok(());
    };
    // The descriptor the hash pass read, so the facts are those of the bytes that go up.
    let video = video.clone();
    let probed = tokio::task::spawn_blocking(move || {
        let reader = crate::video::Reader::new(&video);
        crate::media::probe_reader(reader, video.size(), video.path())
    })
    .await;
    let duration = match probed {
        Ok(Ok(media)) => media.duration,
        Ok(Err(e)) => {
            warn!(reason = %e, "cannot read the video's duration; TikTok checks it itself");
            None
        }
        Err(_) => None,
    };
    let Some(duration) = duration else {
        return Ok(());
    };
    if duration > Duration::from_secs(max) {
        return Err(PublishError::Rejected {
            reason: format!(
                "duration {}, @{} may post at most {} through the API",
                crate::media::humane_duration(duration),
                info.creator_username,
                crate::media::humane_duration(Duration::from_secs(max))
            ),
        });
    }
    Ok(())
}

/// `post_info` of a direct post (§4).
fn post_info(draft: &PostDraft) -> Result<PostInfo, PublishError> {
    let t = &draft.tiktok;
    let privacy = t.privacy.ok_or_else(|| PublishError::Rejected {
        reason: "the caption has no `tiktok: {privacy: …}`".into(),
    })?;
    Ok(PostInfo {
        title: wire::title(&draft.text)?,
        privacy_level: privacy.as_str().to_owned(),
        disable_duet: !t.allow_duet,
        disable_comment: !t.allow_comment,
        disable_stitch: !t.allow_stitch,
        video_cover_timestamp_ms: u64::try_from(draft.cover_at.as_millis()).unwrap_or(u64::MAX),
        brand_content_toggle: t.branded_content,
        brand_organic_toggle: t.brand_organic,
        is_aigc: draft.ai_generated,
    })
}

/// The first chunk index not recorded as accepted (chunks land in order).
fn first_missing(parts: &[PartRecord]) -> u64 {
    let mut numbers: Vec<u32> = parts.iter().map(|p| p.number).collect();
    numbers.sort_unstable();
    let mut next = 1u32;
    for n in numbers {
        if n == next {
            next += 1;
        }
    }
    u64::from(next - 1)
}

fn committed(done: Uploaded, job: &UploadJob<'_>) -> Committed {
    let checkpoints = job.checkpoints.clone();
    Committed::new(done.publish_id.clone(), Handed { done, checkpoints })
}

fn ours(committed: &Committed) -> Result<&Handed, PublishError> {
    committed
        .get::<Handed>()
        .ok_or_else(|| PublishError::Rejected {
            reason: "internal error: the upload was not made by tiktok".into(),
        })
}

fn post(username: &str, id: &str) -> Post {
    Post::live(id, wire::post_url(username, id))
}

/// `PUBLISH_COMPLETE`: the post, or, while moderation hides its public id, a post awaiting
/// moderation known by its publish_id (§6).
fn complete(done: &Uploaded, post_ids: &[String]) -> Post {
    match post_ids.first() {
        Some(id) => post(&done.username, id),
        None => Post::awaiting_moderation(&done.publish_id),
    }
}

impl Backend for TiktokBackend {
    fn steps(&self) -> &'static [StepName] {
        STEPS
    }

    fn login_page(&self) -> &'static str {
        wire::LOGIN_PAGE
    }

    fn renew_hint(&self, account: &str) -> Option<String> {
        Some(format!(
            "run `dropcast login {account}` to authorize dropcast again (a daily cap or a posting ban lifts by itself: dropcast re-checks the account every minute)"
        ))
    }

    fn identity<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<Option<String>, PublishError>> {
        Box::pin(async move {
            let tokens = self.sessions.stored(&account.name)?;
            Ok(match (tokens.nickname, tokens.username) {
                (Some(n), Some(u)) => Some(format!("{n} (@{u})")),
                (Some(n), None) => Some(n),
                _ => None,
            })
        })
    }

    fn check_account<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move { self.creator_info(&account.name).await.map(|_| ()) })
    }

    fn upload<'a>(&'a self, job: UploadJob<'a>) -> BoxFuture<'a, Result<Committed, StepFailure>> {
        Box::pin(async move { self.upload_and_commit(&job).await })
    }

    fn tag_ids<'a>(
        &'a self,
        _account: &'a Account,
        _hashtags: &'a [(String, Option<String>)],
    ) -> BoxFuture<'a, Result<Vec<String>, PublishError>> {
        // TikTok reads hashtags from the title itself (§4).
        Box::pin(async { Ok(Vec::new()) })
    }

    fn publish<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        _draft: &'a PostDraft,
    ) -> BoxFuture<'a, Result<Created, PublishError>> {
        Box::pin(async move { self.wait_for_post(&account.name, ours(upload)?).await })
    }

    fn find_post<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        _draft: &'a PostDraft,
        _since: SystemTime,
    ) -> BoxFuture<'a, Result<Option<Post>, PublishError>> {
        Box::pin(async move {
            let handed = ours(upload)?;
            let done = &handed.done;
            Ok(match self.status(&account.name, &done.publish_id).await? {
                Status::Complete { post_ids } => Some(complete(done, &post_ids)),
                Status::InInbox if done.inbox => Some(Post::in_creator_inbox(&done.publish_id)),
                // No post, and none ever from this publish_id: the send that follows
                // reads the same status and fails the job with the reason.
                Status::Failed { reason } => {
                    failed::remember(handed, &reason).await;
                    None
                }
                _ => None,
            })
        })
    }

    fn public_post<'a>(
        &'a self,
        account: &'a Account,
        pending: &'a Post,
    ) -> BoxFuture<'a, Result<Option<Post>, PublishError>> {
        Box::pin(async move {
            let name = account.name.as_str();
            match self.status(name, &pending.id).await? {
                Status::Complete { post_ids } => match post_ids.first() {
                    Some(id) => Ok(Some(post(&self.username(name).await?, id))),
                    None => Ok(None),
                },
                Status::Failed { reason } => Err(PublishError::Rejected {
                    reason: format!(
                        "TikTok failed the post: {}",
                        wire::fail_reason_words(&reason)
                    ),
                }),
                _ => Ok(None),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TiktokPrivacy;

    fn info() -> CreatorInfo {
        serde_json::from_value(serde_json::json!({
            "creator_username": "tiktok", "creator_nickname": "TikTok Official",
            "privacy_level_options": ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "SELF_ONLY"],
            "comment_disabled": false, "duet_disabled": false, "stitch_disabled": true,
            "max_video_post_duration_sec": 300
        }))
        .unwrap()
    }

    fn options(privacy: Option<TiktokPrivacy>) -> TiktokOptions {
        TiktokOptions {
            privacy,
            ..TiktokOptions::default()
        }
    }

    #[test]
    fn creator_info_refuses_before_upload_what_the_creator_cannot_post() {
        let info = info();
        assert!(check_creator(&info, &options(Some(TiktokPrivacy::SelfOnly)), false).is_ok());
        let e = check_creator(&info, &options(None), false).unwrap_err();
        assert!(e.to_string().contains("privacy"), "{e}");
        let e = check_creator(
            &info,
            &options(Some(TiktokPrivacy::FollowerOfCreator)),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not offered"), "{e}");
        let mut stitch = options(Some(TiktokPrivacy::SelfOnly));
        stitch.allow_stitch = true;
        let e = check_creator(&info, &stitch, false).unwrap_err();
        assert!(e.to_string().contains("stitches"), "{e}");
        assert_eq!(e.class(), "rejected");
        stitch.allow_comment = true;
        stitch.allow_stitch = false;
        stitch.allow_duet = true;
        assert!(check_creator(&info, &stitch, false).is_ok());
        // An inbox draft carries no post_info: the creator chooses in the app.
        assert!(check_creator(&info, &options(None), true).is_ok());
    }

    #[test]
    fn post_info_maps_every_caption_field() {
        let draft = PostDraft {
            text: "funny #cat video @tiktok".into(),
            plain_text: String::new(),
            entities: vec![],
            challenge_ids: vec![],
            mention_ids: vec![],
            visibility: crate::domain::Visibility::Public,
            allow_download: false,
            cover_at: Duration::from_millis(1500),
            collection: None,
            publish_at: None,
            title: None,
            cover_image: None,
            ai_generated: true,
            declaration: None,
            tiktok: TiktokOptions {
                privacy: Some(TiktokPrivacy::MutualFollowFriends),
                allow_comment: false,
                allow_duet: true,
                allow_stitch: false,
                brand_organic: true,
                branded_content: false,
            },
        };
        let p = post_info(&draft).unwrap();
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"title": "funny #cat video @tiktok", "privacy_level": "MUTUAL_FOLLOW_FRIENDS",
                "disable_duet": false, "disable_comment": true, "disable_stitch": true,
                "video_cover_timestamp_ms": 1500, "brand_content_toggle": false, "brand_organic_toggle": true,
                "is_aigc": true})
        );
    }

    #[test]
    fn the_first_missing_chunk_follows_the_recorded_ones_in_order() {
        let part = |number| PartRecord {
            number,
            size: 1,
            crc32: 0,
        };
        assert_eq!(first_missing(&[]), 0);
        assert_eq!(first_missing(&[part(1), part(2)]), 2);
        assert_eq!(first_missing(&[part(2), part(1), part(4)]), 2);
    }
}

#[path = "failed.rs"]
mod failed;
use failed::voided;

#[cfg(test)]
#[path = "backend_tests.rs"]
mod flow;
