//! The seam between the pipeline and a platform (ARCHITECTURE.md "The backend seam"): what
//! every backend provides so that one pipeline can publish anywhere. The pipeline drives
//! these calls for every job and never sees a URL, a wire type or a backend's name.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use crate::checkpoint::{CheckpointError, Checkpoints};
use crate::domain::{Fingerprint, Post, PostDraft, StepName};
use crate::progress::Progress;
use crate::video::VideoFile;

use super::{Account, PublishError};

/// A boxed future, so that backends can sit behind `dyn Backend`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One platform's publishing protocol.
///
/// The pipeline calls, for each job: [`upload`](Backend::upload) (which resumes from the
/// job's checkpoints and returns at once when the upload is already committed), then
/// [`tag_ids`](Backend::tag_ids), then, behind the publish fence (the ledger records the
/// send first, so a crash can never lead to a blind second send),
/// [`publish`](Backend::publish); when its answer is lost or says the post exists,
/// [`find_post`](Backend::find_post). Errors are sorted into [`PublishError`]'s classes,
/// which decide what happens to the job.
pub(crate) trait Backend: Send + Sync {
    /// The backend's own steps before the post is sent, in order: the names its
    /// checkpoints are recorded under (the last step, `publish`, is the pipeline's).
    fn steps(&self) -> &'static [StepName];

    /// Where a person logs in to the platform, for the message that says how to renew an
    /// account's login.
    fn login_page(&self) -> &'static str;

    /// How to renew `account`'s login when it is not a cookie the config names (a browser
    /// session: "run `dropcast login NAME`"); `None`: the cookie's own advice applies.
    fn renew_hint(&self, _account: &str) -> Option<String> {
        None
    }

    /// Who `account` is on the platform (a nickname, a uid), for `dropcast accounts`;
    /// `None` when the platform cannot say.
    fn identity<'a>(
        &'a self,
        _account: &'a Account,
    ) -> BoxFuture<'a, Result<Option<String>, PublishError>> {
        Box::pin(async { Ok(None) })
    }

    /// Lets go of what the backend holds open (a browser) when the program stops.
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Whether the account's login is accepted now (a paused account is re-checked so).
    fn check_account<'a>(&'a self, account: &'a Account)
    -> BoxFuture<'a, Result<(), PublishError>>;

    /// Authorizes, prepares, uploads (by parts when the backend wants, sending only the
    /// parts not recorded yet) and commits the video, checkpointing each step, and returns
    /// the committed upload that [`publish`](Backend::publish) posts.
    fn upload<'a>(&'a self, job: UploadJob<'a>) -> BoxFuture<'a, Result<Committed, StepFailure>>;

    /// The platform's ids for the caption's hashtags, in order and without repeats.
    /// `hashtags` pairs each name with the id the caption gives for it, if any; a hashtag
    /// without an id is posted as plain text.
    fn tag_ids<'a>(
        &'a self,
        account: &'a Account,
        hashtags: &'a [(String, Option<String>)],
    ) -> BoxFuture<'a, Result<Vec<String>, PublishError>>;

    /// Sends the post. [`PublishError::Unknown`]: it may or may not exist; the pipeline
    /// asks [`find_post`](Backend::find_post) and never re-sends blindly.
    fn publish<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        draft: &'a PostDraft,
    ) -> BoxFuture<'a, Result<Created, PublishError>>;

    /// The account's post made from `upload`, if the platform lists one. `draft` is the
    /// post that was sent and `since` when it was marked as sent, for platforms whose list
    /// may not name the upload (they match by text and time). `Ok(None)` means the list
    /// shows no such post; [`PublishError::Unknown`] means the list cannot tell either way
    /// (the pipeline then never re-sends on its own).
    fn find_post<'a>(
        &'a self,
        account: &'a Account,
        upload: &'a Committed,
        draft: &'a PostDraft,
        since: SystemTime,
    ) -> BoxFuture<'a, Result<Option<Post>, PublishError>>;

    /// What became of a post that was awaiting moderation (`pending.id` is the reference
    /// the backend gave it): the live post once its public id is there, `Ok(None)` while
    /// it is still hidden. A post the platform took back is [`PublishError::Rejected`].
    /// By default the platform has no such posts.
    fn public_post<'a>(
        &'a self,
        _account: &'a Account,
        _pending: &'a Post,
    ) -> BoxFuture<'a, Result<Option<Post>, PublishError>> {
        Box::pin(async { Ok(None) })
    }
}

/// What [`Backend::publish`] achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The post was created now.
    Posted(Post),
    /// The platform says this upload already has a post: it was published (by an earlier
    /// send whose answer was lost), though its id is not known from this answer.
    AlreadyPublished,
}

/// What the pipeline hears from a backend while it uploads.
pub(crate) trait Observer: Send + Sync {
    /// The job is now at `step`.
    fn step(&self, step: &StepName);
    /// The whole video went up: `bytes` in `secs`.
    fn uploaded(&self, bytes: u64, secs: f64);
}

