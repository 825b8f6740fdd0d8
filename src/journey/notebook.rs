//! Notebook journeys: notebooks read once at start (nbformat 4.x, and 3 upgraded, by the
//! `nbformat` crate) into their code cells, and one notebook run on a kernel: its code
//! cells in order, each timed and bounded, stopping at the first that fails; and a
//! session's rounds, one notebook each on a fresh kernel. A failure
//! names the notebook and the cell; the kernel's traceback goes to the debug log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    bounded, close_kernel, open_kernel, think, JourneyError, Journeys, KernelChannel, SessionEnd,
    Step, StepSink, UserSession,
};

/// More notebooks than this are refused: each is a `notebook` label value.
pub const MAX_NOTEBOOKS: usize = 50;
/// The kernel a notebook without a kernelspec runs on.
pub const DEFAULT_KERNEL: &str = "python3";

/// A notebook's code, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Notebook {
    /// The file's stem: its `notebook` label and its name in reports.
    pub name: String,
    pub path: PathBuf,
    /// The kernelspec's name (`python3` when the notebook names none).
    pub kernel: String,
    pub cells: Vec<CodeCell>,
}

/// One code cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeCell {
    /// 1-based, counting every cell (markdown included), as they appear in JupyterLab.
    pub position: usize,
    /// The cell's id (nbformat 4.5); older notebooks have none.
    pub id: Option<String>,
    pub source: String,
}

impl CodeCell {
    /// `cell 2 (id 8f3a…)`, as failures name it.
    pub fn label(&self) -> String {
        match &self.id {
            Some(id) => format!("cell {} (id {id})", self.position),
            None => format!("cell {}", self.position),
        }
    }
}

/// Reads the notebooks at `paths` (files, or directories searched for `*.ipynb`,
/// hidden directories such as `.ipynb_checkpoints` skipped). Every problem is returned,
/// each naming its file.
pub fn load(paths: &[PathBuf]) -> Result<Vec<Notebook>, Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            if let Err(e) = find(path, &mut files) {
                problems.push(format!("cannot read {}: {e}", path.display()));
            } else if files.len() == before {
                problems.push(format!("{} holds no .ipynb file", path.display()));
            }
        } else {
            files.push(path.clone());
        }
    }
    // A file named twice (or found twice) is one notebook.
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    if files.len() > MAX_NOTEBOOKS {
        problems.push(format!(
            "{} notebooks; at most {MAX_NOTEBOOKS} (each is a label value of the notebook metrics)",
            files.len()
        ));
        return Err(problems);
    }
    let mut notebooks: Vec<Notebook> = Vec::new();
    for file in files {
        match read(&file) {
            Ok(nb) => {
                if let Some(other) = notebooks.iter().find(|o| o.name == nb.name) {
                    problems.push(format!(
                        "{} and {} have the same name {:?} (a notebook's name is its file stem)",
                        other.path.display(),
                        nb.path.display(),
                        nb.name
                    ));
                } else {
                    notebooks.push(nb);
                }
            }
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(notebooks)
    } else {
        Err(problems)
    }
}

/// The `*.ipynb` files under `dir`, sorted, hidden directories and files skipped.
fn find(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            find(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "ipynb") {
            out.push(path);
        }
    }
    Ok(())
}

/// One notebook file.
fn read(path: &Path) -> Result<Notebook, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(path, &text)
}

/// A notebook's `text`; `path` names it (its stem is the notebook's name).
pub fn parse(path: &Path, text: &str) -> Result<Notebook, String> {
    let shown = path.display();
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{shown}: a notebook needs a file name"))?
        .to_string();
    let parsed = nbformat::parse_notebook(text)
        .map_err(|e| format!("{shown} is not a notebook hubsoak can read: {e}"))?;
    let (kernelspec, cells): Cells = match parsed {
        nbformat::Notebook::V4(nb) => v4_cells(nb, &[]),
        nbformat::Notebook::V4QuirksMode(q) => {
            // Ids the file did not have were made up by the parser: not shown.
            let missing: Vec<usize> = q
                .quirks()
                .iter()
                .filter_map(|quirk| match quirk {
                    nbformat::Quirk::MissingCellId { cell_index } => Some(*cell_index),
                    _ => None,
                })
                .collect();
            v4_cells(q.repair(), &missing)
        }
        nbformat::Notebook::Legacy(nb) => (
            nb.metadata.kernelspec.map(|k| k.name),
            nb.cells
                .into_iter()
                .map(|cell| match cell {
                    nbformat::legacy::Cell::Code { id, source, .. } => {
                        (id.map(|i| i.as_str().to_string()), Some(source.concat()))
                    }
                    nbformat::legacy::Cell::Markdown { id, .. }
                    | nbformat::legacy::Cell::Raw { id, .. } => {
                        (id.map(|i| i.as_str().to_string()), None)
                    }
                })
                .collect(),
        ),
        nbformat::Notebook::V3(nb) => {
            let nb = nbformat::upgrade_v3_notebook(nb)
                .map_err(|e| format!("{shown}: cannot read its nbformat 3: {e}"))?;
            let all: Vec<usize> = (0..nb.cells.len()).collect();
            v4_cells(nb, &all)
        }
        _ => return Err(format!("{shown}: an nbformat version hubsoak cannot read")),
    };
    let cells: Vec<CodeCell> = cells
        .into_iter()
        .enumerate()
        .filter_map(|(i, (id, source))| {
            let source = source?;
            (!source.trim().is_empty()).then_some(CodeCell {
                position: i + 1,
                id,
                source,
            })
        })
        .collect();
    if cells.is_empty() {
        return Err(format!("{shown} has no code to run"));
    }
    Ok(Notebook {
        name,
        path: path.to_path_buf(),
        kernel: kernelspec
            .filter(|k| !k.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_KERNEL.to_string()),
        cells,
    })
}

