//! The posting plan as `status`, `status --json`, `/api/jobs` and the dashboard show it:
//! per account with a plan, its zone, its next free slot (before jitter) and each planned
//! video with its slot (waiting here, or sent with the platform's timer and not yet
//! public). See docs/posting-plan.md.

use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::config::Config;
use crate::ledger::{Ledger, LedgerError};
use crate::receipt::UtcTime;

/// One account's plan.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AccountPlanView {
    pub account: String,
    /// The plan's time zone (`Asia/Shanghai`, or `local`).
    pub time_zone: String,
    /// `09:00-11:00`, …
    pub windows: Vec<String>,
    pub daily_max: u32,
    /// The slot a video dropped now would get (before jitter).
    pub next_free: Option<UtcTime>,
    /// Planned videos, by slot.
    pub planned: Vec<PlannedVideo>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlannedVideo {
    /// Relative to the inbox.
    pub file: String,
    pub slot: UtcTime,
    /// `waiting` (uploaded or queued here) or `sent` (the platform posts it at the slot).
    pub state: &'static str,
}

/// Every configured account's plan, in config order (accounts without one left out).
pub fn read(
    ledger: &Ledger,
    config: &Config,
    now: SystemTime,
) -> Result<Vec<AccountPlanView>, LedgerError> {
    let planned = ledger.planned()?;
    let mut views = Vec::new();
    for account in &config.accounts {
        let Some(plan) = config.plan_for(&account.name) else {
            continue;
        };
        let booked = ledger.booked_slots(&account.name, now - Duration::from_secs(8 * 86_400))?;
        let stamps: Vec<jiff::Timestamp> = booked
            .iter()
            .filter_map(|t| jiff::Timestamp::try_from(*t).ok())
            .collect();
        let now_ts = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::MAX);
        let next_free = plan
            .next_slot(&stamps, now_ts, &mut NoJitter)
            .and_then(|t| SystemTime::try_from(t).ok())
            .map(UtcTime::from);
        views.push(AccountPlanView {
            account: account.name.clone(),
            time_zone: plan.zone_name().to_owned(),
            windows: plan.windows().iter().map(ToString::to_string).collect(),
            daily_max: plan.daily_max.get(),
            next_free,
            planned: planned
                .iter()
                .filter(|p| p.account == account.name)
                .map(|p| PlannedVideo {
                    file: crate::archive::inbox_relative(&config.inbox, &p.video)
                        .to_string_lossy()
                        .into_owned(),
                    slot: UtcTime::from(p.at),
                    state: if p.sent { "sent" } else { "waiting" },
                })
                .collect(),
        });
    }
    Ok(views)
}

/// What `status` shows is the slot before jitter.
struct NoJitter;

impl crate::plan::Jitter for NoJitter {
    fn below(&mut self, _: u64) -> u64 {
        0
    }
}
