//! Storage failures under the data directory. A full disk: a size-limited tmpfs that this test
//! mounts (the test machines run as root; without the right to mount, the test fails saying
//! so) and fills.
//! Ingest answers 503 with Retry-After and logs why, reads still answer, a job run fails
//! visibly, nothing acknowledged is lost, and once space is freed the service takes events
//! again by itself. Storage that turns read-only (an ext4 image on a loop device, switched to
//! read-only by the kernel on a filesystem error while the service runs): ingest answers 503,
//! reads answer, the service still stops cleanly, and after the operator's repair and a restart
//! every acknowledged event is counted once.

use crate::helpers::count_of;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tmpfs mounted for the test and unmounted (with its mount point removed) on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount: {e}"));
        assert!(
            out.status.success(),
            "this test needs to mount a small tmpfs (run it as root, as scripts/test.sh does): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

struct Server {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path, outside: &Path) -> Server {
    let config = outside.join("flywheel.toml");
    std::fs::write(
        &config,
        "[storage]\ncheckpoint_interval_secs = 1\n[health]\nenabled = false\n",
    )
    .expect("config");
    let log = outside.join("server.log");
    let mut server = Server {
        child: Command::new(env!("CARGO_BIN_EXE_flywheel"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--data-dir")
            .arg(data)
            .env("FLYWHEEL_HMAC_KEY", "disk-full-test-key-0123456789abc")
            .env("FLYWHEEL_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn flywheel"),
        addr: String::new(),
        log: log.clone(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .filter(|l| l.contains("flywheel listening"))
            .find_map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
            })
        {
            server.addr = addr.to_owned();
            return server;
        }
        assert!(Instant::now() < deadline, "no start in 30 s:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn batch(tag: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "event_id": format!("{tag}-{i}"),
                "event_type": "interaction",
                "occurred_at": chrono::Utc::now().to_rfc3339(),
                "model": {"id": "disk", "version": "v1"},
                "user_id": format!("u{}", i % 97),
                // Distinct strings, so the journal cannot be compressed much.
                "features": {"x": i as f64, "note": format!("{tag}-{i}-{}", "z".repeat(60))}
            })
        })
        .collect()
}

