//! The Prometheus rules, their unit tests and the example Alertmanager config, checked with the
//! real tools (installed by scripts/test.sh; missing tools fail these tests, never skip them).

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Run a tool; panics naming the tool when it is not installed.
fn run(tool: &str, args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} is not available ({e}); ./scripts/test.sh installs it (Debian packages prometheus, prometheus-alertmanager)")
        });
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn alert_names(rules: &str) -> Vec<String> {
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(|s| s.trim().to_owned())
        .collect()
}

#[test]
fn rules_pass_promtool_check_and_their_unit_tests() {
    let alerts = root().join("alerts");
    let (rc, out) = run(
        "promtool",
        &[
            "check",
            "rules",
            "--lint=all",
            "--lint-fatal",
            "flywheel.rules.yml",
        ],
        &alerts,
    );
    assert_eq!(rc, 0, "promtool check rules:\n{out}");
    assert!(out.contains("SUCCESS: 17 rules found"), "{out}");
    let (rc, out) = run(
        "promtool",
        &["test", "rules", "flywheel.rules.test.yml"],
        &alerts.join("tests"),
    );
    assert_eq!(rc, 0, "promtool test rules:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_rule_is_named_labelled_documented_and_tested_both_ways() {
    let rules = std::fs::read_to_string(root().join("alerts/flywheel.rules.yml")).expect("rules");
    let tests = std::fs::read_to_string(root().join("alerts/tests/flywheel.rules.test.yml"))
        .expect("tests");
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README");
    let names = alert_names(&rules);
    assert_eq!(names.len(), 17);
    // Each rule's block: from its `- alert:` line to the next.
    let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    for (name, block) in names.iter().zip(&blocks) {
        assert!(
            name.starts_with("Flywheel")
                && name.chars().all(|c| c.is_ascii_alphanumeric())
                && name.chars().nth(8).is_some_and(|c| c.is_ascii_uppercase()),
            "{name} is not CamelCase"
        );
        assert!(
            block.contains("severity: critical") || block.contains("severity: warning"),
            "{name}: severity"
        );
        for a in ["summary:", "description:", "runbook_url:"] {
            assert!(block.contains(a), "{name}: no {a}");
        }
        let url = format!("http://{{{{ $labels.instance }}}}/runbooks/{name}");
        assert!(
            block.contains(&url),
            "{name}: runbook_url must link to the scraped service: {url}"
        );
        let runbook = std::fs::read_to_string(root().join(format!("alerts/runbooks/{name}.md")))
            .unwrap_or_else(|_| panic!("{name}: runbook missing"));
        for h in ["## What it means", "## How to check", "## What to do"] {
            assert!(runbook.contains(h), "{name}.md has no {h}");
        }
        // Tested firing and not firing.
        let cases: Vec<&str> = tests
            .split("- eval_time:")
            .filter(|c| c.contains(&format!("alertname: {name}\n")))
            .collect();
        assert!(
            cases.iter().any(|c| c.contains("exp_alerts: []")),
            "{name}: no not-firing test"
        );
        assert!(
            cases.iter().any(|c| c.contains("exp_labels:")),
            "{name}: no firing test"
        );
    }
    // Every metric a rule reads is one the service exports (README lists them all; the ops
    // test checks /metrics against that list).
    for word in rules.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        if word.starts_with("flywheel_") {
            assert!(
                readme.contains(&format!("`{word}`")),
                "rule uses unknown metric {word}"
            );
        }
    }
    // The page for a stalled learning loop names the strategies that restart a flywheel.
    let plateau =
        std::fs::read_to_string(root().join("alerts/runbooks/FlywheelLearningPlateau.md"))
            .expect("runbook");
    for s in [
        "New kinds of interaction signals",
        "Less friction",
        "New data sources",
    ] {
        assert!(plateau.contains(s), "plateau runbook lacks {s:?}");
    }
}

#[test]
fn the_example_alertmanager_config_routes_each_severity() {
    let alerts = root().join("alerts");
    let (rc, out) = run(
        "amtool",
        &["check-config", "alertmanager.example.yml"],
        &alerts,
    );
    assert_eq!(rc, 0, "amtool check-config:\n{out}");
    for (labels, receiver) in [
        (
            [
                "severity=critical",
                "alertname=FlywheelLearningRegressing",
                "model=ranker",
            ],
            "oncall-pager",
        ),
        (
            ["severity=critical", "alertname=FlywheelAbsent", "model="],
            "oncall-pager",
        ),
        (
            [
                "severity=warning",
                "alertname=FlywheelFeatureDrift",
                "model=ranker",
            ],
            "tickets",
        ),
        (
            [
                "severity=warning",
                "alertname=FlywheelLearningPlateau",
                "model=ranker",
            ],
            "tickets",
        ),
    ] {
        let mut args = vec![
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.example.yml",
        ];
        let verify = format!("--verify.receivers={receiver}");
        args.push(&verify);
        args.extend(labels);
        let (rc, out) = run("amtool", &args, &alerts);
        assert_eq!(rc, 0, "{labels:?} should go to {receiver}:\n{out}");
    }
    // And the check can fail: a page is not a ticket.
    let (rc, _) = run(
        "amtool",
        &[
            "config",
            "routes",
            "test",
            "--config.file=alertmanager.example.yml",
            "--verify.receivers=tickets",
            "severity=critical",
        ],
        &alerts,
    );
    assert_eq!(rc, 1);
}

/// Every rule's runbook link, expanded with the address of a running service as Prometheus
/// expands it (`$labels.instance` is the scraped target), opens that rule's runbook there; the
/// runbook index lists every rule.
#[tokio::test]
async fn every_rule_links_to_a_runbook_the_service_serves() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        tweak: Box::new(|raw| {
            // Runbooks open without a token even when reads need one.
            raw.auth.read_tokens = vec!["read-token-0123456789".into()];
        }),
        ..Default::default()
    })
    .await;
    let rules = std::fs::read_to_string(root().join("alerts/flywheel.rules.yml")).expect("rules");
    let names = alert_names(&rules);
    let instance = app.addr.to_string();
    let mut followed = 0;
    for line in rules.lines() {
        let Some(template) = line.trim().strip_prefix("runbook_url: ") else {
            continue;
        };
        let template = template.trim_matches('"');
        // The link branch of a template (FlywheelAbsent has one for a target that is down and
        // none when no target is scraped at all).
        let link = template
            .split("{{ else }}")
            .next()
            .unwrap_or(template)
            .replace("{{ if $labels.instance }}", "")
            .replace("{{ $labels.instance }}", &instance);
        let name = link.rsplit('/').next().unwrap_or("").to_owned();
        assert!(names.contains(&name), "{link} names no rule");
        let r = app.client.get(&link).send().await.expect("GET runbook");
        assert_eq!(r.status().as_u16(), 200, "{link}");
        let html = r.text().await.expect("html");
        assert!(html.contains(&format!("<h1>{name}</h1>")), "{link}");
        assert!(
            !html.contains("http://FLYWHEEL"),
            "{link}: placeholder left"
        );
        followed += 1;
    }
    assert_eq!(followed, names.len(), "one runbook_url per rule");
    let index = app
        .client
        .get(app.url("/runbooks"))
        .send()
        .await
        .expect("index")
        .text()
        .await
        .expect("html");
    for n in &names {
        assert!(index.contains(&format!("/runbooks/{n}")), "index lacks {n}");
    }
    let missing = app
        .client
        .get(app.url("/runbooks/NoSuchAlert"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status().as_u16(), 404);
    app.stop().await;
}
