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
