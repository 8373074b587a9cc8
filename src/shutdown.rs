//! The process's stop signal: `serve` and the demo pass [`signal`] to
//! `App::run_until_stopped`; tests pass a future of their own.

/// Resolves on the first SIGINT or SIGTERM; a second one exits the process at once (130).
pub async fn signal() {
    wait_for_signal().await;
    tracing::info!("signal received; shutting down (send it again to exit at once)");
    tokio::spawn(async {
        wait_for_signal().await;
        tracing::warn!("second signal: exiting now");
        std::process::exit(130);
    });
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