/// POST a batch: the status, the Retry-After header, and the body.
async fn post(
    client: &reqwest::Client,
    addr: &str,
    lines: &[Value],
) -> (u16, Option<String>, Value) {
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let r = client
        .post(format!("http://{addr}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("the server answers");
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, r.json().await.unwrap_or(Value::Null))
}

/// Send batches (`tag-0`, `tag-1`, ... of `size` events) until the store refuses one: every
/// batch answered 200 is added to `acked`, the refusal must be a 503 with Retry-After and the
/// `store_unavailable` code, and anything else fails the test.
async fn send_until_refused(
    client: &reqwest::Client,
    addr: &str,
    tag: &str,
    batches: usize,
    size: usize,
    acked: &mut u64,
    what: &str,
) {
    for b in 0..batches {
        let (status, retry, body) = post(client, addr, &batch(&format!("{tag}-{b}"), size)).await;
        match status {
            200 => *acked += body["accepted"].as_u64().unwrap_or(0),
            503 => {
                assert!(
                    retry
                        .as_deref()
                        .and_then(|r| r.parse::<u64>().ok())
                        .is_some(),
                    "a 503 carries Retry-After: {retry:?}"
                );
                assert_eq!(body["code"], "store_unavailable", "{body}");
                return;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    panic!("{what} makes ingest answer 503");
}

/// Fill the filesystem with one file until the kernel refuses another byte.
fn fill(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => written += n as u64,
        }
    }
    let small = [0u8; 512];
    while let Ok(n @ 1..) = f.write(&small) {
        written += n as u64;
    }
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_answers_503_keeps_everything_acknowledged_and_heals_when_space_returns() {
    let fs = Tmpfs::mount("48m");
    let outside = tempfile::tempdir().expect("tempdir");
    let data = fs.path().join("data");
    let s = start(&data, outside.path());
    let client = reqwest::Client::new();
    let mut acked = 0u64;

    let (status, _, body) = post(&client, &s.addr, &batch("before", 500)).await;
    assert_eq!(status, 200, "{body}");
    acked += body["accepted"].as_u64().unwrap_or(0);

    // Fill the disk, then keep sending until the store refuses.
    let filler = fs.path().join("filler");
    fill(&filler);
    send_until_refused(
        &client,
        &s.addr,
        "full",
        400,
        500,
        &mut acked,
        "a full disk",
    )
    .await;
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    assert!(
        log.contains("cannot journal a batch") && log.contains("full"),
        "the log says why:\n{log}"
    );

    // Reads still answer (from what is stored, marked stale).
    let r = client
        .get(format!("http://{}/v1/models", s.addr))
        .send()
        .await
        .expect("read");
    assert_eq!(r.status(), 200, "reads answer on a full disk");

    // A job run fails visibly.
    let r = client
        .post(format!(
            "http://{}/v1/jobs/weekly_report/run?window=2026-11-23T00:00:00Z",
            s.addr
        ))
        .send()
        .await
        .expect("run");
    assert_ne!(r.status(), 200, "a job cannot record a run on a full disk");
    let metrics = client
        .get(format!("http://{}/metrics", s.addr))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let failures: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("flywheel_task_runs_total{") && l.contains("outcome=\"failure\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(failures >= 1.0, "the failed run is counted:\n{metrics}");

    // Space returns: the service takes events again by itself, without a restart.
    std::fs::remove_file(&filler).expect("free the space");
    let healed = Instant::now() + Duration::from_secs(20);
    let mut n = 0;
    loop {
        n += 1;
        let (status, _, body) = post(&client, &s.addr, &batch(&format!("after-{n}"), 200)).await;
        if status == 200 {
            acked += body["accepted"].as_u64().unwrap_or(0);
            break;
        }
        assert!(
            Instant::now() < healed,
            "no recovery within 20 s of freeing space: {body}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = client
        .get(format!("http://{}/v1/models", s.addr))
        .send()
        .await
        .expect("read");
    assert!(
        r.headers().get("x-flywheel-stale").is_none(),
        "fresh again:\n{}",
        std::fs::read_to_string(&s.log).unwrap_or_default()
    );
    let models: Value = r.json().await.expect("json");
    assert_eq!(
        count_of(&models, "disk", "interaction"),
        acked,
        "every acknowledged event is counted, once"
    );
}

/// An ext4 filesystem in a loop-mounted image file with `errors=remount-ro`, as a production
/// data disk would be: a storage error makes the kernel switch it to read-only under the
/// running service (`trigger_fs_error` raises one on purpose).
struct Ext4 {
    image: PathBuf,
    dir: tempfile::TempDir,
    device: String,
}

impl Ext4 {
    fn create(image: PathBuf) -> Ext4 {
        let run = |cmd: &mut Command, what: &str| {
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
            assert!(
                out.status.success(),
                "{what} failed (this test needs root and loop devices, as scripts/test.sh has): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        run(
            Command::new("truncate").args(["-s", "64M"]).arg(&image),
            "truncate",
        );
        run(
            Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image),
            "mkfs.ext4",
        );
        let device = run(
            Command::new("losetup").args(["-f", "--show"]).arg(&image),
            "losetup",
        );
        // A loop device left write-protected by an earlier user would mount read-only.
        let _ = Command::new("blockdev").args(["--setrw", &device]).status();
        let dir = tempfile::tempdir().expect("mount point");
        run(
            Command::new("mount")
                .args(["-o", "errors=remount-ro", &device])
                .arg(dir.path()),
            "mount",
        );
        Ext4 { image, dir, device }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Raise a filesystem error: the kernel remounts it read-only at once, open files and all.
    fn fail(&self) {
        let name = self.device.trim_start_matches("/dev/");
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "flywheel test\n",
        )
        .expect("trigger an ext4 error (needs root)");
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        assert!(
            mounts
                .lines()
                .any(|l| l.contains(&self.device) && l.contains("emergency_ro")),
            "the filesystem went read-only:\n{mounts}"
        );
    }

    /// What an operator does: unmount, check and repair, mount again.
    fn repair(&self) {
        let ok = |c: &mut Command| c.status().map(|s| s.code()).ok().flatten();
        assert_eq!(
            ok(Command::new("umount").arg(self.path())),
            Some(0),
            "umount"
        );
        // e2fsck exits 0 (clean) or 1 (errors corrected).
        let fsck = ok(Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(&self.image)
            .stdout(Stdio::null())
            .stderr(Stdio::null()));
        assert!(matches!(fsck, Some(0 | 1)), "e2fsck: {fsck:?}");
        assert_eq!(
            ok(Command::new("mount")
                .args(["-o", "errors=remount-ro", &self.device])
                .arg(self.path())),
            Some(0),
            "mount again"
        );
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn storage_that_turns_read_only_answers_503_keeps_reads_and_loses_nothing_acknowledged() {
    let outside = tempfile::tempdir().expect("tempdir");
    let fs = Ext4::create(outside.path().join("disk.img"));
    let data = fs.path().join("data");
    let mut s = start(&data, outside.path());
    let client = reqwest::Client::new();
    let mut acked = 0u64;
    for b in 0..3 {
        let (status, _, body) = post(&client, &s.addr, &batch(&format!("before-{b}"), 300)).await;
        assert_eq!(status, 200, "{body}");
        acked += body["accepted"].as_u64().unwrap_or(0);
    }

    fs.fail();
    send_until_refused(
        &client,
        &s.addr,
        "ro",
        20,
        100,
        &mut acked,
        "read-only storage",
    )
    .await;
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    if let Some(line) = log.lines().find(|l| l.contains("cannot journal a batch")) {
        eprintln!("read-only storage, the service logged: {line}");
    }
    assert!(
        log.contains("cannot journal a batch")
            && (log.contains("readonly") || log.contains("read-only") || log.contains("I/O")),
        "the log says why:\n{log}"
    );
    let r = client
        .get(format!("http://{}/v1/models", s.addr))
        .send()
        .await
        .expect("read");
    assert_eq!(r.status(), 200, "reads answer from read-only storage");
    let r = client
        .post(format!(
            "http://{}/v1/jobs/weekly_report/run?window=2026-11-23T00:00:00Z",
            s.addr
        ))
        .send()
        .await
        .expect("run");
    assert_ne!(
        r.status(),
        200,
        "a job cannot record a run on read-only storage"
    );

    // The service stops within its shutdown timeout even though its last checkpoint fails.
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .is_ok_and(|st| st.success()));
    let stop_by = Instant::now() + Duration::from_secs(40);
    while s.child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < stop_by, "no exit within 40 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The operator repairs the filesystem and restarts: everything acknowledged is there once.
    fs.repair();
    let s2 = start(&data, outside.path());
    let models: Value = client
        .get(format!("http://{}/v1/models", s2.addr))
        .send()
        .await
        .expect("read")
        .json()
        .await
        .expect("json");
    assert_eq!(
        count_of(&models, "disk", "interaction"),
        acked,
        "every acknowledged event is counted, once, after the repair"
    );
    drop(s2);
}
