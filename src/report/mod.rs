//! The weekly report: for one ISO week (`%G-W%V`, Monday to Monday, UTC), per model, a one-line
//! verdict, changes against the previous week, alerts fired, the state of each arc, drift and the
//! data funnel; written as Markdown, self-contained HTML with inline SVG charts, and a JSON
//! sidecar. Built only from stored results and summaries up to the week's end, and with no
//! "generated at" stamp, so regenerating a past week gives the same content.

mod build;
pub mod charts;
pub mod model;
mod render;

pub(crate) use render::esc;

use crate::store::Store;
use anyhow::Context;
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::json;
use std::path::{Path, PathBuf};

const DAY: i64 = 86_400;

/// An ISO week: its label and its `[start, end)` in seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoWeek {
    pub label: String,
    pub start: i64,
    pub end: i64,
}

impl IsoWeek {
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not an ISO week like 2026-W48");
        let (y, w) = s.split_once("-W").ok_or_else(bad)?;
        let (y, w): (i32, u32) = (y.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
        let monday = NaiveDate::from_isoywd_opt(y, w, Weekday::Mon).ok_or_else(bad)?;
        let start = monday
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .ok_or_else(bad)?;
        Ok(Self {
            label: format!("{y}-W{w:02}"),
            start,
            end: start + 7 * DAY,
        })
    }

    /// The ISO week containing `secs`.
    pub fn containing(secs: i64) -> Self {
        let d = chrono::DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .date_naive();
        let iw = d.iso_week();
        Self::parse(&format!("{}-W{:02}", iw.year(), iw.week())).unwrap_or(Self {
            label: String::new(),
            start: 0,
            end: 0,
        })
    }

    /// The last complete week before `secs`.
    pub fn last_complete(secs: i64) -> Self {
        Self::containing(Self::containing(secs).start - 1)
    }
}

/// A week's report: the model and its two renderings.
pub struct Report {
    pub week: IsoWeek,
    pub model: model::WeeklyReport,
    pub markdown: String,
    pub html: String,
}

fn day(secs: i64) -> String {
    crate::clock::Timestamp::from_secs(secs).to_date()
}

/// Build the report of one week from the store.
pub async fn build(
    store: &dyn Store,
    week: &IsoWeek,
    health: &crate::flywheel::health::HealthConfig,
) -> anyhow::Result<Report> {
    let model = build::build(store, week, health).await?;
    Ok(Report {
        week: week.clone(),
        markdown: render::markdown(&model),
        html: render::html(&model),
        model,
    })
}

/// Write `YYYY-Www.{md,html,json}` into `dir`; returns the paths. Each file is written whole
/// or not at all: into a temporary file in the same directory, synced, then renamed over the
/// old one, so a crash mid-write leaves the previous version (and at worst a `.tmp` file that
/// the next write's clean-up removes), never a truncated report.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    remove_stale_temporaries(dir);
    let base = dir.join(&report.week.label);
    let mut out = Vec::new();
    for (ext, body) in [
        ("md", report.markdown.clone()),
        ("html", report.html.clone()),
        ("json", serde_json::to_string_pretty(&report.model)? + "\n"),
    ] {
        let p = base.with_extension(ext);
        let mut tmp = tempfile::Builder::new()
            .prefix(TMP_PREFIX)
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
        tmp.write_all(body.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write {}", p.display()))?;
        tmp.persist(&p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        out.push(p);
    }
    // Make the renames durable too.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(out)
}

/// Temporary report files start with this (hidden, never served or listed).
const TMP_PREFIX: &str = ".report-";

/// Remove temporary files a crash left behind (older than a minute, so a concurrent writer's
/// file is left alone).
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(60));
        if old && e.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// The weekly report as a scheduled job (`weekly_report`, Mondays 06:00 UTC by default): the