/// A notebook's kernelspec name and its cells as (id, the code of a code cell).
type Cells = (Option<String>, Vec<(Option<String>, Option<String>)>);

/// A v4 notebook's kernelspec and its cells as (id, code if a code cell); the ids of the
/// cells at `made_up` are dropped.
fn v4_cells(nb: nbformat::v4::Notebook, made_up: &[usize]) -> Cells {
    let cells = nb
        .cells
        .into_iter()
        .enumerate()
        .map(|(i, cell)| {
            let id = (!made_up.contains(&i)).then(|| cell.id().as_str().to_string());
            match cell {
                nbformat::v4::Cell::Code { source, .. } => (id, Some(source.concat())),
                _ => (id, None),
            }
        })
        .collect();
    (nb.metadata.kernelspec.map(|k| k.name), cells)
}

/// The notebook rounds of a session: each notebook on a fresh kernel (its kernelspec's,
/// unless `kernel_name` is set), think time between, until `until`, at least one.
pub(super) async fn run_session(
    user: &mut UserSession,
    journeys: &Journeys,
    until: Instant,
    cancel: &CancellationToken,
    sink: &dyn StepSink,
) -> SessionEnd {
    let settings = journeys.settings();
    let timeout = settings.step_timeout;
    let mut next = journeys.first_notebook();
    let mut runs = 0u32;
    loop {
        let notebook = &settings.notebooks[next % settings.notebooks.len()];
        next += 1;
        let kernel = if settings.kernel_name.is_empty() {
            notebook.kernel.as_str()
        } else {
            settings.kernel_name.as_str()
        };
        let at = format!("notebook {} (kernel {kernel})", notebook.name);
        let opened = open_kernel(user, kernel, Some(&at), timeout, cancel, sink).await;
        let (id, mut channel) = match opened {
            Ok(kernel) => kernel,
            Err(end) => {
                if let SessionEnd::Failed { error, .. } = &end {
                    sink.notebook(notebook, Err(error));
                }
                return end;
            }
        };
        let ran = run_cells(&mut channel, notebook, user.name(), timeout, cancel, sink).await;
        if let Some(ran) = &ran {
            sink.notebook(notebook, ran.as_ref().map(|_| ()));
        }
        let end = match ran {
            None => Some(SessionEnd::Cancelled),
            Some(Ok(())) => None,
            Some(Err(error)) => {
                tracing::debug!(user = user.name(), %error, "notebook failed");
                Some(SessionEnd::Failed {
                    step: Step::Execute,
                    error,
                })
            }
        };
        if let Some(end) = close_kernel(user, &id, channel, end, timeout, sink).await {
            return end;
        }
        runs += 1;
        if !think(settings.think_time, until, cancel).await {
            return if cancel.is_cancelled() {
                SessionEnd::Cancelled
            } else {
                SessionEnd::Completed { executions: runs }
            };
        }
    }
}

