//! End to end with the real tools: the service, a Prometheus that scrapes it and evaluates the
//! rules of `alerts/`, and an Alertmanager, all on loopback ports. A scripted incident (a
//! learning regression) reaches Alertmanager through the rules and through the service's
//! direct push, and resolves when the incident ends. The test polls; it never sleeps a fixed
//! time. (The rules are used as written except that `for:` is shortened to 0s, which is policy,
//! not pipeline.)

use crate::helpers::{spawn_app_with, wait_until, Options, TestApp};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A child process killed when dropped (also when the test panics).
pub struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

pub fn spawn(tool: &'static str, args: &[String], dir: &Path) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{tool}.log"))).expect("log file");
    let child = Command::new(tool)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{tool} is not available ({e}); ./scripts/test.sh installs it (Debian packages prometheus, prometheus-alertmanager)")
        });
    Proc(child)
}

/// Start Prometheus scraping `target` every second, with `rules` and Alertmanager `am`.
pub fn start_prometheus(
    dir: &Path,
    target: &str,
    am: Option<&str>,
    rules: &[&Path],
) -> (Proc, String) {
    let port = free_port();
    let rule_files: Vec<String> = rules
        .iter()
        .map(|r| format!("  - {}", r.display()))
        .collect();
    let alerting = am
        .map(|a| {
            format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{a}']\n"
            )
        })
        .unwrap_or_default();
    let cfg = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\n{alerting}scrape_configs:\n  - job_name: flywheel\n    static_configs:\n      - targets: ['{target}']\n",
        rule_files.join("\n")
    );
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, cfg).expect("write prometheus.yml");
    let url = format!("http://127.0.0.1:{port}");
    let p = spawn(
        "prometheus",
        &[
            format!("--config.file={}", path.display()),
            format!("--storage.tsdb.path={}", dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            format!("--web.external-url={url}"),
        ],
        dir,
    );
    (p, url)
}

async fn get(client: &reqwest::Client, url: &str) -> Option<Value> {
    client
        .get(url)
        .send()
        .await
        .ok()?
        .json::<Value>()
        .await
        .ok()
}

fn eval(cycle: u64, days_ago: i64, value: f64) -> Value {
    json!({
        "event_id": format!("e2e-{cycle}"), "event_type": "model_eval",
        "occurred_at": (chrono::Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339(),
        "model": {"id": "ranker", "version": format!("c{cycle}")}, "cycle": cycle,
        "eval_set": {"id": "golden"}, "metrics": [{"name": "ndcg", "value": value, "higher_is_better": true}],
    })
}

async fn run_health(app: &TestApp) {
    let r = app
        .client
        .post(app.url("/v1/jobs/health/run"))
        .send()
        .await
        .expect("run");
    assert_eq!(r.status().as_u16(), 200);
}

/// Alertmanager's active alerts named `name`: (from Prometheus, from the service's push).
async fn am_alerts(client: &reqwest::Client, am: &str, name: &str) -> (usize, usize) {
    let v = get(
        client,
        &format!("{am}/api/v2/alerts?active=true&silenced=false&inhibited=false"),
    )
    .await
    .unwrap_or(Value::Null);
    let mine: Vec<&Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == name && a["labels"]["model"] == "ranker")
        .filter(|a| a["status"]["state"] == "active")
        .collect();
    let from_rules = mine
        .iter()
        .filter(|a| a["labels"]["job"] == "flywheel")
        .count();
    let pushed = mine
        .iter()
        .filter(|a| {
            a["generatorURL"]
                .as_str()
                .is_some_and(|u| u.contains("/v1/alerts"))
        })
        .count();
    (from_rules, pushed)
}

