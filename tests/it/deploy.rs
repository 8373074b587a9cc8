//! The deployment example in docs/deploy/ agrees with the code: its flywheel config is valid, the
//! flags and environment variables it passes are ones the binary reads, every replica listens
//! where Prometheus and the load balancer look for it, the files it mounts exist, and its
//! Prometheus config (with the real rules) passes promtool.

use flywheel::config::{check_text, Overrides};
use flywheel::secret::Secret;
use std::path::PathBuf;
use std::process::Command;

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/deploy")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(deploy().join(name))
        .unwrap_or_else(|e| panic!("docs/deploy/{name}: {e}"))
}

/// The flywheel services of the compose file (`flywheel-N:`), in order.
fn replicas(compose: &str) -> Vec<String> {
    compose
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(':'))
        .filter(|n| n.starts_with("flywheel-"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_replica_config_is_valid_for_postgres() {
    let cfg = check_text(
        &read("flywheel.toml"),
        Overrides {
            database_url: Some(Secret::from(
                "postgres://flywheel:pw@postgres:5432/flywheel".to_owned(),
            )),
            hmac_key: Some(Secret::from("0123456789abcdef0123456789abcdef".to_owned())),
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("docs/deploy/flywheel.toml: {e}"));
    assert_eq!(
        cfg.store_location().describe(),
        "postgres://flywheel:***@postgres:5432/flywheel"
    );
    // Without the key the example must not start (one key for the deployment).
    let err = check_text(
        &read("flywheel.toml"),
        Overrides {
            database_url: Some(Secret::from("postgres://x@postgres/flywheel".to_owned())),
            ..Default::default()
        },
    )
    .expect_err("postgres without a key is refused");
    assert!(err.to_string().contains("privacy.hmac_key"), "{err}");
}

#[test]
fn compose_flags_environment_ports_and_mounts_match_the_code() {
    let compose = read("compose.yaml");
    // The command's flags are the binary's.
    let help = Command::new(env!("CARGO_BIN_EXE_flywheel"))
        .args(["serve", "--help"])
        .output()
        .expect("flywheel serve --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let command = compose
        .lines()
        .find_map(|l| l.trim().strip_prefix("command: [\"serve\""))
        .expect("the replicas' command");
    let flags: Vec<&str> = command.split('"').filter(|w| w.starts_with("--")).collect();
    assert!(flags.len() >= 3, "{command}");
    for f in &flags {
        assert!(help.contains(f), "flywheel serve has no {f}:\n{help}");
    }
    // The config file passed is the one mounted, and it is this directory's flywheel.toml.
    assert!(command.contains("\"--config\", \"/etc/flywheel/flywheel.toml\""));
    assert!(compose.contains("./flywheel.toml:/etc/flywheel/flywheel.toml:ro"));
    // Every FLYWHEEL_* variable set is one the service reads.
    let config_src = include_str!("../../src/config/mod.rs").to_owned()
        + include_str!("../../src/main.rs")
        + include_str!("../../src/cli/mod.rs");
    let vars: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().split(':').next())
        .filter(|k| k.starts_with("FLYWHEEL_"))
        .collect();
    assert!(vars.contains(&"FLYWHEEL_DATABASE_URL") && vars.contains(&"FLYWHEEL_HMAC_KEY"));
    for v in vars {
        assert!(
            config_src.contains(&format!("\"{v}\"")),
            "the service does not read {v}"
        );
    }
    // Where replicas listen is where Prometheus scrapes and nginx proxies.
    let port = command
        .split("0.0.0.0:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("--listen 0.0.0.0:PORT");
    let names = replicas(&compose);
    assert!(names.len() >= 2, "at least two replicas: {names:?}");
    let prometheus = read("prometheus.yml");
    let nginx = read("nginx.conf");
    for n in &names {
        assert!(
            prometheus.contains(&format!("\"{n}:{port}\"")),
            "Prometheus does not scrape {n}:{port}"
        );
        assert!(
            nginx.contains(&format!("server {n}:{port}")),
            "nginx does not proxy to {n}:{port}"
        );
    }
    // Every file mounted from the repository exists.
    for l in compose.lines() {
        let l = l.trim().trim_start_matches("- ");
        if let Some(src) = l
            .split(':')
            .next()
            .filter(|s| s.starts_with("./") || s.starts_with("../"))
        {
            assert!(
                deploy().join(src).exists(),
                "compose mounts {src}, which does not exist"
            );
        }
    }
}

#[test]
fn the_example_prometheus_config_passes_promtool_with_the_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("prometheus.yml"), read("prometheus.yml")).expect("write");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts/flywheel.rules.yml"),
        dir.path().join("flywheel.rules.yml"),
    )
    .expect("copy rules");
    let out = Command::new("promtool")
        .args(["check", "config", "prometheus.yml"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| {
            panic!("promtool is not available ({e}); ./scripts/test.sh installs it")
        });
    assert!(
        out.status.success(),
        "promtool check config docs/deploy/prometheus.yml:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
