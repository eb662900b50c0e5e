//! The Tokio runtime a service runs on.

/// The runtime: `Some(1)` worker thread is the current-thread scheduler (no work-stealing
/// machinery to pay for), `Some(n)` that many workers, `None` one per CPU.
pub fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = match worker_threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder.enable_all().build()
}

/// What every service's `main` does first: its loaded configuration and a runtime for it, or,
/// when either fails, one line on stderr and the exit code to leave with.
pub fn configured<C, E: std::fmt::Display>(
    loaded: Result<C, E>,
    worker_threads: impl FnOnce(&C) -> Option<usize>,
) -> Result<(C, tokio::runtime::Runtime), std::process::ExitCode> {
    let config = loaded.map_err(|error| {
        eprintln!("error: {error}");
        std::process::ExitCode::FAILURE
    })?;
    let runtime = runtime(worker_threads(&config)).map_err(|error| {
        eprintln!("error: cannot start the runtime: {error}");
        std::process::ExitCode::FAILURE
    })?;
    Ok((config, runtime))
}