/// Runs `notebook`'s code cells in order on `channel`, each within `timeout`, each
/// reported to `sink` (as an `execute` step and as a cell); the first failure ends the
/// run, named by notebook and cell. None: cancelled.
async fn run_cells(
    channel: &mut KernelChannel,
    notebook: &Notebook,
    user: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    sink: &dyn StepSink,
) -> Option<Result<(), JourneyError>> {
    for cell in &notebook.cells {
        let (took, result) = bounded(timeout, cancel, channel.execute(&cell.source)).await?;
        let result = result.map(|_| ()).map_err(|error| {
            if let JourneyError::Kernel { traceback, .. } = &error {
                tracing::debug!(
                    user,
                    notebook = notebook.name,
                    cell = cell.position,
                    %traceback,
                    "the cell's traceback"
                );
            }
            error.at(Some(&format!(
                "notebook {} {}",
                notebook.name,
                cell.label()
            )))
        });
        sink.step(Step::Execute, took, result.as_ref().map(|_| ()));
        sink.cell(notebook, cell, took, result.as_ref().map(|_| ()));
        if let Err(error) = result {
            return Some(Err(error));
        }
    }
    Some(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    const V45: &str = r##"{
 "cells": [
  {"cell_type": "markdown", "id": "intro", "metadata": {}, "source": ["# Title"]},
  {"cell_type": "code", "id": "imports", "metadata": {}, "execution_count": null,
   "outputs": [], "source": ["import time\n", "x = 1"]},
  {"cell_type": "code", "id": "blank", "metadata": {}, "execution_count": null,
   "outputs": [], "source": "  \n"},
  {"cell_type": "code", "id": "boom", "metadata": {}, "execution_count": null,
   "outputs": [], "source": "1/0"}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}"##;

    const V44: &str = r##"{
 "cells": [
  {"cell_type": "code", "metadata": {}, "execution_count": 1, "outputs": [], "source": "5 * 4"}
 ],
 "metadata": {},
 "nbformat": 4, "nbformat_minor": 4
}"##;

    #[test]
    fn code_cells_keep_their_position_and_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "analysis.ipynb", V45);
        let nbs = load(&[path]).unwrap();
        assert_eq!(nbs.len(), 1);
        let nb = &nbs[0];
        assert_eq!(nb.name, "analysis");
        assert_eq!(nb.kernel, "python3");
        let cells: Vec<(usize, Option<&str>, &str)> = nb
            .cells
            .iter()
            .map(|c| (c.position, c.id.as_deref(), c.source.as_str()))
            .collect();
        assert_eq!(
            cells,
            [
                (2, Some("imports"), "import time\nx = 1"),
                (4, Some("boom"), "1/0")
            ]
        );
        assert_eq!(nb.cells[1].label(), "cell 4 (id boom)");
    }

    #[test]
    fn older_notebooks_have_no_ids_and_the_default_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "old.ipynb", V44);
        let nb = &load(&[path]).unwrap()[0];
        assert_eq!(nb.kernel, DEFAULT_KERNEL);
        assert_eq!(nb.cells[0].id, None);
        assert_eq!(nb.cells[0].label(), "cell 1");
    }

    #[test]
    fn a_directory_is_searched_and_checkpoints_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "b.ipynb", V44);
        write(dir.path(), "sub/a.ipynb", V45);
        write(dir.path(), ".ipynb_checkpoints/b-checkpoint.ipynb", V44);
        write(dir.path(), "notes.txt", "not a notebook");
        let names: Vec<String> = load(&[dir.path().to_path_buf()])
            .unwrap()
            .into_iter()
            .map(|n| n.name)
            .collect();
        assert_eq!(names, ["b", "a"]);
    }

    /// A ConfigMap volume: the files are links into a hidden `..data` directory.
    #[cfg(unix)]
    #[test]
    fn a_configmap_volume_reads_each_notebook_once() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2026_11_30_16_00_00.123");
        write(&data, "canary.ipynb", V44);
        std::os::unix::fs::symlink(&data, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink(
            Path::new("..data/canary.ipynb"),
            dir.path().join("canary.ipynb"),
        )
        .unwrap();
        let found = load(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<&str> = found.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["canary"]);
    }

    #[test]
    fn every_problem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let bad = write(dir.path(), "bad.ipynb", "{ not json");
        let prose = write(
            dir.path(),
            "prose.ipynb",
            r#"{"cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": "hi"}],
               "metadata": {}, "nbformat": 4, "nbformat_minor": 5}"#,
        );
        let one = write(dir.path(), "x/same.ipynb", V44);
        let two = write(dir.path(), "y/same.ipynb", V44);
        let missing = dir.path().join("missing.ipynb");
        let problems = load(&[empty, bad, prose, one.clone(), one, two, missing]).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
        assert!(problems[0].ends_with("holds no .ipynb file"));
        assert!(problems[1].contains("bad.ipynb is not a notebook"));
        assert!(problems[2].ends_with("prose.ipynb has no code to run"));
        assert!(problems[3].contains("the same name \"same\""));
        assert!(problems[4].starts_with("cannot read") && problems[4].contains("missing.ipynb"));
    }

    #[test]
    fn more_than_fifty_notebooks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..=MAX_NOTEBOOKS {
            write(dir.path(), &format!("n{i}.ipynb"), V44);
        }
        let problems = load(&[dir.path().to_path_buf()]).unwrap_err();
        assert_eq!(
            problems,
            ["51 notebooks; at most 50 (each is a label value of the notebook metrics)"]
        );
    }
}
