//! Server-rendered pages (no build step): the status page at `/`, the weekly reports at
//! `/reports/YYYY-Www.{html,md,json}` and their list at `GET /v1/reports`.

use super::{ApiError, AppState};
use crate::store::ResultQuery;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::fmt::Write as _;

use crate::report::esc;

fn reports_dir(state: &AppState) -> std::path::PathBuf {
    state.config.data_dir.join("reports")
}

/// Report weeks on disk, newest first.
fn report_weeks(state: &AppState) -> Vec<String> {
    let mut weeks: Vec<String> = std::fs::read_dir(reports_dir(state))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".html").map(str::to_owned)
        })
        .filter(|w| crate::report::IsoWeek::parse(w).is_ok())
        .collect();
    weeks.sort();
    weeks.reverse();
    weeks
}

pub async fn list_reports(State(state): State<AppState>) -> Json<Value> {
    let reports: Vec<Value> = report_weeks(&state)
        .into_iter()
        .map(|w| {
            json!({
                "week": w,
                "html": format!("/reports/{w}.html"),
                "markdown": format!("/reports/{w}.md"),
                "json": format!("/reports/{w}.json"),
            })
        })
        .collect();
    Json(json!({ "reports": reports }))
}

/// `/reports/{file}`: only `YYYY-Www.html|md|json` names are served.
pub async fn report_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let (week, ext) = file
        .rsplit_once('.')
        .ok_or_else(|| ApiError::not_found("no such report"))?;
    let ctype = match ext {
        "html" => "text/html; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "json" => "application/json",
        _ => return Err(ApiError::not_found("no such report")),
    };
    let week = crate::report::IsoWeek::parse(week).map_err(|_| {
        ApiError::not_found("no such report (names are YYYY-Www.html, .md or .json)")
    })?;
    let path = reports_dir(&state).join(format!("{}.{ext}", week.label));
    let body = tokio::fs::read(&path).await.map_err(|_| {
        ApiError::not_found(format!(
            "no report for {} yet (flywheel report --week {} writes it)",
            week.label, week.label
        ))
    })?;
    Ok((
        [(header::CONTENT_TYPE, HeaderValue::from_static(ctype))],
        body,
    )
        .into_response())
}

const ROUTES: &[(&str, &str)] = &[
    ("POST /v1/events", "ingest events (JSON array or NDJSON)"),
    ("GET /v1/models", "models, versions and event counts"),
    (
        "GET /v1/models/{id}/features",
        "feature summaries over a range",
    ),
    ("GET /v1/drift/latest?model=", "latest drift per monitor"),
    ("GET /v1/drift?model=&feature=", "a feature's drift history"),
    (
        "GET /v1/health?model=",
        "flywheel health: arcs, feedback, velocity, uplift, retention, funnel",
    ),
    ("GET /v1/health/history?model=", "health states over time"),
    ("GET /v1/alerts", "active alerts and history"),
    ("GET /v1/jobs", "scheduled jobs, next fire, last run"),
    ("GET /v1/jobs/runs", "recorded runs"),
    (
        "GET /v1/baselines",
        "reference datasets and baseline policies",
    ),
    ("GET /v1/reports", "weekly reports"),
    ("GET /metrics", "Prometheus metrics"),
];

