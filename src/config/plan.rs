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
    let zone = match f.get("time_zone") {
        Some(n) => time_zone(n, problems),
        None => Some(local_zone()),
    };
    let mut daily_max = NonZeroU32::new(3).unwrap_or(NonZeroU32::MIN);
    if let Some(n) = f.get("daily_max")
        && let Some(v) = bounded(n, (1, 1000), problems)
    {
        daily_max = u32::try_from(v)
            .ok()
            .and_then(NonZeroU32::new)
            .unwrap_or(daily_max);
    }
    let mut min_gap = Duration::from_secs(2 * 3600);
    set_duration(
        f.get("min_gap"),
        &mut min_gap,
        (Duration::ZERO, 7 * DAY),
        problems,
    );
    let mut jitter = Duration::from_secs(10 * 60);
    set_duration(
        f.get("jitter"),
        &mut jitter,
        (Duration::ZERO, DAY),
        problems,
    );
    let (windows, (zone, zone_name)) = (windows?, zone?);
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(
            text,
            Some(Path::new("dropcast.yaml")),
            Path::new("/srv/drop"),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_default_plan_and_an_account_s_own_or_off() {
        let c = parse(concat!(
            "publish:\n",
            "  plan: {windows: [\"18:30-22:00\", \"09:00-11:00\"], time_zone: Asia/Shanghai, daily_max: 2, min_gap: 90m, jitter: 5m}\n",
            "accounts:\n",
            "  main: {cookie_env: A}\n",
            "  night: {cookie_env: B, plan: {windows: [\"22:00-02:00\"], time_zone: UTC}}\n",
            "  now: {cookie_env: C, plan: off}\n",
        ))
        .unwrap();
        let main = c.plan_for("main").unwrap();
        let windows: Vec<String> = main.windows().iter().map(ToString::to_string).collect();
        assert_eq!(windows, ["09:00-11:00", "18:30-22:00"], "sorted");
        assert_eq!(main.zone_name(), "Asia/Shanghai");
        assert_eq!(main.daily_max.get(), 2);
        assert_eq!(main.min_gap.as_secs(), 90 * 60);
        assert_eq!(main.jitter.as_secs(), 5 * 60);
        let night = c.plan_for("night").unwrap();
        assert_eq!(night.windows().len(), 2, "across midnight: two windows");
        assert_eq!(
            (
                night.daily_max.get(),
                night.min_gap.as_secs(),
                night.jitter.as_secs()
            ),
            (3, 7200, 600),
            "defaults"
        );
        assert!(c.plan_for("now").is_none());
        assert!(
            parse("").unwrap().plan_for("main").is_none(),
            "no plan by default"
        );
    }

    #[test]
    fn bad_plans_are_named_with_key_line_and_column() {
        let msg = parse(concat!(
            "publish:\n",
            "  plan:\n",
            "    windows: [\"09:00-11:00\", \"9-10\"]\n",
            "    time_zone: Mars/Olympus\n",
            "    daily_max: 0\n",
            "    jiter: 5m\n",
        ))
        .unwrap_err();
        for says in [
            "dropcast.yaml:3:30: publish.plan.windows[1]: `9-10` is not a window like `09:00-11:00`",
            "dropcast.yaml:4:16: publish.plan.time_zone: `Mars/Olympus` is not a time zone this system knows",
            "dropcast.yaml:5:16: publish.plan.daily_max: must be between 1 and 1000, found 0",
            "dropcast.yaml:6:5: publish.plan: unknown field `jiter`, did you mean `jitter`?",
        ] {
            assert!(msg.contains(says), "{says}\n{msg}");
        }
        let msg =
            parse("publish:\n  plan: {windows: [\"09:00-11:00\", \"10:00-12:00\"]}\n").unwrap_err();
        assert!(msg.contains("dropcast.yaml:2:19: publish.plan.windows: windows 09:00-11:00 and 10:00-12:00 overlap"), "{msg}");
        let msg = parse("accounts:\n  a: {cookie_env: A, plan: {time_zone: UTC}}\n").unwrap_err();
        assert!(
            msg.contains("accounts.a.plan: missing required field `windows`"),
            "{msg}"
        );
    }
}
