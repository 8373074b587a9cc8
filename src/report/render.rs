//! The weekly report written out: Markdown and self-contained HTML (inline SVG charts) from the
//! one [`WeeklyReport`] model.

use super::model::{Change, ModelSection, MultivariateWeek, WeeklyReport};
use crate::flywheel::learning_curve::{Expected, Forecast};
use std::fmt::Write as _;

const STAGES: [&str; 5] = [
    "collected",
    "quality_passed",
    "consented",
    "curated",
    "used_in_training",
];

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| format!("{:.1} %", x * 100.0))
}

fn num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
        Some(x) => format!("{x:.4}"),
        None => "–".into(),
    }
}

/// Escape text for HTML element content and quoted attributes (the report and the status pages).
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Previous and this week's value of a change, as cells.
fn change_cells(c: &Change) -> (String, String) {
    let f = |v: Option<f64>| if c.percent { pct(v) } else { num(v) };
    let ch = c
        .change
        .map_or(String::new(), |x| format!(" ({:+.0} %)", x * 100.0));
    (f(c.previous_week), format!("{}{}", f(c.this_week), ch))
}

fn expected(e: &Expected) -> String {
    match (e.lower, e.upper) {
        (Some(l), Some(u)) => format!("{:+.4} (90 % interval {l:+.4} to {u:+.4})", e.estimate),
        _ => format!("{:+.4} (no interval: too few refits)", e.estimate),
    }
}

/// The learning-curve forecast in one or two sentences.
fn forecast_text(metric: &str, f: &Forecast) -> String {
    let mut t = String::new();
    match (&f.curve, f.examples) {
        (Some(c), Some(n)) => {
            let ceiling = if f.higher_is_better {
                c.ceiling
            } else {
                -c.ceiling
            };
            let shape = if c.b < 0.02 {
                "a nearly logarithmic curve".to_owned()
            } else {
                format!(
                    "{metric} = {ceiling:.4} {} {:.4}·n^−{:.3}{}",
                    if f.higher_is_better { "−" } else { "+" },
                    c.a,
                    c.b,
                    if f.higher_is_better {
                        ""
                    } else {
                        ", lower is better"
                    },
                )
            };
            let _ = write!(
                t,
                "Fitted on {} evaluations ({shape}, RMSE {:.4}); latest model trained on {n:.0} examples.",
                f.points.len(),
                c.rmse,
            );
            if let (Some(e), Some(to)) = (&f.next_cycle_gain, f.next_examples) {
                let _ = write!(t, " Next cycle ({to:.0} examples): {}.", expected(e));
            }
            if let Some(e) = &f.doubling_gain {
                let _ = write!(
                    t,
                    " Twice the data ({:.0} examples): {}.",
                    2.0 * n,
                    expected(e)
                );
            }
            if let Some(note) = &f.note {
                let mut chars = note.chars();
                let first = chars.next().map(|c| c.to_uppercase().to_string());
                let _ = write!(t, " {}{}.", first.unwrap_or_default(), chars.as_str());
            }
        }
        _ => t.push_str(f.note.as_deref().unwrap_or("No learning curve.")),
    }
    t
}

pub fn markdown(r: &WeeklyReport) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# flywheel weekly report {} ({} to {})\n",
        r.week, r.from, r.to
    );
    let _ = writeln!(m, "**{}**\n", r.verdict);
    for s in &r.models {
        markdown_section(&mut m, s);
    }
    m
}

