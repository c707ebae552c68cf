//! How a post reaches its slot: now, through the platform's own timer (the post is sent
//! now and appears at the slot, even if this machine is off by then), or by the agent
//! waiting. A platform's timer window is data ([`PostTimer`]) its backend's wire module
//! holds; `platform::post_timer` picks it.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A platform's scheduled-post window: a post may be scheduled `min_ahead..=max_ahead`
/// from the moment it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostTimer {
    pub min_ahead: Duration,
    pub max_ahead: Duration,
}

/// Kept clear of the timer window's near edge (ours): the request takes time, and the
/// platform's clock may differ from ours.
const NEAR_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Kept clear of its far edge (ours).
const FAR_MARGIN: Duration = Duration::from_secs(60 * 60);
/// A slot this close counts as now (ours).
const NOW_TOLERANCE: Duration = Duration::from_secs(1);

/// What to do with a video whose slot is `slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Post it now, no timer.
    Now,
    /// Send it now with the platform's timer set to the slot.
    Timer(Timestamp),
    /// Come back at `wake` (the slot, or when the slot enters the platform's timer
    /// window), having uploaded already.
    Wait { wake: Timestamp },
}

/// Where `slot` stands for a post sent at `now` to a platform with `timer`.
pub fn how_to_post(slot: Timestamp, now: Timestamp, timer: Option<PostTimer>) -> When {
    let ahead = |d: Duration| now.checked_add(sd(d)).unwrap_or(Timestamp::MAX);
    if slot <= ahead(NOW_TOLERANCE) {
        return When::Now;
    }
    let Some(timer) = timer else {
        return When::Wait { wake: slot };
    };
    let nearest = ahead(timer.min_ahead + NEAR_MARGIN);
    let far = timer.max_ahead.saturating_sub(FAR_MARGIN);
    if slot >= nearest && slot <= ahead(far) {
        return When::Timer(slot);
    }
    if slot > ahead(far) {
        // Too far ahead for the timer: come back once it is not.
        let wake = slot.checked_sub(sd(far)).unwrap_or(slot);
        return When::Wait { wake };
    }
    When::Wait { wake: slot }
}

fn sd(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}
