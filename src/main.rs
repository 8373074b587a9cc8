//! The `flywheel` binary: parse the command line, set up logging, run, map to an exit code.

use clap::Parser;

// mimalloc: faster than glibc malloc for ingest's many short-lived allocations across threads,
// and it returns memory to the OS more readily.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let mut cli = flywheel::cli::Cli::parse();
    if let Err(e) = flywheel::cli::init_logging(&mut cli) {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let code = rt.block_on(flywheel::cli::run(cli));
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(2))
}
