//! `/metrics`: the Prometheus text exposition format (version 0.0.4), rendered by hand
//! from the jobs view and the agent's counters.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::ledger::JobState;
use crate::pipeline::live::{Counters, Histogram};
use crate::read_model::FailureClass;

use super::view::JobsView;

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every metric.
pub fn render(view: &JobsView, counters: &Counters) -> String {
    let mut out = Out(String::new());
    out.header(
        "dropcast_up",
        "gauge",
        "1 while the dropcast agent answers.",
    );
    out.sample("dropcast_up", &[], 1.0);

    out.header("dropcast_jobs", "gauge", "Jobs in the ledger, by state.");
    for (state, n) in &view.counts {
        out.sample("dropcast_jobs", &[("state", state)], *n as f64);
    }

    out.header(
        "dropcast_jobs_in_flight",
        "gauge",
        "Jobs being published right now.",
    );
    out.sample("dropcast_jobs_in_flight", &[], view.in_flight.len() as f64);

    out.header(
        "dropcast_videos_waiting_for_caption",
        "gauge",
        "Videos in the inbox waiting for their caption file.",
    );
    out.sample(
        "dropcast_videos_waiting_for_caption",
        &[],
        view.waiting_for_caption.len() as f64,
    );

    let posts = [JobState::Published, JobState::Done]
        .iter()
        .filter_map(|s| view.counts.get(s.as_str()))
        .sum::<u64>();
    out.header(
        "dropcast_posts_total",
        "counter",
        "Posts published (every job in the ledger that has a post).",
    );
    out.sample("dropcast_posts_total", &[], posts as f64);

    out.header(
        "dropcast_jobs_ended_total",
        "counter",
        "Jobs ended since the agent started, by outcome.",
    );
    for (outcome, n) in &counters.outcomes {
        out.sample(
            "dropcast_jobs_ended_total",
            &[("outcome", outcome)],
            *n as f64,
        );
    }

    out.header(
        "dropcast_uploaded_bytes_total",
        "counter",
        "Video bytes uploaded since the agent started.",
    );
    out.sample(
        "dropcast_uploaded_bytes_total",
        &[],
        counters.bytes_uploaded as f64,
    );

    let throughput = if counters.upload_seconds > 0.0 {
        counters.bytes_uploaded as f64 / counters.upload_seconds
    } else {
        0.0
    };
    out.header(
        "dropcast_upload_throughput_bytes_per_second",
        "gauge",
        "Average upload speed while uploading, since the agent started.",
    );
    out.sample(
        "dropcast_upload_throughput_bytes_per_second",
        &[],
        throughput,
    );

    out.histogram(
        "dropcast_publish_latency_seconds",
        "Time from a video settling in the inbox to its post existing.",
        &counters.publish_latency,
    );

    out.header(
        "dropcast_errors_total",
        "counter",
        "Errors seen since the agent started, by class.",
    );
    // The platform's error classes are always exported (at 0 until seen), so dashboards
    // can rely on them.
    let publish = FailureClass::PUBLISH;
    let mut errors: BTreeMap<&str, u64> = publish.iter().map(|c| (c.as_str(), 0)).collect();
    for (class, n) in &counters.errors {
        errors.insert(class, *n);
    }
    for (class, n) in errors {
        out.sample("dropcast_errors_total", &[("class", class)], n as f64);
    }

    out.header(
        "dropcast_accounts_paused",
        "gauge",
        "Accounts paused until their cookie is renewed.",
    );
    out.sample(
        "dropcast_accounts_paused",
        &[],
        view.paused_accounts.len() as f64,
    );
    agents(&mut out, view);
    out.0
}

/// Per agent that used the ledger: who it is, and how many job leases it holds.
fn agents(out: &mut Out, view: &JobsView) {
    out.header(
        "dropcast_agent_info",
        "gauge",
        "1 per agent that used the ledger, alive or not; labels say who it is.",
    );
    for a in &view.agents {
        out.sample(
            "dropcast_agent_info",
            &[
                ("agent", &a.name),
                ("host", &a.host),
                ("version", &a.version),
            ],
            1.0,
        );
    }
    out.header(
        "dropcast_leases_held",
        "gauge",
        "Jobs whose live lease each agent holds.",
    );
    for a in &view.agents {
        out.sample(
            "dropcast_leases_held",
            &[("agent", &a.name)],
            a.jobs.len() as f64,
        );
    }
}

struct Out(String);

impl Out {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(v));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", number(value));
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, "histogram", help);
        let bucket = format!("{name}_bucket");
        for (bound, n) in h.bounds.iter().zip(&h.counts) {
            self.sample(&bucket, &[("le", &number(*bound))], *n as f64);
        }
        // The +Inf bucket is the total count, whatever the counts vector holds.
        self.sample(&bucket, &[("le", "+Inf")], h.count as f64);
        self.sample(&format!("{name}_sum"), &[], h.sum);
        self.sample(&format!("{name}_count"), &[], h.count as f64);
    }
}

/// A sample value as Prometheus writes it (`+Inf`, `-Inf`, `NaN`, else the shortest
/// decimal that reads back the same).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Label values escape `\`, `"` and line feeds.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text escapes `\` and line feeds.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_and_help_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("x\\y\nz \"q\""), "x\\\\y\\nz \"q\"");
    }

    #[test]
    fn numbers_use_prometheus_spelling() {
        assert_eq!(number(1.0), "1");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
    }

    #[test]
    fn histogram_has_cumulative_buckets_sum_and_count() {
        let mut h = Histogram::default();
        h.observe(0.5);
        h.observe(42.0);
        let mut out = Out(String::new());
        out.histogram("x_seconds", "help", &h);
        let text = out.0;
        assert!(text.contains("# TYPE x_seconds histogram\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"60\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_sum 42.5\n"), "{text}");
        assert!(text.contains("x_seconds_count 2\n"), "{text}");
    }

    #[test]
    fn every_agent_has_its_info_and_its_leases() {
        use crate::agent_list::{AgentEntry, HeldJob};
        use crate::read_model::{LedgerPart, Model};
        use crate::receipt::UtcTime;
        let model = Model::assemble(LedgerPart::default(), None, UtcTime::now());
        let agent = super::super::view::AgentView {
            pid: 1,
            started_at: None,
            updated_at: None,
            watching: String::new(),
            sandbox: true,
        };
        let mut view = JobsView::from_model(model, agent);
        let entry = |name: &str, jobs: Vec<HeldJob>| AgentEntry {
            name: name.into(),
            host: "nas \"b\"".into(),
            pid: 1,
            version: "0.9.0".into(),
            started_at: UtcTime::now(),
            heartbeat_at: UtcTime::now(),
            heartbeat_age_seconds: 0,
            stopped: false,
            alive: true,
            jobs,
        };
        let held = |id| HeldJob {
            id,
            file: String::new(),
        };
        view.agents = vec![entry("a", vec![held(1), held(2)]), entry("b", vec![])];
        let text = render(&view, &Counters::default());
        assert!(
            text.contains(
                "dropcast_agent_info{agent=\"a\",host=\"nas \\\"b\\\"\",version=\"0.9.0\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("dropcast_leases_held{agent=\"a\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("dropcast_leases_held{agent=\"b\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE dropcast_leases_held gauge\n"),
            "{text}"
        );
    }
}
