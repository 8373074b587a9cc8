//! Command-line interface (clap). Each command returns an exit-code integer through
//! `main`: 0 success, 1 a finding the caller asked to fail on, 2 an error.

pub mod admin;
pub mod bench;
pub mod compare;
mod soak;

use crate::app::App;
use crate::config::{self, Config, Overrides};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "flywheel",
    version,
    about = "Watches an ML product's data flywheel"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (HTTP API, ingest, scheduled jobs).
    Serve(ServeArgs),
    /// Start the service in a fresh data directory and play weeks of a simulated product
    /// (drift, a feedback drop and a learning plateau happen at known times).
    Demo(DemoArgs),
    /// Compare two datasets column by column (drift), as the service does on live traffic.
    Compare(compare::CompareArgs),
    /// Reproducible measurements (see BENCHMARKS.md).
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
    /// Scheduled jobs: list them, run one window now.
    Jobs {
        #[command(subcommand)]
        command: admin::JobsCommand,
    },
    /// Reference datasets for drift monitors.
    Baseline {
        #[command(subcommand)]
        command: admin::BaselineCommand,
    },
    /// Personal data: erase a user.
    Users {
        #[command(subcommand)]
        command: admin::UsersCommand,
    },
    /// Write the weekly report of an ISO week (Markdown, HTML with charts, JSON).
    Report(admin::ReportArgs),
    /// Apply the store's schema migrations and exit (`serve` also applies them at start;
    /// run this first when upgrading replicas one at a time).
    Migrate(ServeArgs),
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Config file (TOML). Without one, every default applies (see config/default.toml).
    #[arg(long, env = "FLYWHEEL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (overrides server.listen and FLYWHEEL_LISTEN).
    #[arg(long)]
    pub listen: Option<String>,
    /// Data directory (overrides server.data_dir and FLYWHEEL_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed: the same seed gives the same events and the same figures.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated weeks.
    #[arg(long, default_value_t = 20)]
    pub weeks: u32,
    /// New users per simulated day.
    #[arg(long, default_value_t = 40)]
    pub new_users: u32,
    /// Data directory (default: a new `./flywheel-demo-<time>` directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Exit when the scenario ends (the data directory stays for inspection).
    #[arg(long)]
    pub until_done: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file and report every problem at once.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Print the documented default configuration.
    Default,
}

/// Load the config for `serve`: defaults, the file, the environment, then flags.
pub fn load_config(args: &ServeArgs) -> Result<Config, config::ConfigErrors> {
    let flags = Overrides {
        listen: args.listen.clone(),
        data_dir: args.data_dir.clone(),
        ..Default::default()
    };
    let ov = Overrides::from_env().or(flags);
    match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                config::ConfigErrors(vec![format!("cannot read {}: {e}", path.display())])
            })?;
            config::check_text(&text, ov)
        }
        None => Config::default_with(ov),
    }
}

/// Set up logging for a command: to stderr, filtered by `FLYWHEEL_LOG` (default `info`). The
/// demo is the exception: its progress lines are what a newcomer reads, so unless `FLYWHEEL_LOG`
/// is set its log goes to `<data dir>/flywheel.log` (the data directory is chosen here).
pub fn init_logging(cli: &mut Cli) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let env = std::env::var("FLYWHEEL_LOG").ok().filter(|v| !v.is_empty());
    let filter = || {
        env.as_deref()
            .and_then(|f| EnvFilter::try_new(f).ok())
            .unwrap_or_else(|| EnvFilter::new("info"))
    };
    if let Command::Demo(args) = &mut cli.command {
        let dir = args.data_dir.get_or_insert_with(|| {
            PathBuf::from(format!(
                "flywheel-demo-{}",
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            ))
        });
        if dir.join("flywheel.db").exists() {
            return Err(format!(
                "{} already holds a flywheel store; the demo needs a fresh directory",
                dir.display()
            ));
        }
        if env.is_none() {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            let path = dir.join("flywheel.log");
            let file = std::fs::File::create(&path)
                .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .init();
            return Ok(());
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    Ok(())
}

pub async fn run(cli: Cli) -> i32 {
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Demo(args) => {
            let Some(data_dir) = args.data_dir else {
                eprintln!("error: the demo's data directory was not chosen (init_logging)");
                return 2;
            };
            let start = crate::demo::start_for(chrono::Utc::now().timestamp(), args.weeks);
            let opts = crate::demo::DemoOptions {
                start,
                seed: args.seed,
                weeks: args.weeks,
                new_users: args.new_users,
                data_dir,
                listen: args.listen,
                until_done: args.until_done,
                progress: true,
            };
            match crate::demo::run(opts).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    2
                }
            }
        }
        Command::Migrate(args) => migrate(args).await,
        Command::Bench { command } => bench::run(command).await,
        Command::Jobs { command } => admin::jobs(command).await,
        Command::Baseline { command } => admin::baseline(command).await,
        Command::Users { command } => admin::users(command).await,
        Command::Report(args) => admin::report(args).await,
        Command::Compare(args) => tokio::task::spawn_blocking(move || compare::run(args))
            .await
            .unwrap_or(2),
        Command::Config { command } => match command {
            ConfigCommand::Check { file } => {
                let text = match std::fs::read_to_string(&file) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", file.display());
                        return 2;
                    }
                };
                match config::check_text(&text, Overrides::default()) {
                    Ok(_) => {
                        println!("{}: ok", file.display());
                        0
                    }
                    Err(e) => {
                        eprintln!("{}: {e}", file.display());
                        2
                    }
                }
            }
            ConfigCommand::Default => {
                print!("{}", include_str!("../../config/default.toml"));
                0
            }
        },
    }
}

async fn migrate(args: ServeArgs) -> i32 {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let location = config.store_location();
    match crate::store::migrate(&location).await {
        Ok(()) => {
            println!("{}: migrations applied", location.describe());
            0
        }
        Err(e) => {
            eprintln!(
                "error: cannot migrate the store {}: {e}",
                location.describe()
            );
            2
        }
    }
}

async fn serve(args: ServeArgs) -> i32 {
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let app = match App::build(config).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "cannot start");
            return 2;
        }
    };
    match app.run_until_stopped(crate::shutdown::signal()).await {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stopped with an error");
            2
        }
    }
}
