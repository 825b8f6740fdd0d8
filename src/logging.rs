//! Logs through `tracing`: key=value text for people, JSON for clusters; to stderr and
//! optionally a file. Dependencies log only warnings, so no request detail leaks.

use std::fs::File;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::cli::LogFormat;
use crate::config::LogSettings;

/// Installs the global subscriber; returns the log file's path if there is one.
pub fn init(settings: &LogSettings) -> std::io::Result<Option<PathBuf>> {
    let level = match settings.verbose {
        0 => "hubsoak=info,warn",
        1 => "hubsoak=debug,warn",
        _ => "hubsoak=trace,warn",
    };
    let filter = || EnvFilter::new(level);
    let stderr_layer = match settings.format {
        LogFormat::Text => fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .compact()
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .with_filter(filter())
            .boxed(),
    };
    let (file_layer, path) = match &settings.file {
        None => (None, None),
        Some(path) => {
            let path = path.clone().unwrap_or_else(|| {
                std::env::temp_dir().join(format!(
                    "hubsoak-{}-{}.log",
                    chrono::Utc::now().format("%Y%m%dT%H%M%S"),
                    std::process::id()
                ))
            });
            let file = Mutex::new(File::create(&path)?);
            let layer = match settings.format {
                LogFormat::Text => fmt::layer()
                    .with_writer(file)
                    .with_ansi(false)
                    .with_filter(filter())
                    .boxed(),
                LogFormat::Json => fmt::layer()
                    .with_writer(file)
                    .json()
                    .with_filter(filter())
                    .boxed(),
            };
            (Some(layer), Some(path))
        }
    };
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .init();
    Ok(path)
}