/// `/`: models and their arcs, active alerts, the last task runs, reports, the API.
pub async fn status(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let counts = state.store.series().type_counts().await?;
    let mut models: Vec<String> = counts.iter().map(|c| c.model.clone()).collect();
    models.dedup();
    let mut h = String::new();
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>flywheel status</title>\n<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}table{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}td,th{border:1px solid #ddd;padding:.35em .6em;text-align:left;font-size:.92em;vertical-align:top}th{background:#f6f6f6}.OK{color:#2c7a2c}.SLOWING{color:#b8860b}.PLATEAU{color:#d2691e;font-weight:600}.REGRESSING{color:#c00;font-weight:600}.INSUFFICIENT{color:#888}.firing{color:#c00;font-weight:600}.pending{color:#b8860b}code{background:#f4f4f4;padding:0 .3em}</style></head><body>\n<h1>flywheel</h1>\n");
    let _ = writeln!(
        h,
        "<p>Version {} · data in <code>{}</code></p>",
        env!("CARGO_PKG_VERSION"),
        esc(&state.config.data_dir.display().to_string())
    );
    h.push_str("<h2>Models</h2>\n");
    if models.is_empty() {
        h.push_str("<p>No events yet: <code>POST /v1/events</code> (see README.md), or run <code>flywheel demo</code>.</p>\n");
    } else {
        h.push_str("<table><tr><th>model</th><th>events</th><th>input</th><th>learning</th><th>output</th><th>loop</th><th>data quality</th><th>verdict</th></tr>\n");
        for m in &models {
            let n: u64 = counts
                .iter()
                .filter(|c| &c.model == m)
                .map(|c| c.count)
                .sum();
            let health = state
                .store
                .jobs()
                .results(&ResultQuery {
                    job_prefix: Some(crate::flywheel::job::JOB_NAME.into()),
                    model: Some(m.clone()),
                    subject: Some("health".into()),
                    latest: Some(1),
                    ..Default::default()
                })
                .await?;
            let d = health
                .first()
                .map(|r| r.data.clone())
                .unwrap_or(Value::Null);
            let _ = write!(
                h,
                "<tr><td><a href=\"/v1/health?model={m}\">{m}</a></td><td>{n}</td>",
                m = esc(m)
            );
            for arc in ["input", "learning", "output", "loop"] {
                let st = d["arcs"][arc]["state"].as_str().unwrap_or("–");
                let why = d["arcs"][arc]["why"].as_str().unwrap_or("");
                let _ = write!(h, "<td class=\"{st}\" title=\"{}\">{st}</td>", esc(why));
            }
            // The newest quality window: its verdict and the rules that failed.
            let quality = state
                .store
                .jobs()
                .results(&ResultQuery {
                    job_prefix: Some(crate::quality::job::JOB_NAME.into()),
                    model: Some(m.clone()),
                    subject: Some(crate::quality::job::VERDICT.into()),
                    latest: Some(1),
                    ..Default::default()
                })
                .await?;
            let (grade, failed) = quality
                .first()
                .map_or(("–".to_owned(), String::new()), |r| {
                    let rules: Vec<&str> = r.data["failed_rules"]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    (
                        r.data["verdict"].as_str().unwrap_or("–").to_owned(),
                        rules.join(", "),
                    )
                });
            let _ = write!(
                h,
                "<td><a href=\"/v1/quality?model={}\">{}</a>{}</td>",
                esc(m),
                esc(&grade),
                if failed.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", esc(&failed))
                }
            );
            let _ = writeln!(
                h,
                "<td>{}</td></tr>",
                esc(d["verdict"].as_str().unwrap_or("no health run yet"))
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Active alerts</h2>\n");
    let alerts = state.store.alerts().active_alerts().await?;
    if alerts.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table><tr><th>alert</th><th>state</th><th>severity</th><th>model</th><th>summary</th></tr>\n");
        for a in &alerts {
            let g = |k: &str| esc(a.labels.get(k).map_or("", |s| s.as_str()));
            let _ = writeln!(h, "<tr><td><a href=\"{}\">{}</a></td><td class=\"{s}\">{s}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(a.annotations.get("runbook_url").map_or("", |s| s.as_str())), g("alertname"), g("severity"), g("model"), esc(a.annotations.get("summary").map_or("", |s| s.as_str())), s = a.state.as_str());
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h2>Scheduled tasks</h2>\n<table><tr><th>task</th><th>schedule (UTC)</th><th>last run</th><th>window end</th><th>outcome</th><th>duration</th></tr>\n");
    for j in &state.jobs.list {
        let last = state.store.jobs().runs(Some(&j.name()), 1).await?;
        let (when, win, outcome, dur) = match last.first() {
            Some(r) => (
                r.started_at.to_rfc3339(),
                crate::clock::rfc3339_secs(r.window_end),
                r.outcome.as_str().to_owned(),
                format!("{:.0} ms", r.duration_us as f64 / 1e3),
            ),
            None => ("never".into(), String::new(), String::new(), String::new()),
        };
        let _ = writeln!(h, "<tr><td>{}</td><td><code>{}</code></td><td>{when}</td><td>{win}</td><td>{}</td><td>{dur}</td></tr>", esc(&j.name()), esc(j.schedule().expr()), esc(&outcome));
    }
    h.push_str("</table>\n<h2>Weekly reports</h2>\n");
    let weeks = report_weeks(&state);
    if weeks.is_empty() {
        h.push_str("<p>None yet (written Mondays 06:00 UTC, or <code>flywheel report --week YYYY-Www</code>).</p>\n");
    } else {
        h.push_str("<ul>\n");
        for w in weeks.iter().take(12) {
            let _ = writeln!(h, "<li><a href=\"/reports/{w}.html\">{w}</a> (<a href=\"/reports/{w}.md\">md</a>, <a href=\"/reports/{w}.json\">json</a>)</li>");
        }
        h.push_str("</ul>\n");
    }
    h.push_str("<h2>API</h2>\n<table><tr><th>route</th><th>what</th></tr>\n");
    for (r, what) in ROUTES {
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>{}</td></tr>",
            esc(r),
            esc(what)
        );
    }
    h.push_str("</table>\n<p><a href=\"/metrics\">/metrics</a> · <a href=\"/healthz\">/healthz</a> · <a href=\"/readyz\">/readyz</a></p>\n</body></html>\n");
    Ok(Html(h))
}

/// `GET /runbooks`: every alert's runbook. Runbooks hold no data, so they are served without a
/// token: an on-call engineer opens them from an alert notification.
pub async fn runbook_index() -> Html<String> {
    let mut h = String::from(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>flywheel runbooks</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:52rem;margin:2rem auto;padding:0 1rem}</style>\
         </head><body>\n<h1>Runbooks</h1>\n<ul>\n",
    );
    for (name, md) in crate::alerts::runbooks::RUNBOOKS {
        let severity = md
            .lines()
            .find_map(|l| l.strip_prefix("**Severity:**"))
            .unwrap_or("")
            .trim();
        let _ = writeln!(
            h,
            "<li><a href=\"/runbooks/{name}\">{name}</a> — {}</li>",
            esc(severity)
        );
    }
    h.push_str("</ul>\n</body></html>\n");
    Html(h)
}

/// `GET /runbooks/{alertname}`: one runbook as HTML (`.md` appended: the Markdown source).
pub async fn runbook(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let unknown =
        || ApiError::not_found(format!("no runbook for {name:?}; GET /runbooks lists them"));
    if let Some(stem) = name.strip_suffix(".md") {
        let md = crate::alerts::runbooks::markdown(stem).ok_or_else(unknown)?;
        return Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/markdown; charset=utf-8"),
            )],
            md,
        )
            .into_response());
    }
    let base = state.config.external_url.as_deref().unwrap_or("");
    let page = crate::alerts::runbooks::html(&name, base).ok_or_else(unknown)?;
    Ok(Html(page).into_response())
}
