//! SIGINT and SIGTERM: the first cancels the given token (finish cleanly: stop
//! scheduling, clean up what we started); a second exits at once.

use futures::StreamExt;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio_util::sync::CancellationToken;

/// Exit code after a second signal (128 + SIGINT).
pub const FORCED_EXIT: i32 = 130;

/// Must be called inside a tokio runtime.
pub fn install(token: CancellationToken) -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    tokio::spawn(async move {
        let mut seen = false;
        while let Some(signal) = signals.next().await {
            if seen {
                tracing::warn!(signal, "second signal: exiting now");
                std::process::exit(FORCED_EXIT);
            }
            seen = true;
            tracing::warn!(
                signal,
                "signal received: finishing cleanly (send it again to exit now)"
            );
            token.cancel();
        }
    });
    Ok(())
}