#[tokio::test]
async fn an_incident_reaches_alertmanager_through_the_rules_and_the_push_and_resolves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Alertmanager.
    let am_port = free_port();
    let am_cfg = dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_cfg,
        "route:\n  receiver: sink\n  group_by: [alertname, model]\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: sink\n",
    )
    .expect("am config");
    let am_url = format!("http://127.0.0.1:{am_port}");
    let _am = spawn(
        "prometheus-alertmanager",
        &[
            format!("--config.file={}", am_cfg.display()),
            format!("--storage.path={}", dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
            format!("--web.external-url={am_url}"),
        ],
        dir.path(),
    );
    // The service, pushing to Alertmanager.
    let am_for_app = am_url.clone();
    let app = spawn_app_with(Options {
        tweak: Box::new(move |raw| {
            raw.drift.default_monitor = false;
            raw.alerts.alertmanager_url = am_for_app;
            raw.alerts.alertmanager_refresh_secs = 2;
            raw.health.delta_min.insert("ndcg".into(), 0.002);
        }),
        ..Default::default()
    })
    .await;
    // Prometheus with the real rules (for: shortened).
    let rules = std::fs::read_to_string(root.join("alerts/flywheel.rules.yml")).expect("rules");
    let fast = dir.path().join("rules.yml");
    let shortened: String = rules
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("for:") {
                l.split("for:").next().unwrap_or("").to_owned() + "for: 0s"
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&fast, shortened).expect("write rules");
    let (_prom, prom_url) = start_prometheus(
        dir.path(),
        &app.addr.to_string(),
        Some(&format!("127.0.0.1:{am_port}")),
        &[&fast],
    );
    let client = reqwest::Client::new();
    wait_until("Alertmanager and Prometheus ready", 30, async || {
        let a = client.get(format!("{am_url}/-/ready")).send().await.ok()?;
        let p = client
            .get(format!("{prom_url}/-/ready"))
            .send()
            .await
            .ok()?;
        (a.status().is_success() && p.status().is_success()).then_some(())
    })
    .await;
    wait_until("the first scrape of the service", 40, async || {
        let v = get(
            &client,
            &format!("{prom_url}/api/v1/query?query=up%7Bjob%3D%22flywheel%22%7D"),
        )
        .await?;
        (v["data"]["result"][0]["value"][1] == "1").then_some(())
    })
    .await;

    // The incident: the model improved for 8 cycles, then regressed for 8.
    let mut ev = Vec::new();
    for c in 1..=16u64 {
        let v = if c <= 8 {
            0.5 + 0.01 * c as f64
        } else {
            0.58 - 0.02 * (c - 8) as f64
        };
        ev.push(eval(c, 60 - c as i64, v));
    }
    let (s, body) = app.post_ndjson(&ev).await;
    assert_eq!(s, 200, "{body}");
    run_health(&app).await;
    let (_, alerts) = app.get_json("/v1/alerts?model=ranker").await;
    assert_eq!(
        alerts["active"][0]["labels"]["alertname"], "FlywheelLearningRegressing",
        "{alerts}"
    );
    assert_eq!(alerts["active"][0]["state"], "firing");
    wait_until(
        "the regression in Alertmanager from the rules and from the push",
        60,
        async || {
            let (rules, pushed) = am_alerts(&client, &am_url, "FlywheelLearningRegressing").await;
            (rules == 1 && pushed == 1).then_some(())
        },
    )
    .await;
    // The labels Alertmanager routes on.
    let v = get(&client, &format!("{am_url}/api/v2/alerts"))
        .await
        .expect("alerts");
    let a = v
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["labels"]["job"] == "flywheel")
        .cloned()
        .expect("rule alert");
    assert_eq!(a["labels"]["severity"], "critical");
    // Both links, the one Prometheus expanded from the rule (the scraped instance) and the one
    // the service pushed (its external URL), open the runbook on the running service.
    for alert in v
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == "FlywheelLearningRegressing")
    {
        let url = alert["annotations"]["runbook_url"]
            .as_str()
            .expect("runbook_url");
        assert!(
            url.ends_with("/runbooks/FlywheelLearningRegressing"),
            "{url}"
        );
        let page = client.get(url).send().await.expect("runbook");
        assert_eq!(page.status().as_u16(), 200, "{url}");
        let text = page.text().await.expect("html");
        assert!(
            text.contains("<h1>FlywheelLearningRegressing</h1>"),
            "{url}"
        );
    }

    // The incident ends: ten cycles of strong gains.
    let ev: Vec<Value> = (17..=26u64)
        .map(|c| eval(c, 60 - c as i64, 0.42 + 0.03 * (c - 16) as f64))
        .collect();
    let (s, body) = app.post_ndjson(&ev).await;
    assert_eq!(s, 200, "{body}");
    // Two clean evaluations resolve the service's alert (resolve_after = 2).
    run_health(&app).await;
    run_health(&app).await;
    let (_, alerts) = app.get_json("/v1/alerts?model=ranker").await;
    assert!(
        alerts["active"].as_array().is_some_and(|a| a.is_empty()),
        "{alerts}"
    );
    wait_until(
        "the regression to resolve in Alertmanager",
        60,
        async || {
            let (rules, pushed) = am_alerts(&client, &am_url, "FlywheelLearningRegressing").await;
            (rules == 0 && pushed == 0).then_some(())
        },
    )
    .await;
    app.stop().await;
}