fn markdown_section(m: &mut String, s: &ModelSection) {
    let _ = writeln!(m, "## {}\n\n**Verdict:** {}\n", s.model, s.verdict);
    let _ = writeln!(m, "### Changes against the previous week\n\n| metric | previous week | this week |\n|---|---|---|");
    for c in &s.changes {
        let (prev, this) = change_cells(c);
        let _ = writeln!(m, "| {} | {prev} | {this} |", c.metric);
    }
    for t in feedback_segments_text(s) {
        let _ = writeln!(m, "\n{t}");
    }
    let _ = writeln!(m, "\n### Alerts fired\n");
    if s.alerts.is_empty() {
        let _ = writeln!(m, "None.");
    }
    for a in &s.alerts {
        let _ = writeln!(
            m,
            "- **{}** ({}) since {}{}: {}",
            a.alertname,
            a.severity,
            a.started.as_deref().unwrap_or("?"),
            a.resolved
                .as_deref()
                .map_or(String::new(), |r| format!(", resolved {r}")),
            a.summary
        );
    }
    let _ = writeln!(m, "\n### Plateau state per arc\n\n| arc | state | why | since | what to try |\n|---|---|---|---|---|");
    for (arc, a) in &s.arcs {
        let _ = writeln!(
            m,
            "| {arc} | {} | {} | {} | {} |",
            a.state.as_str(),
            a.why.replace('|', "/"),
            a.since.as_deref().unwrap_or("–"),
            a.advice
        );
    }
    let metric = s.metric.as_deref().unwrap_or("metric");
    let _ = writeln!(
        m,
        "\n### Learning curve\n\n{}",
        forecast_text(metric, &s.learning_curve)
    );
    let _ = writeln!(m, "\n### Drift ({} windows)\n", s.drift.windows);
    if s.drift.features.is_empty() {
        let _ = writeln!(m, "No feature drifted.");
    } else {
        let _ = writeln!(
            m,
            "| feature | windows drifted | largest score |\n|---|---|---|"
        );
        for f in &s.drift.features {
            let _ = writeln!(
                m,
                "| {} | {} of {} | {:.3} ({}) |",
                f.feature, f.drifted_windows, f.windows, f.largest_score, f.method
            );
        }
    }
    if let Some(mv) = &s.drift.multivariate {
        let _ = writeln!(m, "\n{}", multivariate_text(mv));
    }
    if let Some(t) = segments_text(&s.drift.segments) {
        let _ = writeln!(m, "\n{t}");
    }
    if let Some(p) = &s.performance {
        performance_markdown(m, p);
    }
    if let Some(q) = &s.quality {
        let _ = writeln!(m, "\n### Data quality ({} windows)\n", q.summary.windows);
        for line in quality_lines(q) {
            let _ = writeln!(m, "{line}\n");
        }
    }
    let fu = &s.funnel;
    let _ = writeln!(
        m,
        "\n### Data funnel (lookback)\n\n| stage | items | conversion |\n|---|---|---|"
    );
    for st in STAGES {
        let _ = writeln!(
            m,
            "| {st} | {} | {} |",
            num(fu.stages.get(st).map(|n| *n as f64)),
            pct(fu.conversions.get(st).copied().flatten())
        );
    }
    let _ = writeln!(
        m,
        "\nYield {}, hoarding index {}, training-consent violations {}, withdrawals of training consent after the data was used: {} users ({} user-days).\n",
        pct(fu.yield_ratio),
        pct(fu.hoarding_index),
        fu.training_consent_violations,
        fu.withdrawn_after_training_users,
        fu.withdrawn_after_training_user_days
    );
    let _ = writeln!(m, "Charts: see the HTML report.\n");
}

