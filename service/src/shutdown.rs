//! The signal that stops a service.

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM. If a signal handler cannot be installed the
/// failure is logged and that signal is not waited for.
pub async fn shutdown_signal() {
    let interrupt = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!("Ctrl-C received; shutting down"),
            Err(error) => {
                tracing::error!(%error, "Ctrl-C handler could not be installed");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate() => {}
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut sigterm) => match sigterm.recv().await {
            Some(()) => tracing::info!("SIGTERM received; shutting down"),
            None => std::future::pending::<()>().await,
        },
        Err(error) => {
            tracing::error!(%error, "SIGTERM handler could not be installed");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
