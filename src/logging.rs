//! Logs through `tracing`: key=value text for people, JSON for clusters; to stderr and
//! optionally a file (created 0600). Every line passes the redactor on its way out, so
//! no secret reaches a log whatever text a hub sent; dependencies log only warnings.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter, Layer};

use crate::hub::redact;

/// How log lines look: key=value text for people, JSON lines for clusters.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Where logs go and how much of them.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub verbose: u8,
    pub format: LogFormat,
    /// `Some(None)`: a new file in the temp dir.
    pub file: Option<Option<PathBuf>>,
}

/// Writes each formatted line with every secret replaced; on the terminal
/// (`above_bars`), clear of the progress bars.
struct Redacting<W: Write>(W, bool);

impl<W: Write> Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        // Progress bars make way for the line, so none is left half-drawn above it.
        let text = redact(&text);
        if self.1 {
            crate::out::above_bars(|| self.0.write_all(text.as_bytes()))?;
        } else {
            self.0.write_all(text.as_bytes())?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A log file only its owner may read: it may hold user names and hub answers.
fn create_private(path: &std::path::Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let file = options.open(path)?;
        // An existing file keeps its mode on open: set it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(file)
    }
    #[cfg(not(unix))]
    options.open(path)
}

/// Installs the global subscriber; returns the log file's path if there is one.
pub fn init(settings: &LogSettings) -> std::io::Result<Option<PathBuf>> {
    let level = match settings.verbose {
        0 => "hubsoak=info,warn",
        1 => "hubsoak=debug,warn",
        _ => "hubsoak=trace,warn",
    };
    let filter = || EnvFilter::new(level);
    let stderr = || Redacting(std::io::stderr(), true);
    let stderr_layer = match settings.format {
        LogFormat::Text => fmt::layer()
            .with_writer(stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .compact()
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => fmt::layer()
            .with_writer(stderr)
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
            let file = Arc::new(create_private(&path)?);
            let writer = move || Redacting(FileLines(file.clone()), false);
            let layer = match settings.format {
                LogFormat::Text => fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_filter(filter())
                    .boxed(),
                LogFormat::Json => fmt::layer()
                    .with_writer(writer)
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

/// The shared log file; each line is one write.
struct FileLines(Arc<File>);

impl Write for FileLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        (&*self.0).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.0).flush()
    }
}