/// One job's video, as [`Backend::upload`] needs it.
pub(crate) struct UploadJob<'a> {
    pub account: &'a Account,
    /// Opened once; every read is checked against the fingerprint.
    pub video: &'a VideoFile,
    pub fingerprint: &'a Fingerprint,
    pub checkpoints: &'a Checkpoints,
    pub observer: &'a dyn Observer,
    pub progress: &'a Progress,
    /// The caption's cover image, for a backend whose platform takes one (uploaded with
    /// the video, before the post); left where it is, never moved.
    pub cover_image: Option<&'a std::path::Path>,
    /// The post as the caption says, for platforms that send it with the upload (TikTok's
    /// init carries the title and privacy); `None` where the caller has no caption.
    pub draft: Option<&'a PostDraft>,
}

/// A step that failed, and how.
#[derive(Debug)]
pub(crate) struct StepFailure {
    pub step: StepName,
    pub error: PublishError,
}

/// A committed upload, ready to be posted: what the backend needs to post it, which only
/// the backend can read, and the platform's id for the media (for logs).
#[derive(Clone)]
pub(crate) struct Committed {
    media: String,
    inner: Arc<dyn Any + Send + Sync>,
}

impl Committed {
    pub(crate) fn new<T: Any + Send + Sync>(media: impl Into<String>, upload: T) -> Committed {
        Committed {
            media: media.into(),
            inner: Arc::new(upload),
        }
    }

    /// The platform's id for the uploaded media.
    pub(crate) fn media(&self) -> &str {
        &self.media
    }

    /// The backend's own form of it; `None` when another backend made it (a bug).
    pub(crate) fn get<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }
}

impl std::fmt::Debug for Committed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committed")
            .field("media", &self.media)
            .finish_non_exhaustive()
    }
}

/// A checkpoint that could not be read or written: the job is held (the ledger says why)
/// and tried again later.
pub(crate) fn transient(e: CheckpointError) -> PublishError {
    PublishError::Transient {
        reason: e.to_string(),
        retry_after: None,
    }
}

/// Maps an error of `step` (a platform's or a checkpoint's) into a [`StepFailure`].
pub(crate) fn at<E: Into<Failure>>(step: StepName) -> impl Fn(E) -> StepFailure {
    move |e| StepFailure {
        step: step.clone(),
        error: e.into().0,
    }
}

/// A platform or checkpoint error, as a step failure's error.
pub(crate) struct Failure(PublishError);

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        Failure(e)
    }
}

impl From<CheckpointError> for Failure {
    fn from(e: CheckpointError) -> Self {
        Failure(transient(e))
    }
}

/// The parts of the job's multipart upload that arrived before (a restart sends only the
/// others), said once when there are any.
pub(crate) async fn recorded_parts(
    checkpoints: &Checkpoints,
) -> Result<Vec<super::PartDone>, PublishError> {
    let done: Vec<super::PartDone> = checkpoints
        .parts()
        .await
        .map_err(transient)?
        .into_iter()
        .map(|p| super::PartDone {
            number: p.number,
            size: p.size,
            crc32: p.crc32,
        })
        .collect();
    if !done.is_empty() {
        tracing::info!(
            step = "upload",
            parts = done.len(),
            "parts already sent are not sent again"
        );
    }
    Ok(done)
}

/// The platform's ids for a caption's hashtags (`tag_ids`): the caption's own first, then
/// `lookup` (exact names only) for at most `max_lookups` hashtags; the rest, and those
/// without an id or whose look-up the platform refuses, are posted as plain hashtags, each
/// said in the log. Ids come in order, without repeats.
pub(crate) async fn resolve_tag_ids<'a, F, Fut>(
    hashtags: &'a [(String, Option<String>)],
    max_lookups: usize,
    lookup: F,
) -> Result<Vec<String>, PublishError>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<Option<String>, PublishError>>,
{
    let mut ids: Vec<String> = Vec::new();
    let (mut lookups, mut skipped) = (0usize, 0usize);
    for (name, known) in hashtags {
        let id = match known {
            Some(id) => Some(id.clone()),
            None if lookups >= max_lookups => {
                skipped += 1;
                continue;
            }
            None => {
                lookups += 1;
                match lookup(name).await {
                    Ok(id) => id,
                    Err(e @ PublishError::Rejected { .. }) => {
                        tracing::warn!(hashtag = %name, reason = %e, "hashtag lookup refused; posting the hashtag without an id");
                        None
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        match id {
            Some(id) if !ids.contains(&id) => ids.push(id),
            Some(_) => {}
            None => tracing::info!(
                hashtag = %name,
                "no challenge with this exact name; posted as plain hashtag"
            ),
        }
    }
    if skipped > 0 {
        tracing::warn!(
            step = "publish",
            skipped,
            limit = max_lookups,
            "too many hashtags to look up; the rest are posted as plain hashtags"
        );
    }
    Ok(ids)
}

/// A record that cannot be read back: said loudly, then the upload starts over from its
/// first step (safe: the ledger refuses to forget once the post may have been sent, and
/// the job is then held with that reason).
pub(crate) async fn start_over(
    checkpoints: &Checkpoints,
    step: StepName,
    e: CheckpointError,
) -> Result<(), StepFailure> {
    tracing::warn!(%step, reason = %e, "a checkpoint cannot be read; the upload starts over from its first step");
    checkpoints.forget().await.map_err(at(step))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_upload_opens_only_as_the_type_its_backend_made() {
        let c = Committed::new("v1", 42u32);
        assert_eq!(c.media(), "v1");
        assert_eq!(c.get::<u32>(), Some(&42));
        assert_eq!(c.get::<String>(), None);
        assert!(format!("{c:?}").contains("v1"));
    }
}
