//! Query strings on every GET route with a query, through the real service (SQLite in a
//! temporary directory, port 0): nonsense gets a 4xx, never a 5xx.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const ROUTES: &[&str] = &[
    "/v1/models/m/features",
    "/v1/jobs/runs",
    "/v1/drift/latest",
    "/v1/drift",
    "/v1/health",
    "/v1/health/history",
    "/v1/alerts",
    "/v1/reports",
];

struct Service {
    rt: tokio::runtime::Runtime,
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn service() -> &'static Service {
    static S: OnceLock<Service> = OnceLock::new();
    S.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut raw = flywheel::config::RawConfig::default();
        raw.server.listen = "127.0.0.1:0".into();
        raw.server.data_dir = dir.path().to_path_buf();
        raw.privacy.hmac_key = Some("fuzz-key-0123456789abcdef0123456789".into());
        let config = raw
            .validate(flywheel::config::Overrides::default())
            .expect("valid config");
        let base = rt.block_on(async {
            let app =
                flywheel::app::App::build_with(config, flywheel::clock::Clock::system(), None)
                    .await
                    .expect("the service starts");
            let base = format!("http://{}", app.local_addr());
            tokio::spawn(app.run_until_stopped(std::future::pending::<()>()));
            base
        });
        Service {
            rt,
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let route = ROUTES[usize::from(pick) % ROUTES.len()];
    // Whatever bytes, sent as the query (percent-encoding what a URL cannot carry raw).
    let query: String = rest
        .iter()
        .map(|&b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'&'
            | b'='
            | b'%'
            | b'-'
            | b'_'
            | b'.'
            | b':'
            | b'+' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let s = service();
    let status = s.rt.block_on(async {
        s.client
            .get(format!("{}{route}?{query}", s.base))
            .send()
            .await
            .expect("the service answers")
            .status()
    });
    assert!(!status.is_server_error(), "{route}?{query} got {status}");
});
