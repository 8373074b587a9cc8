//! `flywheel demo`: the service on its embedded store in a fresh data directory, and a simulator
//! that plays weeks of a product in minutes on an accelerated clock.
//!
//! The product: a recommender (`model = "recs"`) with new users arriving every day and older
//! users churning, interactions with 22 features (16 numeric, 6 categorical) and predictions,
//! explicit thumbs (≈ 8 % of interactions) and implicit dwell time and abandonment, weekly
//! retraining (`model_eval` with diminishing gains, then a deploy of the new version), and daily
//! data-funnel counts. Scripted incidents, at known times:
//!
//! * **week 6, day 3**: input drift — `f03` and `f07` shift by 0.6 sd, `device` mix moves;
//! * **weeks 12–13**: explicit feedback drops from 8 % to 2 % of interactions (an SDK bug), and
//!   curated volume with it;
//! * **from week 10**: retraining stops paying off (gains flat), so the learning arc reaches
//!   PLATEAU a few cycles later;
//! * **week 20, day 2**: a covariate shift — a new market (`country = MX`) brings half the
//!   traffic, cases the model is much less sure about, so accuracy falls while the model itself
//!   is unchanged.
//!
//! The model's score is a calibrated probability that the user converts: an `outcome` event
//! reports the truth for 90 % of the interactions, hours to days later (log-normal delay, median
//! 18 h), so performance is estimated before the labels arrive and realized once they do.
//!
//! The simulator sets the clock hour by hour, posts that hour's events over HTTP, and waits for
//! every job due by then to finish, so the result is deterministic for a `--seed`.

use crate::app::App;
use crate::clock::ManualClock;
use crate::config::{Overrides, RawConfig};
use crate::drift::monitor::RawMonitor;
use anyhow::Context;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Normal};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Instant;

/// The first day of a demo of `weeks` weeks that ends at the present: a Monday, chosen so that
/// the last simulated week and the Monday-morning jobs after it (the last weekly report, the
/// last health run) are in the past at `now` (seconds).
pub fn start_for(now: i64, weeks: u32) -> i64 {
    // 1970-01-05 was a Monday.
    const MONDAY: i64 = 4 * DAY;
    let t = now - 7 * HOUR;
    let monday = t - (t - MONDAY).rem_euclid(7 * DAY);
    monday - i64::from(weeks) * 7 * DAY
}
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
pub const MODEL: &str = "recs";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The first simulated day (a Monday, seconds since the epoch); see [`start_for`].
    pub start: i64,
    pub seed: u64,
    pub weeks: u32,
    /// New users per day.
    pub new_users: u32,
    pub data_dir: PathBuf,
    pub listen: String,
    pub until_done: bool,
    /// Print progress lines.
    pub progress: bool,
}

/// When the scripted incidents happen (days since the start).
pub struct Script {
    pub drift_from_day: i64,
    pub feedback_drop: (i64, i64),
    pub flat_from_cycle: u64,
    pub covariate_shift_from_day: i64,
}

pub const SCRIPT: Script = Script {
    drift_from_day: 6 * 7 + 3,
    feedback_drop: (12 * 7, 14 * 7),
    flat_from_cycle: 10,
    covariate_shift_from_day: 19 * 7 + 1,
};

/// Share of the interactions whose outcome arrives.
const OUTCOME_SHARE: f64 = 0.9;

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The demo's configuration: defaults, plus a 6-hourly drift monitor and a fixed key so that
/// pseudonyms (and so every figure) are the same for a seed.
pub fn config(opts: &DemoOptions) -> RawConfig {
    let mut raw = RawConfig::default();
    raw.server.listen = opts.listen.clone();
    raw.server.data_dir = opts.data_dir.clone();
    raw.privacy.hmac_key = Some("flywheel-demo-key-not-a-secret".into());
    raw.jobs.poll_interval_ms = 5;
    raw.storage.checkpoint_interval_secs = 1;
    raw.monitors = vec![RawMonitor {
        name: "inputs".into(),
        schedule: "0 5 */6 * * *".into(),
        window_secs: 6 * 3600,
        baseline: "rolling:7d".into(),
        max_catch_up: 4,
        ..Default::default()
    }];
    raw
}

/// Version quality after `cycle` retrainings: diminishing gains, flat from the script's cycle.
pub fn quality(cycle: u64) -> f64 {
    let mut q = 0.60;
    for c in 1..=cycle {
        if c < SCRIPT.flat_from_cycle {
            q += 0.03 * 0.85f64.powi(c as i32 - 1);
        }
    }
    q
}