pub fn html(r: &WeeklyReport) -> String {
    let mut h = String::new();
    let _ = write!(h, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>flywheel weekly report {w}</title>\n<style>body{{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222;padding:0 1em}}h1{{font-size:1.6em}}.verdict{{font-size:1.2em;padding:.8em 1em;border-left:6px solid #1f77b4;background:#f3f7fb}}table{{border-collapse:collapse;margin:.5em 0 1.5em;width:100%}}td,th{{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top;font-size:.92em}}th{{background:#f6f6f6}}.OK{{color:#2c7a2c}}.SLOWING{{color:#b8860b}}.PLATEAU{{color:#d2691e;font-weight:600}}.REGRESSING{{color:#c00;font-weight:600}}.INSUFFICIENT{{color:#888}}figure{{margin:1em 0}}</style></head><body>\n<h1>flywheel weekly report {w} <small>({a} to {b}, UTC)</small></h1>\n<p class=\"verdict\">{v}</p>\n", w = r.week, a = r.from, b = r.to, v = esc(&r.verdict));
    for s in &r.models {
        html_section(&mut h, s);
    }
    h.push_str("</body></html>\n");
    h
}

fn figure(h: &mut String, svg: &str) {
    if !svg.is_empty() {
        let _ = writeln!(h, "<figure>{svg}</figure>");
    }
}

fn html_section(h: &mut String, s: &ModelSection) {
    let _ = write!(h, "<h2>{}</h2>\n<p class=\"verdict\">{}</p>\n<h3>Changes against the previous week</h3>\n<table><tr><th>metric</th><th>previous week</th><th>this week</th></tr>\n", esc(&s.model), esc(&s.verdict));
    for c in &s.changes {
        let (prev, this) = change_cells(c);
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(c.metric),
            esc(&prev),
            esc(&this)
        );
    }
    h.push_str("</table>\n");
    for t in feedback_segments_text(s) {
        let _ = writeln!(h, "<p>{}</p>", esc(&t));
    }
    h.push_str("<h3>Alerts fired</h3>\n");
    if s.alerts.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table><tr><th>alert</th><th>severity</th><th>since</th><th>resolved</th><th>summary</th></tr>\n");
        for a in &s.alerts {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.alertname),
                esc(&a.severity),
                esc(a.started.as_deref().unwrap_or("")),
                esc(a.resolved.as_deref().unwrap_or("still firing")),
                esc(&a.summary)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Plateau state per arc</h3>\n<table><tr><th>arc</th><th>state</th><th>why</th><th>since</th><th>what to try</th></tr>\n");
    for (arc, a) in &s.arcs {
        let st = a.state.as_str();
        let _ = writeln!(
            h,
            "<tr><td>{arc}</td><td class=\"{st}\">{st}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.why),
            esc(a.since.as_deref().unwrap_or("–")),
            esc(a.advice)
        );
    }
    h.push_str("</table>\n");
    figure(h, &s.charts.volume);
    figure(h, &s.charts.velocity);
    let metric = s.metric.as_deref().unwrap_or("metric");
    let _ = writeln!(
        h,
        "<h3>Learning curve</h3>\n<p>{}</p>",
        esc(&forecast_text(metric, &s.learning_curve))
    );
    figure(h, &s.charts.learning_curve);
    figure(h, &s.charts.retention);
    let _ = writeln!(h, "<h3>Drift ({} windows)</h3>", s.drift.windows);
    if s.drift.features.is_empty() {
        h.push_str("<p>No feature drifted.</p>\n");
    } else {
        h.push_str(
            "<table><tr><th>feature</th><th>windows drifted</th><th>largest score</th></tr>\n",
        );
        for f in &s.drift.features {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{} of {}</td><td>{:.3} ({})</td></tr>",
                esc(&f.feature),
                f.drifted_windows,
                f.windows,
                f.largest_score,
                esc(&f.method)
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(mv) = &s.drift.multivariate {
        let _ = writeln!(h, "<p>{}</p>", esc(&multivariate_text(mv)));
    }
    if let Some(t) = segments_text(&s.drift.segments) {
        let _ = writeln!(h, "<p>{}</p>", esc(&t));
    }
    for svg in &s.charts.drift {
        figure(h, svg);
    }
    if let Some(q) = &s.quality {
        let _ = writeln!(h, "<h3>Data quality ({} windows)</h3>", q.summary.windows);
        for line in quality_lines(q) {
            let _ = writeln!(h, "<p>{}</p>", esc(&line));
        }
    }
    if let Some(p) = &s.performance {
        performance_html(h, p);
        figure(h, &s.charts.performance);
        figure(h, &s.charts.reliability);
    }
    let fu = &s.funnel;
    h.push_str("<h3>Data funnel (lookback)</h3>\n<table><tr><th>stage</th><th>items</th><th>conversion from the stage before</th></tr>\n");
    for st in STAGES {
        let _ = writeln!(
            h,
            "<tr><td>{st}</td><td>{}</td><td>{}</td></tr>",
            num(fu.stages.get(st).map(|n| *n as f64)),
            pct(fu.conversions.get(st).copied().flatten())
        );
    }
    let _ = write!(
        h,
        "</table>\n<p>Yield {}, hoarding index {}, training-consent violations {}, withdrawals of training consent after the data was used: {} users ({} user-days).</p>\n",
        pct(fu.yield_ratio),
        pct(fu.hoarding_index),
        fu.training_consent_violations,
        fu.withdrawn_after_training_users,
        fu.withdrawn_after_training_user_days
    );
}

/// One row per day: (date, predictions, labelled, coverage, realized, estimated, AUC, verdict).
fn performance_rows(p: &crate::performance::Performance) -> Vec<[String; 8]> {
    p.windows
        .iter()
        .map(|w| {
            let (realized, auc) = match (&w.realized.binary, &w.realized.regression) {
                (Some(b), _) => (pct(b.accuracy), num(b.roc_auc)),
                (None, Some(r)) => (format!("MAE {:.4}", r.mae), "–".into()),
                _ => ("–".into(), "–".into()),
            };
            let estimated = w.estimated.as_ref().map_or_else(
                || format!("– ({:?})", w.estimate_status).to_lowercase(),
                |e| pct(e.accuracy),
            );
            let verdict = match (&w.degraded_realized, &w.degraded_estimated) {
                (Some(d), _) if d.degraded => "dropped (labels)",
                (_, Some(d)) if d.degraded => "dropped (estimate)",
                (Some(_), _) | (_, Some(_)) => "ok",
                _ => "–",
            };
            [
                super::day(w.start),
                w.predictions.to_string(),
                w.labelled.to_string(),
                pct(w.coverage),
                realized,
                estimated,
                auc,
                verdict.to_owned(),
            ]
        })
        .collect()
}

fn performance_intro(p: &crate::performance::Performance) -> String {
    let reference = match (&p.reference.binary, &p.reference.regression) {
        (Some(b), _) => format!("accuracy {} (ROC AUC {})", pct(b.accuracy), num(b.roc_auc)),
        (None, Some(r)) => format!("MAE {:.4}", r.mae),
        _ => "no labels".into(),
    };
    let est = match p.estimation_mae {
        Some(e) => format!(
            " Earlier estimates were within {:.1} points of the accuracy their labels later showed (mean over {} days).",
            e * 100.0,
            p.estimation_windows
        ),
        None => String::new(),
    };
    format!(
        "Realized on the outcomes that have arrived (by prediction day), estimated from the scores before they do. Reference period {} to {}: {reference}, {} outcomes.{est}",
        super::day(p.reference_start),
        super::day(p.reference_end - 86_400),
        p.reference_labelled
    )
}

const PERFORMANCE_HEAD: [&str; 8] = [
    "day",
    "predictions",
    "outcomes",
    "coverage",
    "realized",
    "estimated",
    "ROC AUC",
    "against the reference",
];

fn performance_markdown(m: &mut String, p: &crate::performance::Performance) {
    let _ = writeln!(m, "\n### Model performance\n\n{}\n", performance_intro(p));
    let _ = writeln!(m, "| {} |", PERFORMANCE_HEAD.join(" | "));
    let _ = writeln!(m, "|{}", "---|".repeat(PERFORMANCE_HEAD.len()));
    for r in performance_rows(p) {
        let _ = writeln!(m, "| {} |", r.join(" | "));
    }
}

fn performance_html(h: &mut String, p: &crate::performance::Performance) {
    let _ = writeln!(
        h,
        "<h3>Model performance</h3>\n<p>{}</p>\n<table><tr>{}</tr>",
        esc(&performance_intro(p)),
        PERFORMANCE_HEAD
            .iter()
            .map(|c| format!("<th>{c}</th>"))
            .collect::<String>()
    );
    for r in performance_rows(p) {
        let _ = writeln!(
            h,
            "<tr>{}</tr>",
            r.iter()
                .map(|c| format!("<td>{}</td>", esc(c)))
                .collect::<String>()
        );
    }
    h.push_str("</table>\n");
}

/// One sentence on the joint comparison of the numeric inputs over the week.
fn multivariate_text(mv: &MultivariateWeek) -> String {
    let inputs = mv.features.join(", ");
    if mv.drifted_windows == 0 {
        format!(
            "Multivariate ({inputs}): the inputs kept their joint structure in all {} windows (closest to the band: score {:.3} against a band up to {:.3}).",
            mv.windows, mv.largest_score, mv.band_upper
        )
    } else {
        format!(
            "Multivariate ({inputs}): the joint structure left the band in {} of {} windows (furthest: score {:.3} against a band up to {:.3}).",
            mv.drifted_windows, mv.windows, mv.largest_score, mv.band_upper
        )
    }
}

/// The data-quality section in sentences: verdicts, the share of the week's interactions in
/// failing windows by rule, the features that violated most, and the pipeline's own
/// `quality_failed` count beside it.
fn quality_lines(q: &super::model::QualityWeek) -> Vec<String> {
    let s = &q.summary;
    let mut out = vec![format!(
        "{} pass, {} warn, {} fail. {} of the week's {} interactions are in failing windows (not fit for training by the declared standard).",
        s.pass,
        s.warn,
        s.fail,
        pct(s.failed_share),
        num(Some(s.interactions as f64)),
    )];
    if !s.rules.is_empty() {
        out.push(format!(
            "Rules violated: {}.",
            s.rules
                .iter()
                .map(|r| format!(
                    "{} ({}) in {} windows, {} of the interactions",
                    r.rule,
                    if r.severity == crate::quality::rules::Severity::Fail {
                        "fail"
                    } else {
                        "warn"
                    },
                    r.windows,
                    pct(r.interactions_share)
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if !q.top_violations.is_empty() {
        out.push(format!(
            "Most often: {}.",
            q.top_violations
                .iter()
                .map(|(r, f, n)| format!("{f} ({r}, {n} windows)"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let c = &q.consent;
    out.push(format!(
        "Consent: {} of the week's interactions carried a training-consent flag ({} true, {} false); {} of {} weekly retention cohorts are suppressed (fewer than k users).",
        pct(c.flagged_share),
        pct(c.training_share),
        pct((c.interactions > 0).then(|| c.training_false as f64 / c.interactions as f64)),
        q.suppressed_cohorts,
        q.cohorts
    ));
    out.push(if q.funnel_collected > 0 {
        format!(
            "The pipeline reported {} of {} collected items as quality_failed ({}); the service's rules put {} of the interactions in failing windows.",
            num(Some(q.funnel_quality_failed as f64)),
            num(Some(q.funnel_collected as f64)),
            pct(Some(q.funnel_quality_failed as f64 / q.funnel_collected as f64)),
            pct(s.failed_share)
        )
    } else {
        "The pipeline reported no collected items this week, so its quality_failed stage cannot be set beside the service's verdicts.".to_owned()
    });
    out
}

/// The segments whose feedback moved, one sentence each: the rate that fell or rose week over
/// week, the positive share that is better or worse on the current version.
fn feedback_segments_text(s: &ModelSection) -> Vec<String> {
    let mut out: Vec<String> = s
        .feedback_segments
        .iter()
        .map(|f| {
            format!(
                "Explicit feedback {} in {}: {} → {} of interactions ({} → {} interactions, q = {}).",
                f.decision,
                f.segment,
                pct(f.explicit_rate_prev.estimate),
                pct(f.explicit_rate.estimate),
                f.interactions_prev_7d,
                f.interactions_7d,
                f.q_value.map_or("?".to_owned(), |q| format!("{q:.2e}"))
            )
        })
        .collect();
    for (segment, m) in &s.uplift_segments {
        out.push(format!(
            "Positive share of the current version against the previous one is {} in {segment}: {} → {}.",
            m.decision,
            pct(m.previous),
            pct(m.current)
        ));
    }
    out
}

/// Where the drift concentrates, in one sentence; `None` when no segment drifted.
fn segments_text(segments: &[(String, u64, Vec<String>)]) -> Option<String> {
    if segments.is_empty() {
        return None;
    }
    Some(format!(
        "Drift is concentrated in {}.",
        segments
            .iter()
            .map(|(s, n, f)| format!(
                "{s} ({} in {n} window{})",
                f.join(", "),
                if *n == 1 { "" } else { "s" }
            ))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}
