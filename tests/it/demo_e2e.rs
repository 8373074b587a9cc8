//! `flywheel demo` (a short scenario) with the real tools around it: the dashboards' queries
//! against a real Prometheus that scraped the demo, their metrics against the demo's
//! `/metrics`, their PromQL through promtool, the weekly report and the status page rendered in
//! headless Chromium (screenshots kept in target/screenshots/), and the report regenerated
//! byte for byte.

use crate::helpers::wait_until;
use crate::prometheus_e2e::start_prometheus;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn dashboards() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("dashboards/")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).expect("read");
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            (e.file_name().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 3, "overview, drift, service");
    out
}

/// Every (dashboard, panel title, expr) with variables substituted.
fn queries(model: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        for p in d["panels"].as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"]
                    .as_str()
                    .expect("expr")
                    .replace("$__rate_interval", "1m")
                    .replace("$model", model)
                    .replace("$feature", ".+");
                out.push((
                    file.clone(),
                    p["title"].as_str().unwrap_or("").to_owned(),
                    expr,
                ));
            }
        }
    }
    out
}

#[test]
fn dashboards_follow_the_conventions() {
    let mut uids = BTreeSet::new();
    for (file, d) in dashboards() {
        let uid = d["uid"].as_str().expect("uid");
        assert!(
            uid.starts_with("flywheel-") && uid.len() <= 40,
            "{file}: uid {uid}"
        );
        assert!(uids.insert(uid.to_owned()), "{file}: duplicate uid");
        assert_eq!(d["schemaVersion"], 39, "{file}");
        assert_eq!(d["editable"], false, "{file}");
        assert_eq!(d["timezone"], "utc", "{file}");
        assert!(d.get("id").is_none(), "{file}: numeric id");
        let vars = d["templating"]["list"].as_array().expect("variables");
        let ds: Vec<&Value> = vars.iter().filter(|v| v["type"] == "datasource").collect();
        assert_eq!(ds.len(), 1, "{file}: one datasource variable");
        assert_eq!(ds[0]["name"], "datasource");
        for v in vars.iter().filter(|v| v["type"] == "query") {
            assert_eq!(v["refresh"], 2, "{file}: {} refresh", v["name"]);
        }
        if file != "flywheel-service.json" {
            assert!(vars.iter().any(|v| v["name"] == "model"), "{file}: $model");
        }
        for p in d["panels"].as_array().expect("panels") {
            let title = p["title"].as_str().unwrap_or("");
            assert!(!title.is_empty(), "{file}: a panel without title");
            assert!(
                p["description"].as_str().is_some_and(|s| !s.is_empty()),
                "{file}/{title}: description"
            );
            assert!(
                p["fieldConfig"]["defaults"]["unit"].as_str().is_some(),
                "{file}/{title}: unit"
            );
            assert_eq!(p["datasource"]["uid"], "${datasource}", "{file}/{title}");
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{file}/{title}: no targets");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{file}/{title}");
                let e = t["expr"].as_str().expect("expr");
                for f in ["rate(", "irate(", "increase("] {
                    if e.contains(f) {
                        assert!(e.contains("[$__rate_interval]"), "{file}/{title}: {e}");
                    }
                }
                // Counters only inside rate/increase.
                for (i, _) in e.match_indices("_total") {
                    let before = &e[..i];
                    assert!(
                        before
                            .rfind("rate(")
                            .or(before.rfind("increase("))
                            .is_some(),
                        "{file}/{title}: bare counter in {e}"
                    );
                }
            }
        }
    }
    // Provisioning examples.
    let prov =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/provisioning/dashboards.yaml");
    let text = std::fs::read_to_string(prov).expect("provisioning");
    for k in [
        "apiVersion: 1",
        "type: file",
        "allowUiUpdates: false",
        "folderUid: flywheel",
    ] {
        assert!(text.contains(k), "provisioning lacks {k}");
    }
}

