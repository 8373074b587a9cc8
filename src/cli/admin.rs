//! Admin commands that work on a data directory directly (also while the service runs: SQLite
//! allows it, and job leases keep runs from overlapping): `jobs list`, `jobs run`,
//! `baseline upload`. Events acknowledged by a running service in the last checkpoint interval
//! (default 5 s) are not yet in the store these commands read.

use super::{load_config, ServeArgs};
use crate::app::build_jobs;
use crate::config::Config;
use crate::jobs::Registry;
use crate::metrics::Metrics;
use crate::store::Store;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List the scheduled jobs of the configuration with their last run.
    List(#[command(flatten)] ServeArgs),
    /// Run one window of a job now and record it (replacing an earlier run of that window).
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job, e.g. drift:default (see `flywheel jobs list`).
    pub name: String,
    /// Start of the window to run (RFC 3339), aligned down to the job's window. Default: the
    /// window of the latest scheduled fire.
    #[arg(long)]
    pub window: Option<String>,
    #[command(flatten)]
    pub common: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Erase a user (right to erasure): the id is pseudonymised with the deployment key as on
    /// ingest, every row keyed by the pseudonym is deleted, the erasure recorded (events of that
    /// user up to now that are folded later are left out) with an audit entry that holds no id.
    /// The same as `DELETE /v1/users/{user_id}`; repeating it is harmless.
    Erase {
        /// The user id as the product sends it in events (`user_id`).
        user_id: String,
        #[command(flatten)]
        common: ServeArgs,
    },
}

pub async fn users(cmd: UsersCommand) -> i32 {
    match cmd {
        UsersCommand::Erase { user_id, common } => {
            let (config, store) = match open(&common).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            if user_id.is_empty() || user_id.len() > config.ingest.max_string_len {
                return fail(format!(
                    "user id: must be 1 to {} bytes, as on ingest",
                    config.ingest.max_string_len
                ));
            }
            let key = match crate::events::pseudonym::Pseudonymizer::load(
                config.hmac_key.as_ref().map(|k| k.expose()),
                &config.data_dir,
            ) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            if let Err(e) = store.check_key(&key.fingerprint()).await {
                return fail(format!("{e}"));
            }
            let at_us = chrono::Utc::now().timestamp_micros();
            match store.series().erase_user(key.key(&user_id), at_us).await {
                Ok(e) if e.already_erased => {
                    println!(
                        "the user was already erased; {} more activity rows deleted",
                        e.activity_rows_deleted
                    );
                    0
                }
                Ok(e) => {
                    println!(
                        "erased: {} activity rows deleted; events of this user up to now that arrive later are left out",
                        e.activity_rows_deleted
                    );
                    0
                }
                Err(e) => fail(e),
            }
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Summarise a reference dataset (CSV, NDJSON or Parquet) and store it as a baseline.
    Upload(UploadArgs),
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The dataset; columns are input features, `prediction.<name>` and `<class>.<name>` map to
    /// the other classes.
    pub file: PathBuf,
    /// Baseline name, used as `baseline = "dataset:NAME"` in a monitor.
    #[arg(long)]
    pub name: String,
    /// The model the dataset describes.
    #[arg(long)]
    pub model: String,
    #[command(flatten)]
    pub common: ServeArgs,
}

async fn open(args: &ServeArgs) -> Result<(Config, Arc<dyn Store>), String> {
    let config = load_config(args).map_err(|e| e.to_string())?;
    let location = config.store_location();
    let store = crate::store::open(&location)
        .await
        .map_err(|e| format!("cannot open the store {}: {e}", location.describe()))?;
    Ok((config, store))
}

async fn jobs_of(args: &ServeArgs) -> Result<(Config, Registry), String> {
    let (config, store) = open(args).await?;
    let metrics = Arc::new(Metrics::new().map_err(|e| e.to_string())?);
    // Runs from the command line do not move the service's alerts (the service does).
    let jobs = build_jobs(
        &config,
        store,
        metrics,
        crate::clock::Clock::system(),
        None,
        None,
    )
    .map_err(|e| format!("{e:#}"))?;
    Ok((config, jobs))
}

fn fail(e: impl std::fmt::Display) -> i32 {
    eprintln!("error: {e}");
    2
}

pub async fn jobs(cmd: JobsCommand) -> i32 {
    match cmd {
        JobsCommand::List(args) => {
            let (_, jobs) = match jobs_of(&args).await {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let now = chrono::Utc::now();
            println!(
                "{:<28} {:<16} {:<26} last run",
                "job", "schedule", "next fire (UTC)"
            );
            for j in &jobs.list {
                let last = match jobs.runner.store.jobs().runs(Some(&j.name()), 1).await {
                    Ok(r) => r,
                    Err(e) => return fail(e),
                };
                let last = last.first().map_or("never".to_owned(), |r| {
                    format!(
                        "{} for window ending {} ({:.0} ms)",
                        r.outcome.as_str(),
                        chrono::DateTime::from_timestamp(r.window_end, 0)
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default(),
                        r.duration_us as f64 / 1e3
                    )
                });
                println!(
                    "{:<28} {:<16} {:<26} {last}",
                    j.name(),
                    j.schedule().expr(),
                    j.schedule()
                        .next_after(now)
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default()
                );
            }
            0
        }
        JobsCommand::Run(args) => {
            let (_, jobs) = match jobs_of(&args.common).await {
                Ok(j) => j,
                Err(e) => return fail(e),
            };
            let Some(job) = jobs.find(&args.name) else {
                let names: Vec<String> = jobs.list.iter().map(|j| j.name()).collect();
                return fail(format!(
                    "no job {:?}; the configuration has: {}",
                    args.name,
                    names.join(", ")
                ));
            };
            let fired_at = match &args.window {
                Some(w) => match chrono::DateTime::parse_from_rfc3339(w) {
                    Ok(t) => crate::jobs::fire_for_window_start(job.as_ref(), t.timestamp()),
                    Err(e) => return fail(format!("--window: {w:?} is not RFC 3339 ({e})")),
                },
                None => match job.schedule().due(None, chrono::Utc::now(), 1).first() {
                    Some(t) => t.timestamp(),
                    None => return fail("the job has not been due yet; give --window"),
                },
            };
            match jobs.runner.execute(job.as_ref(), fired_at).await {
                Ok(run) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&crate::http::jobs::run_json(&run))
                            .unwrap_or_default()
                    );
                    if run.outcome == crate::jobs::Outcome::Success {
                        0
                    } else {
                        2
                    }
                }
                Err(e) => fail(e),
            }
        }
    }
}

