//! `publish.plan` (every account's posting plan) and `accounts.NAME.plan` (one account's,
//! or `off`): read into [`Plan`], which can only hold a valid plan. See
//! docs/posting-plan.md.

use std::num::NonZeroU32;
use std::time::Duration;

use serde_yaml::Value;

use super::{DAY, bounded, is_off, set_duration};
use crate::plan::{Plan, Window};
use crate::yaml::{Node, Problems};

/// An account's own `plan:` key.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum AccountPlan {
    /// No `plan:`: `publish.plan` applies.
    #[default]
    Inherit,
    /// `plan: off`: this account posts as soon as it can.
    Off,
    Own(Plan),
}

const KEYS: &[&str] = &["windows", "time_zone", "daily_max", "min_gap", "jitter"];

/// `{windows: [...], time_zone: Asia/Shanghai, daily_max: 3, min_gap: 2h, jitter: 10m}`, or
/// `off` (`Some(None)`); `None` when it has problems (each pushed).
pub(super) fn read_plan(node: &Node<'_>, problems: &mut Problems) -> Option<Option<Plan>> {
    if is_off(node.value()) {
        return Some(None);
    }
    let f = node.fields(KEYS, problems)?;
    let before = problems.len();
    let windows = match f.get("windows") {
        Some(n) => windows(n, problems),
        None => {
            problems.push(f.missing("windows"));
            None
        }
    };
    let (zone, zone_name) = match f.get("time_zone") {
        Some(n) => time_zone(n, problems)?,
        None => local_zone(),
    };
    let mut daily_max = NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN);
    if let Some(n) = f.get("daily_max")
        && let Some(v) = bounded(n, (1, 1000), problems)
    {
        daily_max = u32::try_from(v).ok().and_then(NonZeroU32::new).unwrap_or(daily_max);
    }
    let mut min_gap = Duration::from_secs(2 * 3600);
    set_duration(f.get("min_gap"), &mut min_gap, (Duration::ZERO, 7 * DAY), problems);
    let mut jitter = Duration::from_secs(10 * 60);
    set_duration(f.get("jitter"), &mut jitter, (Duration::ZERO, DAY), problems);
    let windows = windows?;
    if problems.len() > before {
        return None;
    }
    match Plan::new(windows, zone, zone_name, daily_max, min_gap, jitter) {
        Ok(plan) => Some(Some(plan)),
        Err(why) => {
            problems.push(f.get("windows").unwrap_or(f.node()).problem(why));
            None
        }
    }
}

/// The windows, each `HH:MM-HH:MM`; a problem names the item's own line.
fn windows(node: &Node<'_>, problems: &mut Problems) -> Option<Vec<Window>> {
    let items = node.items(problems)?;
    let mut all = Vec::new();
    let mut ok = true;
    for item in items {
        match item.parse_str("a window like `09:00-11:00`", problems, Window::parse) {
            Some(w) => all.extend(w),
            None => ok = false,
        }
    }
    ok.then_some(all)
}

/// An IANA time zone name, looked up in the system's (or, on Windows, the bundled)
/// time zone database.
fn time_zone(node: &Node<'_>, problems: &mut Problems) -> Option<(jiff::tz::TimeZone, String)> {
    if matches!(node.value(), Value::String(s) if s.trim() == "local") {
        return Some(local_zone());
    }
    node.parse_str("a time zone name like `Asia/Shanghai`", problems, |s| {
        let name = s.trim();
        jiff::tz::TimeZone::get(name)
            .map(|tz| (tz, name.to_owned()))
            .map_err(|_| {
                format!(
                    "`{name}` is not a time zone this system knows; use an IANA name like \
                     `Asia/Shanghai`, `Europe/Berlin` or `America/New_York`, or `local`"
                )
            })
    })
}

/// The system's zone, named by its IANA name where the system says it.
fn local_zone() -> (jiff::tz::TimeZone, String) {
    let tz = jiff::tz::TimeZone::system();
    let name = tz.iana_name().unwrap_or("local").to_owned();
    (tz, name)
}

/// `accounts.NAME.plan`, if the account has one.
pub(super) fn account_plan(n: &Node<'_>, problems: &mut Problems) -> AccountPlan {
    let mut scratch = Problems::new();
    let Some(node) = n
        .entries(&mut scratch)
        .and_then(|e| e.into_iter().find(|(k, _)| k == "plan"))
        .map(|(_, node)| node)
    else {
        return AccountPlan::Inherit;
    };
    match read_plan(&node, problems) {
        Some(Some(plan)) => AccountPlan::Own(plan),
        Some(None) => AccountPlan::Off,
        None => AccountPlan::Inherit,
    }
}
