//! `hubsoak report merge|diff|html`: read report files, do the work, write the result.

use std::path::{Path, PathBuf};

use super::Outcome;
use super::{diff, html, merge, RunReport};

/// A `report` subcommand, its inputs checked to exist.
#[derive(Debug, Clone)]
pub enum ReportJob {
    Merge {
        reports: Vec<PathBuf>,
        output: PathBuf,
    },
    Diff {
        base: PathBuf,
        new: PathBuf,
        /// 0.1 = 10 %.
        tolerance: f64,
        thresholds: Vec<super::threshold::DeltaThreshold>,
        /// Compare runs of different commands anyway.
        force: bool,
    },
    Html {
        report: PathBuf,
        output: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ReportCommandError {
    /// A report that cannot be read or is not a hubsoak report: bad input (exit 2).
    #[error("{path}: {detail}")]
    Input { path: String, detail: String },
    /// Reports of different commands: bad input (exit 2) unless forced.
    #[error("{0}")]
    Incomparable(String),
    #[error(transparent)]
    Merge(#[from] merge::MergeError),
    #[error("cannot write {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
}

impl ReportCommandError {
    /// Whether the fault is in what was given (exit 2) rather than in writing (exit 1).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, ReportCommandError::Output { .. })
    }
}

fn read(path: &Path) -> Result<RunReport, ReportCommandError> {
    let input = |detail: String| ReportCommandError::Input {
        path: path.display().to_string(),
        detail,
    };
    let text = std::fs::read_to_string(path).map_err(|e| input(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| input(format!("not a hubsoak run report: {e}")))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), ReportCommandError> {
    std::fs::write(path, bytes).map_err(|source| ReportCommandError::Output {
        path: path.display().to_string(),
        source,
    })
}

pub fn run(job: &ReportJob) -> Result<Outcome, ReportCommandError> {
    match job {
        ReportJob::Merge { reports, output } => {
            let read: Vec<RunReport> = reports.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
            let merged = merge::merge(&read)?;
            write(
                output,
                &serde_json::to_vec_pretty(&merged).unwrap_or_default(),
            )?;
            crate::out::print(&merged.render());
            crate::out::line(format_args!(
                "merged {} into {}",
                crate::out::count(read.len() as u64, "report"),
                output.display()
            ));
            Ok(Outcome::Clean)
        }
        ReportJob::Diff {
            base,
            new,
            tolerance,
            thresholds,
            force,
        } => {
            let (b, n) = (read(base)?, read(new)?);
            if let Some(why) = diff::incomparable(&b, &n).filter(|_| !force) {
                return Err(ReportCommandError::Incomparable(why));
            }
            let changes = diff::parameter_changes(&b, &n);
            if !changes.is_empty() {
                crate::out::warning(format_args!(
                    "the runs' parameters differ, so not every change is the hub's: {}",
                    changes.join("; ")
                ));
            }
            let rows = diff::diff(&b, &n, *tolerance);
            crate::out::print(&diff::render(&b, &n, &rows, *tolerance));
            let results: Vec<_> = thresholds.iter().map(|t| t.check(&b, &n)).collect();
            for r in &results {
                crate::out::line(format_args!("threshold: {r}"));
            }
            Ok(if results.iter().any(|r| !r.passed) {
                Outcome::ThresholdsMissed
            } else {
                Outcome::Clean
            })
        }
        ReportJob::Html { report, output } => {
            let r = read(report)?;
            write(output, html::render(&r).as_bytes())?;
            crate::out::line(format_args!("wrote {}", output.display()));
            Ok(Outcome::Clean)
        }
    }
}