struct User {
    id: u64,
    first_day: i64,
    /// Daily activity propensity (churn lowers it with age).
    base: f64,
}

/// Everything that happens in one simulated hour (deterministic for seed and hour), without the
/// outcomes (see [`hour`]).
pub fn hour_events(seed: u64, start: i64, hour_index: i64, users: &[(u64, f64)]) -> Vec<Value> {
    hour(seed, start, hour_index, users).0
}

/// One simulated hour: the events that happen in it, and the outcomes of its predictions, which
/// happen later (the caller posts each when its time comes).
pub fn hour(
    seed: u64,
    start: i64,
    hour_index: i64,
    users: &[(u64, f64)],
) -> (Vec<Value>, Vec<Value>) {
    let t0 = start + hour_index * HOUR;
    let day = hour_index / 24;
    let hod = hour_index % 24;
    let mut rng =
        StdRng::seed_from_u64(seed ^ (hour_index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let week = day / 7;
    let cycle = week as u64; // retrainings so far (one per week, Monday 01:00)
    let version = format!("v{}", cycle + 1);
    let mut out = Vec::new();
    // Retraining: Monday 01:00 an evaluation, 03:00 the deploy (from week 1).
    if day % 7 == 0 && week >= 1 && hod == 1 {
        let noise: f64 = rng.gen_range(-0.0015..0.0015);
        out.push(json!({
            "event_id": format!("eval-{cycle}"), "event_type": "model_eval", "occurred_at": ts(t0 + 60),
            "model": {"id": MODEL, "version": version}, "cycle": cycle,
            "eval_set": {"id": "golden-2026"},
            "metrics": [{"name": "ndcg@10", "value": quality(cycle) + noise, "higher_is_better": true}],
            "train_data": {"total_examples": 20_000 * cycle, "new_examples": 20_000, "data_cutoff_at": ts(t0 - 2 * DAY)},
        }));
    }
    if day % 7 == 0 && week >= 1 && hod == 3 {
        out.push(json!({
            "event_id": format!("deploy-{cycle}"), "event_type": "deploy", "occurred_at": ts(t0 + 60),
            "model": {"id": MODEL, "version": version}, "traffic_share": 1.0,
        }));
    }
    // Traffic follows the day: more in the afternoon and evening.
    let diurnal = 0.4
        + 0.6
            * (((hod as f64 - 15.0) / 24.0) * std::f64::consts::TAU)
                .cos()
                .max(-0.5)
        + 0.3;
    let drifted = day >= SCRIPT.drift_from_day;
    let fb_rate = if (SCRIPT.feedback_drop.0..SCRIPT.feedback_drop.1).contains(&day) {
        0.02
    } else {
        0.08
    };
    let q = quality(cycle);
    let norm = Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("valid normal"));
    let dwell = LogNormal::new(9.5, 0.8).unwrap_or_else(|_| unreachable!("valid lognormal"));
    let mut n_event = 0u32;
    let mut outcomes = Vec::new();
    let shifted = day >= SCRIPT.covariate_shift_from_day;
    let delay = LogNormal::new((18.0 * 3600.0f64).ln(), 0.8)
        .unwrap_or_else(|_| unreachable!("valid lognormal"));
    for &(user, propensity) in users {
        // Chance this user interacts in this hour.
        if rng.gen::<f64>() >= propensity * diurnal / 24.0 * 1.5 {
            continue;
        }
        let sessions = rng.gen_range(1..=2);
        for _ in 0..sessions {
            n_event += 1;
            let at = t0 + rng.gen_range(0..HOUR - 120);
            let iid = format!("i{hour_index}-{n_event}");
            let mut features = serde_json::Map::new();
            for f in 0..16 {
                let mut x: f64 = norm.sample(&mut rng) * (1.0 + f as f64 * 0.1) + f as f64;
                if drifted && (f == 3 || f == 7) {
                    x += 0.6 * (1.0 + f as f64 * 0.1);
                }
                features.insert(format!("f{f:02}"), json!((x * 1000.0).round() / 1000.0));
            }
            let device = {
                let u: f64 = rng.gen();
                let w = if drifted {
                    [0.3, 0.5, 0.2]
                } else {
                    [0.6, 0.3, 0.1]
                };
                if u < w[0] {
                    "mobile"
                } else if u < w[0] + w[1] {
                    "desktop"
                } else {
                    "tablet"
                }
            };
            features.insert("device".into(), json!(device));
            features.insert(
                "country".into(),
                json!(["DE", "FR", "US", "BR", "IN"][rng.gen_range(0..5)]),
            );
            features.insert(
                "plan".into(),
                json!(if rng.gen::<f64>() < 0.2 {
                    "pro"
                } else {
                    "free"
                }),
            );
            features.insert(
                "category".into(),
                json!(format!("c{}", rng.gen_range(0..12))),
            );
            features.insert("returning".into(), json!(rng.gen::<f64>() < 0.7));
            features.insert(
                "lang".into(),
                json!(["en", "de", "fr", "pt"][rng.gen_range(0..4)]),
            );
            // The score and its outcome come from a stream of their own, so that the rest of
            // the hour is the same with or without them.
            let mut orng = StdRng::seed_from_u64(
                seed ^ (hour_index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
                    ^ u64::from(n_event).wrapping_mul(0x94D0_49BB_1331_11EB),
            );
            // The new market: half the traffic once the shift starts, and hard cases (scores
            // near 0.5), so accuracy drops although the model is still calibrated.
            let new_market = shifted && orng.gen::<f64>() < 0.5;
            if new_market {
                features.insert("country".into(), json!("MX"));
            }
            let sharpness = if new_market { 0.35 } else { 1.0 };
            let score: f64 = 1.0 / (1.0 + (-sharpness * norm.sample(&mut rng)).exp());
            let score = (score * 1e4).round() / 1e4;
            if orng.gen::<f64>() < OUTCOME_SHARE {
                let converted = orng.gen::<f64>() < score;
                let later = (delay.sample(&mut orng) as i64).clamp(300, 5 * DAY);
                outcomes.push(json!({
                    "event_id": format!("{iid}-outcome"), "event_type": "outcome",
                    "occurred_at": ts(at + later), "model": {"id": MODEL, "version": version},
                    "interaction_id": iid, "predicted_at": ts(at),
                    "prediction": {"score": score}, "actual": converted,
                }));
            }
            out.push(json!({
                "event_id": iid.clone(), "event_type": "interaction", "occurred_at": ts(at),
                "model": {"id": MODEL, "version": version}, "user_id": format!("user-{user}"),
                "features": features,
                "prediction": {"score": score, "label": if score > 0.5 { "click" } else { "skip" }, "confidence": ((score - 0.5).abs() * 2e4).round() / 1e4},
                "session_id": format!("s{user}-{day}"),
            }));
            // Implicit: dwell on 60 %, abandonment 0/1 on all.
            if rng.gen::<f64>() < 0.6 {
                out.push(json!({
                    "event_id": format!("{iid}-dwell"), "event_type": "feedback", "occurred_at": ts(at + 30),
                    "model": {"id": MODEL, "version": version}, "user_id": format!("user-{user}"),
                    "interaction_id": iid, "kind": "implicit", "signal": "dwell_ms",
                    "value": (dwell.sample(&mut rng) * (0.8 + q)).round(),
                }));
            }
            let abandoned = rng.gen::<f64>() < 0.35 - (q - 0.6) * 0.5;
            out.push(json!({
                "event_id": format!("{iid}-abandon"), "event_type": "feedback", "occurred_at": ts(at + 60),
                "model": {"id": MODEL, "version": version}, "user_id": format!("user-{user}"),
                "interaction_id": iid, "kind": "implicit", "signal": "abandon", "value": abandoned,
            }));
            if rng.gen::<f64>() < fb_rate {
                let up = rng.gen::<f64>() < 0.45 + (q - 0.6) * 1.2;
                out.push(json!({
                    "event_id": format!("{iid}-thumbs"), "event_type": "feedback", "occurred_at": ts(at + 90),
                    "model": {"id": MODEL, "version": version}, "user_id": format!("user-{user}"),
                    "interaction_id": iid, "kind": "explicit", "signal": "thumbs", "value": if up { 1 } else { 0 },
                }));
            }
        }
    }
    (out, outcomes)
}

/// The data funnel of one day, from the explicit feedback it collected.
fn funnel_events(start: i64, day: i64, explicit: u64, weekly_curated: u64) -> Vec<Value> {
    let t = start + day * DAY + 23 * HOUR + 30 * 60;
    let collected = explicit * 10; // feedback plus the interactions it labels
    let passed = collected * 85 / 100;
    let consented = passed * 90 / 100;
    let curated = consented * 80 / 100;
    let mut ev = vec![
        ("collected", collected, None),
        ("quality_passed", passed, None),
        ("quality_failed", collected - passed, Some("duplicate")),
        ("consented", consented, None),
        ("curated", curated, None),
    ];
    if day % 7 == 0 && day > 0 {
        ev.push(("used_in_training", weekly_curated * 9 / 10, None));
    }
    ev.into_iter()
        .map(|(stage, n, reason)| {
            let mut e = json!({
                "event_id": format!("funnel-{day}-{stage}"), "event_type": "data_lifecycle",
                "occurred_at": ts(t), "model": {"id": MODEL, "version": "pipeline"},
                "stage": stage, "count": n,
            });
            if let Some(r) = reason {
                e["reason"] = json!(r);
            }
            e
        })
        .collect()
}

/// Run the demo. Returns when the scenario is done (and, without `until_done`, after Ctrl-C).
pub async fn run(opts: DemoOptions) -> anyhow::Result<()> {
    run_with(opts, None, Box::pin(crate::shutdown::signal())).await
}

/// Run the demo; `done` hears the service's base URL when the scenario has played, and without
/// `until_done` the service keeps serving until `shutdown` resolves.
pub async fn run_with(
    opts: DemoOptions,
    done: Option<tokio::sync::oneshot::Sender<String>>,
    shutdown: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
) -> anyhow::Result<()> {
    let raw = config(&opts);
    let config = raw
        .validate(Overrides::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let start = opts.start;
    let now = ManualClock::at_secs(start);
    let app = App::build_with(config, now.clock(), None)
        .await
        .context("cannot start the service")?;
    let addr = app.local_addr();
    let state = app.state().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stop_rx.await;
    }));
    let base = format!("http://{addr}");
    let client = reqwest::Client::new();
    let days = i64::from(opts.weeks) * 7;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut users: Vec<User> = Vec::new();
    let mut next_user = 0u64;
    let started = Instant::now();
    let mut posted = 0usize;
    let mut weekly_curated = 0u64;
    let mut curated_this_week = 0u64;
    // Outcomes waiting for their time: (occurred_at, event).
    let mut later: Vec<(i64, Value)> = Vec::new();
    if opts.progress {
        let log = opts.data_dir.join("flywheel.log");
        eprintln!(
            "flywheel demo: {} simulated weeks, {} to {} (seed {}), service at {base}\n  data in {}{}",
            opts.weeks,
            crate::clock::Timestamp::from_secs(start).to_date(),
            crate::clock::Timestamp::from_secs(start + days * DAY - 1).to_date(),
            opts.seed,
            opts.data_dir.display(),
            if log.exists() {
                format!(", service log in {} (FLYWHEEL_LOG=info prints it here instead)", log.display())
            } else {
                String::new()
            }
        );
    }
    for day in 0..days {
        // Arrivals and churn.
        for _ in 0..opts.new_users {
            users.push(User {
                id: next_user,
                first_day: day,
                base: rng.gen_range(0.25..0.9),
            });
            next_user += 1;
        }
        let active: Vec<(u64, f64)> = users
            .iter()
            .map(|u| {
                let age = (day - u.first_day) as f64;
                (u.id, u.base * (0.25 + 0.75 * (-age / 21.0).exp()))
            })
            .collect();
        let mut explicit_today = 0u64;
        for h in 0..24 {
            let hour_index = day * 24 + h;
            let (events, outcomes) = hour(opts.seed, start, hour_index, &active);
            later.extend(outcomes.into_iter().map(|o| {
                let at = o["occurred_at"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or(i64::MAX, |t| t.timestamp());
                (at, o)
            }));
            explicit_today += events.iter().filter(|e| e["kind"] == "explicit").count() as u64;
            let mut events = events;
            if h == 23 {
                if day % 7 == 0 {
                    weekly_curated = curated_this_week;
                    curated_this_week = 0;
                }
                let f = funnel_events(start, day, explicit_today, weekly_curated);
                curated_this_week += f
                    .iter()
                    .find(|e| e["stage"] == "curated")
                    .and_then(|e| e["count"].as_u64())
                    .unwrap_or(0);
                events.extend(f);
            }
            // The outcomes whose time has come (by the end of this hour).
            let hour_end = start + (hour_index + 1) * HOUR;
            let (due, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut later)
                .into_iter()
                .partition(|(at, _)| *at < hour_end);
            later = wait;
            events.extend(due.into_iter().map(|(_, o)| o));
            // The clock: the end of this hour (events are in the past, jobs for it come due).
            now.set_secs(start + (hour_index + 1) * HOUR + 600);
            for chunk in events.chunks(10_000) {
                let body: String = chunk.iter().map(|e| format!("{e}\n")).collect();
                let r = client
                    .post(format!("{base}/v1/events"))
                    .header("content-type", "application/x-ndjson")
                    .body(body)
                    .send()
                    .await
                    .context("posting events")?;
                let status = r.status();
                let v: Value = r.json().await.unwrap_or(Value::Null);
                if !status.is_success() || v["rejected"].as_u64() != Some(0) {
                    anyhow::bail!("the service refused demo events ({status}): {v}");
                }
                posted += chunk.len();
            }
            wait_for_jobs(&state).await?;
        }
        if opts.progress && (day % 7 == 6 || day == days - 1) {
            let (_, h) = get(&client, &format!("{base}/v1/health?model={MODEL}")).await;
            let (_, a) = get(&client, &format!("{base}/v1/alerts?model={MODEL}")).await;
            let arcs = h["arcs"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {}", v["state"].as_str().unwrap_or("?")))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let firing: Vec<String> = a["active"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|x| x["state"] == "firing")
                .map(|x| x["labels"]["alertname"].as_str().unwrap_or("?").to_owned())
                .collect();
            eprintln!(
                "  week {:>2} done ({}): {:>8} events, {} users | {} | alerts: {}  [{:.0} s]",
                day / 7 + 1,
                chrono::DateTime::from_timestamp(start + day * DAY, 0)
                    .map(|t| t.format("%G-W%V").to_string())
                    .unwrap_or_default(),
                posted,
                users.len(),
                if arcs.is_empty() {
                    "health: not yet".into()
                } else {
                    arcs
                },
                if firing.is_empty() {
                    "none".into()
                } else {
                    firing.join(", ")
                },
                started.elapsed().as_secs_f64()
            );
        }
    }
    // Run Monday's jobs of the week after (the last weekly report, the last health run).
    now.set_secs(start + days * DAY + 7 * HOUR);
    wait_for_jobs(&state).await?;
    if opts.progress {
        eprintln!(
            "\ndone: {} simulated weeks, {posted} events in {:.0} s.\n\n  status page   {base}/\n  health        {base}/v1/health?model={MODEL}\n  drift         {base}/v1/drift/latest?model={MODEL}\n  performance   {base}/v1/performance?model={MODEL}\n  alerts        {base}/v1/alerts\n  reports       {base}/v1/reports  (files in {})\n  metrics       {base}/metrics\n",
            opts.weeks,
            started.elapsed().as_secs_f64(),
            opts.data_dir.join("reports").display()
        );
    }
    if let Some(d) = done {
        let _ = d.send(base.clone());
    }
    if !opts.until_done {
        if opts.progress {
            eprintln!(
                "serving until Ctrl-C (the simulated clock stays at the end of the scenario)"
            );
        }
        shutdown.await;
    }
    let _ = stop_tx.send(());
    server.await??;
    Ok(())
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    match client.get(url).send().await {
        Ok(r) => {
            let s = r.status().as_u16();
            (s, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// Wait until every job has run its latest due fire (the scheduler polls every few ms).
async fn wait_for_jobs(state: &crate::http::AppState) -> anyhow::Result<()> {
    let now = chrono::DateTime::<chrono::Utc>::from_timestamp_micros(state.clock.now_us())
        .unwrap_or_default();
    for job in &state.jobs.list {
        let Some(due) = job
            .schedule()
            .due(None, now, 1)
            .last()
            .map(|t| t.timestamp())
        else {
            continue;
        };
        let deadline = Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let last = state.store.jobs().last_fire(&job.name()).await?;
            if last.is_some_and(|l| l >= due) {
                break;
            }
            if Instant::now() > deadline {
                anyhow::bail!("job {} did not run its {} fire", job.name(), ts(due));
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_ends_at_the_present() {
        let at = |s: &str| {
            crate::clock::Timestamp::parse_rfc3339(s)
                .expect("time")
                .secs()
        };
        // Friday 2026-12-04 14:00: the last week is 2026-11-23..30, its Monday jobs in the past.
        let now = at("2026-12-04T14:00:00Z");
        let start = start_for(now, 20);
        assert_eq!(
            crate::clock::Timestamp::from_secs(start).to_date(),
            "2026-07-13"
        );
        let end_jobs = start + 20 * 7 * DAY + 7 * HOUR;
        assert!(end_jobs <= now && now - end_jobs < 7 * DAY);
        // Monday 03:00: this Monday's 07:00 jobs are still ahead, so the weeks end a week earlier.
        let now = at("2026-11-30T03:00:00Z");
        let start = start_for(now, 1);
        assert_eq!(
            crate::clock::Timestamp::from_secs(start).to_date(),
            "2026-11-16"
        );
        assert!(start + 7 * DAY + 7 * HOUR <= now);
    }
}
