//! The weekly report: for one ISO week (`%G-W%V`, Monday to Monday, UTC), per model, a one-line
//! verdict, changes against the previous week, alerts fired, the state of each arc, drift and the
//! data funnel; written as Markdown, self-contained HTML with inline SVG charts, and a JSON
//! sidecar. Built only from stored results and summaries up to the week's end, and with no
//! "generated at" stamp, so regenerating a past week gives the same content.

pub mod charts;

use crate::drift::sketch::SketchCdf;
use crate::events::EventType;
use crate::store::{ResultQuery, Store};
use crate::summary::delta::SeriesClass;
use crate::summary::FeatureSummary;
use anyhow::Context;
use chrono::{Datelike, NaiveDate, Weekday};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
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

pub struct Report {
    pub week: IsoWeek,
    pub json: Value,
    pub markdown: String,
    pub html: String,
}

fn day(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

fn pct(v: &Value) -> String {
    v.as_f64()
        .map_or("–".into(), |x| format!("{:.1} %", x * 100.0))
}

fn num(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
        None => "–".into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The flywheel health of a model as of `at`, computed from the stored data (not read from the
/// health job's results, so that the report does not depend on which job ran first).
async fn health_at(
    store: &dyn Store,
    cfg: &crate::flywheel::health::HealthConfig,
    model: &str,
    at: i64,
) -> anyhow::Result<Value> {
    let h = crate::flywheel::job::health_at(store, cfg, model, at).await?;
    Ok(serde_json::to_value(&h)?)
}

fn merged(rows: Vec<crate::store::SummaryRow>) -> BTreeMap<String, FeatureSummary> {
    let mut m: BTreeMap<String, FeatureSummary> = BTreeMap::new();
    for r in rows {
        match m.get_mut(&r.name) {
            Some(s) => s.merge(&r.summary),
            None => {
                m.insert(r.name, r.summary);
            }
        }
    }
    m
}

type Points = Vec<(f64, f64)>;

/// Shares of reference and current over 20 quantile bins of the reference.
fn distribution(r: &FeatureSummary, c: &FeatureSummary) -> Option<(Points, Points)> {
    if r.moments.n == 0 || c.moments.n == 0 {
        return None;
    }
    let (a, b) = (SketchCdf::new(&r.sketch), SketchCdf::new(&c.sketch));
    let mut edges: Vec<f64> = (0..=20).map(|i| a.quantile(i as f64 / 20.0)).collect();
    edges[0] = r.min.min(c.min);
    edges[20] = r.max.max(c.max);
    edges.dedup();
    if edges.len() < 3 {
        return None;
    }
    let shares = |s: &SketchCdf| -> Vec<(f64, f64)> {
        edges
            .windows(2)
            .map(|w| {
                let lo = if w[0] == edges[0] { 0.0 } else { s.cdf(w[0]) };
                (
                    (w[0] + w[1]) / 2.0,
                    (s.cdf(w[1]) - lo) / (w[1] - w[0]).max(1e-12),
                )
            })
            .collect()
    };
    Some((shares(&a), shares(&b)))
}

/// Build the report of one week from the store.
pub async fn build(
    store: &dyn Store,
    week: &IsoWeek,
    health: &crate::flywheel::health::HealthConfig,
) -> anyhow::Result<Report> {
    let (ws, we) = (week.start, week.end);
    let models = crate::store::models_before(store, we).await?;
    let alerts_all = store.recent_alerts(ws * 1_000_000, 10_000).await?;
    let mut sections = Vec::new();
    for model in &models {
        let h = health_at(store, health, model, we).await?;
        let p = health_at(store, health, model, we - 7 * DAY).await?;
        let changes: Vec<Value> = [
            ("Interactions (7 days)", "/feedback/interactions_7d", false),
            ("Explicit feedback (7 days)", "/feedback/explicit_7d", false),
            ("Explicit feedback rate", "/feedback/explicit_rate/estimate", true),
            ("Positive share", "/feedback/positive_share/estimate", true),
            ("Usable (curated) items (7 days)", "/feedback/usable_7d", false),
            ("Velocity per cycle", "/velocity/per_cycle/estimate", false),
            ("D7 retention", "/retention/d7/value", true),
            ("Stickiness (DAU/MAU)", "/retention/stickiness", true),
        ]
        .iter()
        .map(|(name, ptr, is_pct)| {
            let (c, o) = (
                h.pointer(ptr).cloned().unwrap_or(Value::Null),
                p.pointer(ptr).cloned().unwrap_or(Value::Null),
            );
            let change = match (c.as_f64(), o.as_f64()) {
                (Some(a), Some(b)) if b != 0.0 => Some(a / b - 1.0),
                _ => None,
            };
            json!({"metric": name, "this_week": c, "previous_week": o, "change": change, "percent": is_pct})
        })
        .collect();
        // Drift in the week: per feature, windows drifted and the largest score.
        let drift_rows = store
            .results(&ResultQuery {
                job_prefix: Some("drift:".into()),
                model: Some(model.clone()),
                from: Some(ws),
                to: Some(we),
                ..Default::default()
            })
            .await?;
        let mut by_feature: BTreeMap<String, (u64, u64, f64, String)> = BTreeMap::new();
        let mut windows = std::collections::BTreeSet::new();
        for r in drift_rows.iter().filter(|r| r.subject != "_dataset") {
            windows.insert(r.window_end);
            let e = by_feature
                .entry(r.subject.clone())
                .or_insert((0, 0, 0.0, String::new()));
            e.1 += 1;
            if r.data["decision"] == "drift" {
                e.0 += 1;
            }
            // The score compared with the threshold (rows written before it existed: the effect).
            let eff = r.data["score"]
                .as_f64()
                .or(r.data["effect"].as_f64())
                .unwrap_or(0.0);
            if r.data["decision"] == "drift" && eff > e.2 {
                e.2 = eff;
                e.3 = r.data["method"].as_str().unwrap_or("").to_owned();
            }
        }
        let mut drifted: Vec<(String, u64, u64, f64)> = by_feature
            .into_iter()
            .filter(|(_, v)| v.0 > 0)
            .map(|(k, v)| (k, v.0, v.1, v.2))
            .collect();
        drifted.sort_by(|a, b| b.3.total_cmp(&a.3).then(a.0.cmp(&b.0)));
        drifted.truncate(10);
        // Reference (the week before) and current distributions of the top numeric inputs.
        let cur = merged(
            store
                .summaries(model, Some(SeriesClass::Input), ws, we)
                .await?,
        );
        let refr = merged(
            store
                .summaries(model, Some(SeriesClass::Input), ws - 7 * DAY, ws)
                .await?,
        );
        let mut dist_charts = Vec::new();
        for (subject, ..) in drifted.iter().filter(|d| d.0.starts_with("input/")).take(3) {
            let name = subject.trim_start_matches("input/");
            if let (Some(r), Some(c)) = (refr.get(name), cur.get(name)) {
                if let Some((a, b)) = distribution(r, c) {
                    dist_charts.push(charts::lines(
                        &format!("{name}: previous week vs this week"),
                        &format!("{name} (feature units)"),
                        "density (share per unit)",
                        &[
                            charts::Series {
                                name: "previous week (reference)",
                                points: a,
                                color: charts::GREY,
                            },
                            charts::Series {
                                name: "this week",
                                points: b,
                                color: charts::ORANGE,
                            },
                        ],
                        &[],
                        &|x| format!("{x:.1}"),
                    ));
                }
            }
        }
        // Feedback volume over 8 weeks, per day.
        let counts = store.bucket_counts(model, we - 56 * DAY, we).await?;
        let mut per_day: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
        for c in counts {
            let d = c.bucket - c.bucket.rem_euclid(DAY);
            let e = per_day.entry(d).or_default();
            match c.event_type {
                EventType::Feedback => e.0 += c.n as f64,
                EventType::Interaction => e.1 += c.n as f64,
                _ => {}
            }
        }
        let x_day = |x: &f64| day(*x as i64).get(5..).unwrap_or("").to_owned();
        let volume_chart = charts::lines(
            &format!(
                "{model}: daily feedback and interactions, 8 weeks to {}",
                day(we - DAY)
            ),
            "day (UTC)",
            "events per day",
            &[
                charts::Series {
                    name: "feedback events",
                    points: per_day.iter().map(|(d, v)| (*d as f64, v.0)).collect(),
                    color: charts::BLUE,
                },
                charts::Series {
                    name: "interactions",
                    points: per_day.iter().map(|(d, v)| (*d as f64, v.1)).collect(),
                    color: charts::GREEN,
                },
            ],
            &[],
            &x_day,
        );
        // Velocity: the metric per cycle, with the Sen line and its 90 % band over the window.
        let series: Vec<(f64, f64)> = h["velocity"]["series"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| Some((p[0].as_f64()?, p[1].as_f64()?)))
            .collect();
        let metric = h["velocity"]["metric"]
            .as_str()
            .unwrap_or("metric")
            .to_owned();
        let velocity_chart = if series.len() >= 2 {
            let pc = &h["velocity"]["per_cycle"];
            let k = series.len().min(8);
            let window = &series[series.len() - k..];
            let anchor = window.iter().map(|p| p.1).sum::<f64>() / k as f64;
            let xm = window.iter().map(|p| p.0).sum::<f64>() / k as f64;
            let line = |s: f64| {
                window
                    .iter()
                    .map(|p| (p.0, anchor + s * (p.0 - xm)))
                    .collect::<Vec<_>>()
            };
            let mut lines_ = vec![charts::Series {
                name: "evaluations",
                points: series.clone(),
                color: charts::BLUE,
            }];
            let mut band = Vec::new();
            if let (Some(e), Some(lo), Some(up)) = (
                pc["estimate"].as_f64(),
                pc["lower"].as_f64(),
                pc["upper"].as_f64(),
            ) {
                lines_.push(charts::Series {
                    name: "Sen slope (last k cycles)",
                    points: line(e),
                    color: charts::ORANGE,
                });
                band = window
                    .iter()
                    .map(|p| {
                        let (a, b) = (anchor + lo * (p.0 - xm), anchor + up * (p.0 - xm));
                        (p.0, a.min(b), a.max(b))
                    })
                    .collect();
            }
            charts::lines(
                &format!("{model}: {metric} per retraining cycle (90 % Sen band)"),
                "retraining cycle",
                &format!("{metric} (metric units)"),
                &lines_,
                &band,
                &|x| format!("{x:.0}"),
            )
        } else {
            String::new()
        };
        // Retention cohort matrix.
        let cohorts = h["retention"]["weekly_cohorts"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let labels: Vec<String> = cohorts
            .iter()
            .map(|c| c["start_day"].as_str().unwrap_or("").to_owned())
            .collect();
        let cells: Vec<Vec<Option<f64>>> = cohorts
            .iter()
            .map(|c| {
                let size = c["size"].as_f64().unwrap_or(0.0);
                c["retained"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| v.as_f64().filter(|_| size > 0.0).map(|x| x / size))
                    .collect()
            })
            .collect();
        let retention_chart = if cells.is_empty() {
            String::new()
        } else {
            charts::heatmap(
                &format!("{model}: weekly cohort retention (share of the cohort active)"),
                "weeks since first activity",
                &labels,
                &cells,
            )
        };
        let alerts: Vec<Value> = alerts_all
            .iter()
            .filter(|a| a.labels.get("model") == Some(model))
            .filter(|a| {
                a.starts_at.is_some_and(|s| s.secs() < we)
                    && a.state != crate::store::AlertState::Inactive
            })
            .map(|a| {
                json!({
                    "alertname": a.labels.get("alertname"), "severity": a.labels.get("severity"),
                    "state_now": a.state, "summary": a.annotations.get("summary"),
                    "started": a.starts_at.map(|s| day(s.secs())),
                    "resolved": a.ends_at.filter(|e| e.secs() < we).map(|e| day(e.secs())),
                })
            })
            .filter(|a| a["resolved"].is_null() || a["resolved"].as_str() >= Some(day(ws).as_str()))
            .collect();
        sections.push(json!({
            "model": model,
            "verdict": h["verdict"].as_str().unwrap_or("No health result for this week yet (the health job runs daily)."),
            "health_as_of": day(we - DAY),
            "changes": changes,
            "alerts": alerts,
            "arcs": h["arcs"],
            "drift": {
                "windows": windows.len(),
                "features": drifted.iter().map(|(s, d, n, e)| json!({"feature": s, "drifted_windows": d, "windows": n, "max_effect": e})).collect::<Vec<_>>(),
            },
            "funnel": h["funnel"],
            "charts": {"volume": volume_chart, "velocity": velocity_chart, "retention": retention_chart, "drift": dist_charts},
        }));
    }
    let headline = match sections.first() {
        Some(s) if sections.len() == 1 => format!(
            "{}: {}",
            s["model"].as_str().unwrap_or(""),
            s["verdict"].as_str().unwrap_or("")
        ),
        Some(_) => sections
            .iter()
            .map(|s| {
                format!(
                    "{}: {}",
                    s["model"].as_str().unwrap_or(""),
                    s["verdict"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(" · "),
        None => "No events were received before the end of this week.".into(),
    };
    let json_out = json!({
        "week": week.label, "from": day(ws), "to": day(we - DAY), "verdict": headline,
        "models": sections.iter().map(|s| { let mut s = s.clone(); if let Some(o) = s.as_object_mut() { o.remove("charts"); } s }).collect::<Vec<_>>(),
    });
    Ok(Report {
        week: week.clone(),
        markdown: markdown(week, &headline, &sections),
        html: html(week, &headline, &sections),
        json: json_out,
    })
}

fn change_cell(c: &Value) -> String {
    let f = |v: &Value| if c["percent"] == true { pct(v) } else { num(v) };
    let ch = c["change"]
        .as_f64()
        .map_or(String::new(), |x| format!(" ({:+.0} %)", x * 100.0));
    format!("{} | {}{}", f(&c["previous_week"]), f(&c["this_week"]), ch)
}

fn markdown(week: &IsoWeek, headline: &str, sections: &[Value]) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# flywheel weekly report {} ({} to {})\n",
        week.label,
        day(week.start),
        day(week.end - DAY)
    );
    let _ = writeln!(m, "**{headline}**\n");
    for s in sections {
        let model = s["model"].as_str().unwrap_or("");
        let _ = writeln!(
            m,
            "## {model}\n\n**Verdict:** {}\n",
            s["verdict"].as_str().unwrap_or("")
        );
        let _ = writeln!(m, "### Changes against the previous week\n\n| metric | previous week | this week |\n|---|---|---|");
        for c in s["changes"].as_array().into_iter().flatten() {
            let _ = writeln!(
                m,
                "| {} | {} |",
                c["metric"].as_str().unwrap_or(""),
                change_cell(c)
            );
        }
        let _ = writeln!(m, "\n### Alerts fired\n");
        let alerts = s["alerts"].as_array().cloned().unwrap_or_default();
        if alerts.is_empty() {
            let _ = writeln!(m, "None.");
        }
        for a in alerts {
            let _ = writeln!(
                m,
                "- **{}** ({}) since {}{}: {}",
                a["alertname"].as_str().unwrap_or(""),
                a["severity"].as_str().unwrap_or(""),
                a["started"].as_str().unwrap_or("?"),
                a["resolved"]
                    .as_str()
                    .map_or(String::new(), |r| format!(", resolved {r}")),
                a["summary"].as_str().unwrap_or("")
            );
        }
        let _ = writeln!(m, "\n### Plateau state per arc\n\n| arc | state | why | since | what to try |\n|---|---|---|---|---|");
        for (arc, a) in s["arcs"].as_object().into_iter().flatten() {
            let _ = writeln!(
                m,
                "| {arc} | {} | {} | {} | {} |",
                a["state"].as_str().unwrap_or(""),
                a["why"].as_str().unwrap_or("").replace('|', "/"),
                a["since"].as_str().unwrap_or("–"),
                a["advice"].as_str().unwrap_or("")
            );
        }
        let _ = writeln!(m, "\n### Drift ({} windows)\n", s["drift"]["windows"]);
        let feats = s["drift"]["features"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if feats.is_empty() {
            let _ = writeln!(m, "No feature drifted.");
        } else {
            let _ = writeln!(
                m,
                "| feature | windows drifted | largest score |\n|---|---|---|"
            );
            for f in feats {
                let _ = writeln!(
                    m,
                    "| {} | {} of {} | {:.3} |",
                    f["feature"].as_str().unwrap_or(""),
                    f["drifted_windows"],
                    f["windows"],
                    f["max_effect"].as_f64().unwrap_or(0.0)
                );
            }
        }
        let fu = &s["funnel"];
        let _ = writeln!(
            m,
            "\n### Data funnel (lookback)\n\n| stage | items | conversion |\n|---|---|---|"
        );
        for st in [
            "collected",
            "quality_passed",
            "consented",
            "curated",
            "used_in_training",
        ] {
            let _ = writeln!(
                m,
                "| {st} | {} | {} |",
                num(&fu["stages"][st]),
                pct(&fu["conversions"][st])
            );
        }
        let _ = writeln!(
            m,
            "\nYield {}, hoarding index {}, training-consent violations {}.\n",
            pct(&fu["yield_ratio"]),
            pct(&fu["hoarding_index"]),
            num(&fu["training_consent_violations"])
        );
        let _ = writeln!(m, "Charts: see the HTML report.\n");
    }
    m
}

fn html(week: &IsoWeek, headline: &str, sections: &[Value]) -> String {
    let mut h = String::new();
    let _ = write!(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>flywheel weekly report {w}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;padding:0 1em}}h1{{font-size:1.6em}}.verdict{{font-size:1.2em;padding:.8em 1em;border-left:6px solid #1f77b4;background:#f3f7fb}}table{{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}}td,th{{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top;font-size:.92em}}th{{background:#f6f6f6}}.OK{{color:#2c7a2c}}.SLOWING{{color:#b8860b}}.PLATEAU{{color:#d2691e;font-weight:600}}.REGRESSING{{color:#c00;font-weight:600}}.INSUFFICIENT{{color:#888}}figure{{margin:1em 0}}</style></head><body>\n<h1>flywheel weekly report {w} <small>({a} to {b}, UTC)</small></h1>\n<p class=\"verdict\">{v}</p>\n", w = week.label, a = day(week.start), b = day(week.end - DAY), v = esc(headline));
    for s in sections {
        let model = esc(s["model"].as_str().unwrap_or(""));
        let _ = write!(h, "<h2>{model}</h2>\n<p class=\"verdict\">{}</p>\n<h3>Changes against the previous week</h3>\n<table><tr><th>metric</th><th>previous week</th><th>this week</th></tr>\n", esc(s["verdict"].as_str().unwrap_or("")));
        for c in s["changes"].as_array().into_iter().flatten() {
            let cell = change_cell(c);
            let (prev, this) = cell.split_once(" | ").unwrap_or((&cell, ""));
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(c["metric"].as_str().unwrap_or("")),
                esc(prev),
                esc(this)
            );
        }
        let _ = write!(h, "</table>\n<h3>Alerts fired</h3>\n");
        let alerts = s["alerts"].as_array().cloned().unwrap_or_default();
        if alerts.is_empty() {
            h.push_str("<p>None.</p>\n");
        } else {
            h.push_str("<table><tr><th>alert</th><th>severity</th><th>since</th><th>resolved</th><th>summary</th></tr>\n");
            for a in alerts {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(a["alertname"].as_str().unwrap_or("")),
                    esc(a["severity"].as_str().unwrap_or("")),
                    esc(a["started"].as_str().unwrap_or("")),
                    esc(a["resolved"].as_str().unwrap_or("still firing")),
                    esc(a["summary"].as_str().unwrap_or(""))
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("<h3>Plateau state per arc</h3>\n<table><tr><th>arc</th><th>state</th><th>why</th><th>since</th><th>what to try</th></tr>\n");
        for (arc, a) in s["arcs"].as_object().into_iter().flatten() {
            let st = a["state"].as_str().unwrap_or("");
            let _ = writeln!(h, "<tr><td>{arc}</td><td class=\"{st}\">{st}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(a["why"].as_str().unwrap_or("")), esc(a["since"].as_str().unwrap_or("–")), esc(a["advice"].as_str().unwrap_or("")));
        }
        h.push_str("</table>\n");
        for key in ["volume", "velocity", "retention"] {
            if let Some(svg) = s["charts"][key].as_str().filter(|x| !x.is_empty()) {
                let _ = writeln!(h, "<figure>{svg}</figure>");
            }
        }
        let _ = writeln!(h, "<h3>Drift ({} windows)</h3>", s["drift"]["windows"]);
        let feats = s["drift"]["features"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if feats.is_empty() {
            h.push_str("<p>No feature drifted.</p>\n");
        } else {
            h.push_str(
                "<table><tr><th>feature</th><th>windows drifted</th><th>largest score</th></tr>\n",
            );
            for f in feats {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{} of {}</td><td>{:.3}</td></tr>",
                    esc(f["feature"].as_str().unwrap_or("")),
                    f["drifted_windows"],
                    f["windows"],
                    f["max_effect"].as_f64().unwrap_or(0.0)
                );
            }
            h.push_str("</table>\n");
        }
        for svg in s["charts"]["drift"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str())
        {
            let _ = writeln!(h, "<figure>{svg}</figure>");
        }
        let fu = &s["funnel"];
        h.push_str("<h3>Data funnel (lookback)</h3>\n<table><tr><th>stage</th><th>items</th><th>conversion from the stage before</th></tr>\n");
        for st in [
            "collected",
            "quality_passed",
            "consented",
            "curated",
            "used_in_training",
        ] {
            let _ = writeln!(
                h,
                "<tr><td>{st}</td><td>{}</td><td>{}</td></tr>",
                num(&fu["stages"][st]),
                pct(&fu["conversions"][st])
            );
        }
        let _ = write!(
            h,
            "</table>\n<p>Yield {}, hoarding index {}, training-consent violations {}.</p>\n",
            pct(&fu["yield_ratio"]),
            pct(&fu["hoarding_index"]),
            num(&fu["training_consent_violations"])
        );
    }
    h.push_str("</body></html>\n");
    h
}

/// Write `YYYY-Www.{md,html,json}` into `dir`; returns the paths.
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let base = dir.join(&report.week.label);
    let mut out = Vec::new();
    for (ext, body) in [
        ("md", report.markdown.clone()),
        ("html", report.html.clone()),
        (
            "json",
            serde_json::to_string_pretty(&report.json).unwrap_or_default() + "\n",
        ),
    ] {
        let p = base.with_extension(ext);
        std::fs::write(&p, body).with_context(|| format!("cannot write {}", p.display()))?;
        out.push(p);
    }
    Ok(out)
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
}
