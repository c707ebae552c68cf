//! What asks a running dropcast to stop, on each system: Ctrl-C everywhere; SIGTERM on
//! unix (systemd, launchd, `kill`); on Windows Ctrl-Break and the console's close, log-off
//! and shut-down events (the system waits a few seconds for the agent to finish before it
//! ends the process). Task Manager's "End task" and `Stop-Process` are hard kills, like
//! `kill -9`, which the ledger survives.

/// Resolves at the first request to stop.
pub(crate) async fn requested() {
    #[cfg(unix)]
    unix().await;
    #[cfg(windows)]
    windows().await;
    #[cfg(not(any(unix, windows)))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(unix)]
async fn unix() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(windows)]
async fn windows() {
    use tokio::signal::windows as w;
    let (Ok(mut brk), Ok(mut close), Ok(mut logoff), Ok(mut shutdown)) = (
        w::ctrl_break(),
        w::ctrl_close(),
        w::ctrl_logoff(),
        w::ctrl_shutdown(),
    ) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = brk.recv() => {}
        _ = close.recv() => {}
        _ = logoff.recv() => {}
        _ = shutdown.recv() => {}
    }
}
