//! The agent's context built in-process, and jobs put straight into its ledger, for the
//! in-process status tests (tests/status_server.rs, tests/dashboard_browser.rs). They
//! include this file with `#[path]`: it is not part of `mod common`, so the tests that drive
//! the binary never depend on the pipeline's or the ledger's API.

use std::path::Path;
use std::sync::Arc;

use dropcast::archive::{self, Destination};
use dropcast::config::Config;
use dropcast::domain::{ContentHash, Platform, StepName};
use dropcast::driver::DriverLock;
use dropcast::ledger::{Claim, JobRecord, Ledger, NewJob};
use dropcast::lock::Role;
use dropcast::pipeline::{Access, Context};
use dropcast::receipt::{FailureReceipt, UtcTime};
use sha2::{Digest, Sha256};

/// The context an agent builds for `config`, the driver lock taken and let go again.
pub async fn agent_context(config: Config) -> Arc<Context> {
    let lock = DriverLock::take(&config, Role::Agent).unwrap();
    let access = Access::Driver {
        lock: &lock,
        new_ledger: false,
    };
    Arc::new(dropcast::root::build(config, access).await.unwrap())
}

pub fn hash_of(bytes: &[u8]) -> ContentHash {
    ContentHash::from_digest(&Sha256::digest(bytes))
}

/// A new job of `main` for `video` (relative to the inbox) with these bytes.
pub fn claim(l: &mut Ledger, video: &str, bytes: &[u8], caption: Option<&Path>) -> JobRecord {
    let job = NewJob {
        sha256: hash_of(bytes),
        account: "main".into(),
        platform: Platform::DouyinWeb,
        video: video.into(),
        caption: caption.map(Path::to_path_buf),
        size: bytes.len() as u64,
    };
    match l.claim(&job, false).unwrap() {
        Claim::New(j) => j,
        other => panic!("expected a new job, got {other:?}"),
    }
}

/// How a [`failed_job`] failed: its caption's text, the reason and the hint.
pub struct Failure<'a> {
    pub caption: &'a str,
    pub reason: &'a str,
    pub hint: &'a str,
}

/// A job that failed at step 5 ("rejected"), its video and caption archived to `failed/`
/// with their error receipt the way the pipeline does it (plan stored, then executed), so
/// that retry can bring them back.
pub fn failed_job(
    ctx: &Context,
    l: &mut Ledger,
    video: &str,
    bytes: &[u8],
    failure: &Failure<'_>,
) -> JobRecord {
    let video_path = ctx.config.inbox.join(video);
    let caption_path = video_path.with_extension("yaml");
    std::fs::create_dir_all(video_path.parent().unwrap()).unwrap();
    std::fs::write(&video_path, bytes).unwrap();
    std::fs::write(&caption_path, failure.caption).unwrap();
    let caption = Path::new(video).with_extension("yaml");
    let job = claim(l, video, bytes, Some(&caption));
    l.mark_failed(
        job.id,
        Some(&StepName::of("publish")),
        "rejected",
        failure.reason,
    )
    .unwrap();
    let receipt = FailureReceipt {
        sha256: Some(job.sha256.clone()),
        account: "main".into(),
        platform: Some(job.platform),
        file: video.into(),
        step: Some(StepName::of("publish")),
        class: "rejected".into(),
        reason: failure.reason.into(),
        hint: failure.hint.into(),
        failed_at: UtcTime::now(),
    };
    let plan = archive::plan(
        &ctx.folders,
        Destination::Failed,
        &video_path,
        Some(&caption_path),
        &receipt,
    )
    .unwrap();
    l.set_archive_plan(job.id, &serde_json::to_value(&plan).unwrap())
        .unwrap();
    let archived = archive::execute(&plan).unwrap();
    l.record_archived(job.id, &archived.video).unwrap();
    assert!(!video_path.exists() && archived.video.exists());
    l.job(job.id).unwrap().unwrap()
}
