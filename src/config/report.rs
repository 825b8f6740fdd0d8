//! The `report` subcommands' inputs, and the `--report-json`/`--threshold` flags every
//! one-shot shares.

use std::path::PathBuf;

use super::parse::{check_output_path, Problems};
use crate::oneshot::settings::ReportSettings;
use crate::report::command::ReportJob;
use crate::report::threshold::{actions, DeltaThreshold, Threshold};

/// `--report-json` and `--threshold`s, checked against the actions of the command's
/// report (`known`).
pub fn report_settings(
    args: &crate::cli::ReportArgs,
    known: &[&str],
    p: &mut Problems,
) -> ReportSettings {
    check_output_path("--report-json", &args.report_json, p);
    let thresholds = args
        .thresholds
        .iter()
        .filter_map(|t| {
            Threshold::parse_for(t, known)
                .map_err(|e| p.push("--threshold", e))
                .ok()
        })
        .collect();
    ReportSettings {
        json: args.report_json.clone(),
        thresholds,
    }
}

pub fn report_job(
    cmd: &crate::cli::ReportCommand,
    force: bool,
    p: &mut Problems,
) -> Option<ReportJob> {
    use crate::cli::ReportCommand;
    let input = |p: &mut Problems, key: &str, path: &PathBuf| {
        if !path.is_file() {
            p.push(key, format!("{} is not a readable file", path.display()));
        }
    };
    Some(match cmd {
        ReportCommand::Merge { reports, output } => {
            for r in reports {
                input(p, "REPORT", r);
            }
            check_output_path("--output", &Some(output.clone()), p);
            ReportJob::Merge {
                reports: reports.clone(),
                output: output.clone(),
            }
        }
        ReportCommand::Diff {
            base,
            new,
            tolerance,
            thresholds,
        } => {
            input(p, "BASE", base);
            input(p, "NEW", new);
            let raw = tolerance.trim();
            let tolerance = match raw.strip_suffix('%').unwrap_or(raw).trim().parse::<f64>() {
                Ok(t) if (0.0..=1000.0).contains(&t) => t / 100.0,
                _ => {
                    p.push(
                        "--tolerance",
                        format!("{raw:?} is not a percentage like 10%"),
                    );
                    0.1
                }
            };
            let thresholds = thresholds
                .iter()
                .filter_map(|t| {
                    DeltaThreshold::parse_for(t, actions::ANY)
                        .map_err(|e| p.push("--threshold", e))
                        .ok()
                })
                .collect();
            ReportJob::Diff {
                base: base.clone(),
                new: new.clone(),
                tolerance,
                thresholds,
                force,
            }
        }
        ReportCommand::Html { report, output } => {
            input(p, "REPORT", report);
            check_output_path("--output", &Some(output.clone()), p);
            ReportJob::Html {
                report: report.clone(),
                output: output.clone(),
            }
        }
    })
}