pub async fn baseline(cmd: BaselineCommand) -> i32 {
    match cmd {
        BaselineCommand::Upload(args) => {
            if let Err(e) = crate::drift::baseline::check_name(&args.name) {
                return fail(e);
            }
            let (config, store) = match open(&args.common).await {
                Ok(s) => s,
                Err(e) => return fail(e),
            };
            let file = args.file.clone();
            let table = match tokio::task::spawn_blocking(move || {
                crate::dataset::read(&file, &Default::default())
            })
            .await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return fail(e),
                Err(e) => return fail(e),
            };
            if table.rows() == 0 {
                return fail(format!("{}: no rows", args.file.display()));
            }
            match crate::drift::baseline::store_table(
                store.as_ref(),
                &args.name,
                &args.model,
                &table,
                &format!("cli:{}", args.file.display()),
                chrono::Utc::now().timestamp_micros(),
                (
                    config.ingest.sketch_k,
                    config.ingest.max_categories_per_feature,
                ),
            )
            .await
            {
                Ok(info) => {
                    println!(
                        "stored baseline {:?} for model {:?}: {} rows, {} features summarised (use baseline = \"dataset:{}\")",
                        info.name, info.model, info.rows, info.features, info.name
                    );
                    0
                }
                Err(e) => fail(e),
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The ISO week, e.g. 2026-W48 (default: the last complete week).
    #[arg(long)]
    pub week: Option<String>,
    /// Output directory (default: <data_dir>/reports).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub common: ServeArgs,
}

pub async fn report(args: ReportArgs) -> i32 {
    let week = match &args.week {
        Some(w) => match crate::report::IsoWeek::parse(w) {
            Ok(w) => w,
            Err(e) => return fail(format!("--week: {e}")),
        },
        None => crate::report::IsoWeek::last_complete(chrono::Utc::now().timestamp()),
    };
    let (config, store) = match open(&args.common).await {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let out = args.out.unwrap_or_else(|| config.data_dir.join("reports"));
    let report = match crate::report::build(store.as_ref(), &week, &config.health).await {
        Ok(r) => r,
        Err(e) => return fail(format!("{e:#}")),
    };
    match crate::report::write(&report, &out) {
        Ok(files) => {
            println!("{}", report.model.verdict);
            for f in files {
                println!("wrote {}", f.display());
            }
            0
        }
        Err(e) => fail(format!("{e:#}")),
    }
}