/// window is the ISO week that ended before the fire.
pub struct ReportJob {
    pub schedule: crate::jobs::schedule::CronSchedule,
    pub health: crate::flywheel::health::HealthConfig,
    pub store: std::sync::Arc<dyn Store>,
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl crate::jobs::Job for ReportJob {
    type Findings = ();
    fn name(&self) -> String {
        "weekly_report".into()
    }
    fn schedule(&self) -> &crate::jobs::schedule::CronSchedule {
        &self.schedule
    }
    fn max_catch_up(&self) -> usize {
        2
    }
    fn window_for(&self, fired_at: i64) -> (i64, i64) {
        let w = IsoWeek::last_complete(fired_at);
        (w.start, w.end)
    }
    async fn run(&self, _fired_at: i64, window: (i64, i64)) -> anyhow::Result<crate::jobs::Output> {
        let week = IsoWeek::containing(window.0);
        // No report for a week that ended before the first event: it would be empty.
        if crate::store::models_before(self.store.as_ref(), week.end)
            .await?
            .is_empty()
        {
            return Ok(crate::jobs::Output {
                detail: json!({"week": week.label, "skipped": "no events before the end of the week"}),
                results: Vec::new(),
                findings: (),
            });
        }
        let report = build(self.store.as_ref(), &week, &self.health).await?;
        let dir = self.dir.clone();
        let files = tokio::task::spawn_blocking(move || write(&report, &dir)).await??;
        Ok(crate::jobs::Output {
            detail: json!({"week": week.label, "files": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()}),
            results: Vec::new(),
            findings: (),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_weeks_parse_and_cross_years() {
        let w = IsoWeek::parse("2026-W48").expect("week");
        assert_eq!(day(w.start), "2026-11-23");
        assert_eq!(w.end - w.start, 7 * DAY);
        // 2027-W01 starts on Monday 2027-01-04; 2026-12-31 is in 2026-W53.
        assert_eq!(
            day(IsoWeek::parse("2027-W01").expect("w").start),
            "2027-01-04"
        );
        assert_eq!(
            IsoWeek::containing(IsoWeek::parse("2027-W01").expect("w").start - 1).label,
            "2026-W53"
        );
        assert_eq!(IsoWeek::last_complete(w.start + 3600).label, "2026-W47");
        for bad in ["2026-48", "2026-W54", "W48", "2026-Wxx"] {
            assert!(IsoWeek::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn charts_have_titles_axes_and_legends() {
        let svg = charts::lines(
            "Feedback volume",
            "day (UTC)",
            "events per day",
            &[
                charts::Series {
                    name: "feedback",
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                    color: charts::BLUE,
                },
                charts::Series {
                    name: "interactions",
                    points: vec![(0.0, 3.0), (1.0, 4.0)],
                    color: charts::GREEN,
                },
            ],
            &[(0.0, 0.5, 1.5), (1.0, 1.5, 2.5)],
            &|x| format!("{x:.0}"),
        );
        for text in [
            "<svg",
            "Feedback volume",
            "day (UTC)",
            "events per day",
            "interactions",
        ] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
        let hm = charts::heatmap(
            "Cohorts",
            "weeks since first activity",
            &["2026-11-02".into()],
            &[vec![Some(1.0), Some(0.5), None]],
        );
        assert!(
            hm.contains("Cohorts")
                && hm.contains("50%")
                && hm.contains("weeks since first activity")
        );
    }

    #[test]
    fn the_learning_curve_chart_draws_points_fit_and_forecast() {
        let pts: Vec<(f64, f64)> = (1..=8)
            .map(|c| {
                let n = 10_000.0 * c as f64;
                (n, 0.9 - 2.0 * n.powf(-0.5) + 0.0005 * (c as f64).sin())
            })
            .collect();
        let f = crate::flywheel::learning_curve::forecast(&pts, true, Some(10_000.0));
        let svg = build::learning_curve_chart("m", "ndcg", &f);
        for text in [
            "<svg",
            "learning curve",
            "training examples",
            "fitted curve",
            "evaluations",
        ] {
            assert!(svg.contains(text), "{text} missing from the SVG");
        }
        let none = crate::flywheel::learning_curve::forecast(&pts[..3], true, None);
        assert!(build::learning_curve_chart("m", "ndcg", &none).is_empty());
    }
}
