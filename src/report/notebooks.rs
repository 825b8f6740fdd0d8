//! Notebook journeys in a report: per notebook, its runs (completed, or failed by reason),
//! the duration of every cell that ran (p50/p95), and each cell's count, mean and max so
//! the slowest cells show. Bounded: at most `journey::MAX_NOTEBOOKS` notebooks, each with
//! the cells it has.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Latency, LatencySummary, Tally};

/// Slowest cells shown per notebook in the table and the page.
pub const SLOWEST_SHOWN: usize = 3;

/// One notebook, as the run goes.
#[derive(Debug, Default)]
pub(super) struct NotebookStats {
    runs: Tally,
    cells: Latency,
    by_cell: BTreeMap<usize, CellSummary>,
}

impl NotebookStats {
    pub(super) fn cell(&mut self, position: usize, id: Option<&str>, took: Duration, ok: bool) {
        let cell = self.by_cell.entry(position).or_insert_with(|| CellSummary {
            cell: position,
            id: id.map(str::to_string),
            ..CellSummary::default()
        });
        if ok {
            cell.ok += 1;
            cell.total_s += took.as_secs_f64();
            cell.max_s = cell.max_s.max(took.as_secs_f64());
            self.cells.record(took);
        } else {
            cell.failed += 1;
        }
    }

    pub(super) fn run(&mut self, failure: Option<&str>) {
        match failure {
            None => self.runs.success += 1,
            Some(reason) => *self.runs.failures.entry(reason.to_string()).or_default() += 1,
        }
    }

    pub(super) fn summary(&self, name: &str) -> NotebookSummary {
        NotebookSummary {
            name: name.to_string(),
            runs: self.runs.clone(),
            cell_p95_s: self.cells.quantile(0.95).as_secs_f64(),
            cells: self.cells.summary(),
            by_cell: self.by_cell.values().cloned().collect(),
        }
    }
}

/// A notebook's part of the report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NotebookSummary {
    /// The file's stem.
    pub name: String,
    /// Runs that got through every cell (success) and those that failed, by reason.
    pub runs: Tally,
    /// Every cell that ran without error.
    pub cells: LatencySummary,
    pub cell_p95_s: f64,
    /// Each cell that was run, in notebook order.
    pub by_cell: Vec<CellSummary>,
}

/// One cell over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct CellSummary {
    /// 1-based position in the notebook, every cell counted.
    pub cell: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub ok: u64,
    pub failed: u64,
    /// Sum of the successful runs' durations.
    pub total_s: f64,
    pub max_s: f64,
}

impl CellSummary {
    pub fn mean_s(&self) -> f64 {
        if self.ok == 0 {
            0.0
        } else {
            self.total_s / self.ok as f64
        }
    }

    /// `cell 3 (id imports)`.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("cell {} (id {id})", self.cell),
            None => format!("cell {}", self.cell),
        }
    }
}

impl NotebookSummary {
    /// The cells with the longest mean, slowest first.
    pub fn slowest(&self) -> Vec<&CellSummary> {
        let mut cells: Vec<&CellSummary> = self.by_cell.iter().filter(|c| c.ok > 0).collect();
        cells.sort_by(|a, b| b.mean_s().total_cmp(&a.mean_s()));
        cells.truncate(SLOWEST_SHOWN);
        cells
    }

    /// `other`'s runs and cells added to these (`report merge`, cycles); None if a
    /// histogram cannot be read.
    pub fn absorb(&mut self, other: &NotebookSummary) -> Option<()> {
        self.runs.success += other.runs.success;
        for (reason, n) in &other.runs.failures {
            *self.runs.failures.entry(reason.clone()).or_default() += n;
        }
        let mut cells = Latency::from_summary(&self.cells)?;
        cells.add(&Latency::from_summary(&other.cells)?);
        self.cells = cells.summary();
        self.cell_p95_s = cells.quantile(0.95).as_secs_f64();
        for c in &other.by_cell {
            match self.by_cell.iter_mut().find(|m| m.cell == c.cell) {
                Some(m) => {
                    m.ok += c.ok;
                    m.failed += c.failed;
                    m.total_s += c.total_s;
                    m.max_s = m.max_s.max(c.max_s);
                }
                None => self.by_cell.push(c.clone()),
            }
        }
        self.by_cell.sort_by_key(|c| c.cell);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(durations: &[(usize, u64)], failures: &[&str]) -> NotebookStats {
        let mut s = NotebookStats::default();
        for (cell, ms) in durations {
            s.cell(*cell, Some("c"), Duration::from_millis(*ms), true);
        }
        for reason in failures {
            s.cell(9, None, Duration::from_secs(5), false);
            s.run(Some(reason));
        }
        s.run(None);
        s
    }

    #[test]
    fn the_slowest_cells_come_first_and_failures_take_no_time() {
        let s = stats(&[(1, 10), (2, 300), (2, 100), (4, 50)], &["timeout"]).summary("nb");
        let slowest: Vec<(usize, f64)> = s.slowest().iter().map(|c| (c.cell, c.mean_s())).collect();
        assert_eq!(slowest, [(2, 0.2), (4, 0.05), (1, 0.01)]);
        assert_eq!(s.cells.count, 4);
        assert_eq!(s.runs.success, 1);
        assert_eq!(s.runs.failures["timeout"], 1);
        let failed = s.by_cell.iter().find(|c| c.cell == 9).unwrap();
        assert_eq!(
            (failed.ok, failed.failed, failed.label()),
            (0, 1, "cell 9".into())
        );
    }

    #[test]
    fn merged_summaries_add_up() {
        let mut a = stats(&[(1, 10), (2, 300)], &[]).summary("nb");
        let b = stats(&[(2, 100), (3, 20)], &["kernel_error"]).summary("nb");
        a.absorb(&b).unwrap();
        assert_eq!(a.runs.success, 2);
        assert_eq!(a.runs.failures["kernel_error"], 1);
        assert_eq!(a.cells.count, 4);
        let cells: Vec<(usize, u64)> = a.by_cell.iter().map(|c| (c.cell, c.ok)).collect();
        assert_eq!(cells, [(1, 1), (2, 2), (3, 1), (9, 0)]);
        assert_eq!(a.slowest()[0].cell, 2);
        assert!((a.slowest()[0].max_s - 0.3).abs() < 1e-9);
    }
}
