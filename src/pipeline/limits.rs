//! Before a byte is sent: the video against its platform's limits (size, duration, sides,
//! frame rate, codec), measured from the file's own headers, so nothing goes up that the
//! platform would refuse for these reasons. A file whose headers cannot be read is left to
//! the platform, which judges it itself (said in the log).

use tracing::{info, warn};

use crate::domain::Platform;
use crate::media::limits::breaches;
use crate::video::VideoFile;
use crate::words::FailureClass;

use super::error::JobFailure;

/// `Err` with every limit `video` breaks for `platform`, in words.
pub(crate) async fn check(platform: Platform, video: &VideoFile) -> Result<(), JobFailure> {
    let Some(limits) = crate::platform::media_limits(platform) else {
        return Ok(());
    };
    // The descriptor the hash pass read, so the facts are those of the bytes that go up.
    let video = video.clone();
    let probe = move || {
        let reader = crate::video::Reader::new(&video);
        crate::media::probe_reader(reader, video.size(), video.path())
    };
    let info = match tokio::task::spawn_blocking(probe).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            warn!(reason = %e, "cannot read the video's facts; the platform checks them itself");
            return Ok(());
        }
        Err(_) => return Ok(()),
    };
    let broken = breaches(limits, &info);
    if broken.is_empty() {
        info!(step = "limits", facts = %info, "within the platform's limits");
        return Ok(());
    }
    Err(JobFailure {
        step: None,
        class: FailureClass::Video,
        reason: broken.join("; "),
        hint: format!(
            "Export the video within {}'s limits, then put it back in the inbox.",
            limits.platform
        ),
    })
}