#[test]
fn every_panel_query_parses_with_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = String::from("groups:\n  - name: dashboard_check\n    rules:\n");
    for (i, (_, _, expr)) in queries("m").iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard_check:panel_{i}\n        expr: {}\n",
            serde_json::to_string(expr).expect("quote")
        ));
    }
    let path = dir.path().join("panels.yml");
    std::fs::write(&path, rules).expect("write");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool is not available; ./scripts/test.sh installs it");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn chromium_shot(url: &str, out: &Path) -> String {
    let o = Command::new("chromium")
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1100,2400",
        ])
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .output()
        .expect(
            "chromium is not available; ./scripts/test.sh installs it (Debian package chromium)",
        );
    assert!(
        o.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn the_demo_feeds_the_dashboards_the_report_and_the_status_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let opts = flywheel::demo::DemoOptions {
        // Monday 2026-08-03 (2026-W32): fixed, so the weeks and the report are the same each run.
        start: 1_785_715_200,
        seed: 7,
        weeks: 4,
        new_users: 30,
        data_dir: data.clone(),
        listen: "127.0.0.1:0".into(),
        until_done: false,
        progress: false,
    };
    // The configuration the demo's jobs ran with (the report below is regenerated with it).
    let demo_config = flywheel::demo::config(&opts)
        .validate(flywheel::config::Overrides::default())
        .expect("the demo's config");
    let demo = tokio::spawn(flywheel::demo::run_with(
        opts,
        Some(done_tx),
        Box::pin(async move {
            let _ = stop_rx.await;
        }),
    ));
    let base = done_rx.await.expect("the demo finished its scenario");
    let client = reqwest::Client::new();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");

    // Every metric a panel uses is in the demo's /metrics.
    for (file, title, expr) in queries(flywheel::demo::MODEL) {
        for w in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if let Some(name) = w.strip_prefix("flywheel_").map(|_| w) {
                let family = name.strip_suffix("_bucket").unwrap_or(name);
                assert!(
                    metrics.contains(&format!("\n{family}"))
                        || metrics.contains(&format!("\n{family}{{")),
                    "{file} / {title}: {family} is not in the demo's /metrics"
                );
            }
        }
    }

    // A real Prometheus scrapes the demo; every panel query returns data.
    let target = base.trim_start_matches("http://").to_owned();
    let (_prom, prom) = start_prometheus(dir.path(), &target, None, &[]);
    wait_until("two scrapes of the demo", 60, async || {
        let v: Value = client
            .get(format!("{prom}/api/v1/query"))
            .query(&[("query", "count_over_time(up{job=\"flywheel\"}[1m])")])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let n: f64 = v["data"]["result"][0]["value"][1].as_str()?.parse().ok()?;
        (n >= 3.0).then_some(())
    })
    .await;
    let mut empty = Vec::new();
    for (file, title, expr) in queries(flywheel::demo::MODEL) {
        let v: Value = client
            .get(format!("{prom}/api/v1/query"))
            .query(&[("query", expr.as_str())])
            .send()
            .await
            .expect("query")
            .json()
            .await
            .expect("json");
        assert_eq!(v["status"], "success", "{file} / {title}: {expr}: {v}");
        if v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            empty.push(format!("{file} / {title}: {expr}"));
        }
    }
    assert!(
        empty.is_empty(),
        "queries without data:\n{}",
        empty.join("\n")
    );

    // The weekly reports the demo's job wrote: listed, served, and reproducible.
    let v: Value = client
        .get(format!("{base}/v1/reports"))
        .send()
        .await
        .expect("reports")
        .json()
        .await
        .expect("json");
    let weeks: Vec<&str> = v["reports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["week"].as_str())
        .collect();
    // One report per simulated week, none for the week before the data began (2026-W31).
    assert_eq!(
        weeks,
        ["2026-W35", "2026-W34", "2026-W33", "2026-W32"],
        "{v}"
    );
    let week = weeks[0].to_owned();
    let html = client
        .get(format!("{base}/reports/{week}.html"))
        .send()
        .await
        .expect("html")
        .text()
        .await
        .expect("text");
    for needle in [
        "Changes against the previous week",
        "Plateau state per arc",
        "<svg",
        "Data funnel",
        "Alerts fired",
    ] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    assert_eq!(
        client
            .get(format!("{base}/reports/..%2Fflywheel.db"))
            .send()
            .await
            .expect("r")
            .status()
            .as_u16(),
        404
    );
    let store = flywheel::store::sqlite::SqliteStore::open(&data)
        .await
        .expect("store");
    let again = flywheel::report::build(
        &store,
        &flywheel::report::IsoWeek::parse(&week).expect("week"),
        &demo_config.health,
    )
    .await
    .expect("build");
    let on_disk =
        std::fs::read_to_string(data.join("reports").join(format!("{week}.html"))).expect("file");
    assert_eq!(
        again.html, on_disk,
        "regenerating a past week gives the same report"
    );
    let md = std::fs::read_to_string(data.join("reports").join(format!("{week}.md"))).expect("md");
    assert_eq!(again.markdown, md);

    // Status page and report in a real browser, with no console messages (the pages have no
    // script; any console line would be an error such as a failed resource).
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&shots).expect("screenshots dir");
    for (name, url) in [
        ("status", format!("{base}/")),
        ("report", format!("{base}/reports/{week}.html")),
    ] {
        let png = shots.join(format!("{name}.png"));
        // On a blocking thread: the browser loads the page from this test's own runtime.
        let (u, p) = (url.clone(), png.clone());
        let log = tokio::task::spawn_blocking(move || chromium_shot(&u, &p))
            .await
            .expect("chromium thread");
        let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
        assert!(console.is_empty(), "{name}: console messages: {console:?}");
        let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
        assert!(size > 20_000, "{name}: screenshot of {size} bytes");
    }
    let status = client
        .get(format!("{base}/"))
        .send()
        .await
        .expect("status")
        .text()
        .await
        .expect("t");
    for needle in [
        "<h2>Models</h2>",
        "recs",
        "Scheduled tasks",
        "drift:inputs",
        "<th>data quality</th>",
        "/v1/quality?model=recs",
        "Weekly reports",
        "/metrics",
    ] {
        assert!(status.contains(needle), "status page lacks {needle}");
    }
    let _ = stop_tx.send(());
    demo.await.expect("join").expect("demo stopped cleanly");
}
