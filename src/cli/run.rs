//! One training run as the command line runs it: its run directory (model, checkpoints, metrics,
//! summary, plots, all-or-nothing and single-writer), the progress it prints, and resuming. The
//! loop, its plan and the checkpoint schema are the library's (`adahessian_wgpu::session`);
//! `compare` runs many without a directory each.

use crate::plot::{line_chart, Series};
use crate::setup::Data;
use adahessian_wgpu::checkpoint;
use adahessian_wgpu::session::{self, Live, Metric, Observer, Outcome, Plan, RunState, Score};
use adahessian_wgpu::{Error, Result as LibResult};
use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// A run directory being written, all-or-nothing and by one process at a time.
///
/// - One writer: an exclusive lock on `<parent>/.<name>.lock`, held while this value lives; a
///   second process with the same directory is refused with a message that says so.
/// - All-or-nothing: a new run over an existing one (`--force`) is built in a staging directory
///   beside it and swapped in by [`RunDir::commit`] once it has its first checkpoint, so until
///   then the directory still holds the old run, complete, and afterwards only the new one (no
///   stale files of the old run survive). A run that fails before that leaves the old one as it
///   was ([`RunDir::abandon`]).
pub struct RunDir {
    target: PathBuf,
    current: std::cell::RefCell<PathBuf>,
    _lock: std::fs::File,
}

impl RunDir {
    /// Takes the directory for a new run, refusing to overwrite a non-empty one unless `force`.
    /// Every check is made before anything is written: `--force` replaces only a previous run
    /// (never a regular file, a directory of other files, or the directory the command runs in).
    pub fn create(path: &Path, force: bool) -> Result<RunDir> {
        let lock = lock_run(path)?;
        // a symbolic link to a run stays a link: the run is staged and swapped beside its target
        let path = &canonical_run_path(path);
        recover_interrupted(path)?;
        if path.exists() && !path.is_dir() {
            bail!("--out {}: this is a file, not a run directory; choose another --out (--force replaces only a previous run)", path.display());
        }
        if std::env::current_dir().is_ok_and(|cwd| cwd.starts_with(path)) {
            bail!("--out {}: this is the current directory or one above it; give the run a directory of its own, e.g. --out runs/first", path.display());
        }
        let occupied = path.exists() && path.read_dir().map(|mut d| d.next().is_some()).unwrap_or(true);
        if occupied && !force {
            let hint = if path.join("checkpoint.safetensors").exists() { "; --resume it to train on" } else { "" };
            bail!(
                "{} already exists and is not empty; pass --force to overwrite it, or choose another --out{hint}",
                path.display()
            );
        }
        if occupied && !RUN_MARKERS.iter().any(|m| path.join(m).exists()) {
            bail!(
                "--out {}: the directory holds files that are not a run of this tool (no {}); --force replaces only a previous run: choose another --out",
                path.display(),
                RUN_MARKERS.join(" or ")
            );
        }
        // always staged: a run killed before its first checkpoint leaves no half-run in the way
        // of the next one, only a hidden staging directory that the next run here removes
        let current = sibling(path, &format!("new-{}", std::process::id()));
        if current.exists() {
            std::fs::remove_dir_all(&current).with_context(|| format!("removing {}", current.display()))?;
        }
        std::fs::create_dir_all(&current).with_context(|| format!("creating {}", current.display()))?;
        Ok(RunDir { target: path.to_path_buf(), current: current.into(), _lock: lock })
    }

    /// Takes an existing run directory to continue it (`--resume`).
    pub fn resume(path: &Path) -> Result<RunDir> {
        let lock = lock_run(path)?;
        recover_interrupted(path)?;
        Ok(RunDir { target: path.to_path_buf(), current: path.to_path_buf().into(), _lock: lock })
    }

    /// Where the run ends up (the staging directory is swapped in here at the first commit).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Where the run's files are written now (the staging directory until the first commit).
    pub fn path(&self) -> PathBuf {
        self.current.borrow().clone()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.current.borrow().join(name)
    }

    /// Swaps a staged run into place (no-op when it is already there): the old run moves aside,
    /// the new one takes its name, the old one is deleted.
    pub fn commit(&self) -> Result<()> {
        let current = self.path();
        if current == self.target {
            return Ok(());
        }
        let old = sibling(&self.target, &format!("old-{}", std::process::id()));
        let replacing = self.target.exists();
        if replacing {
            std::fs::rename(&self.target, &old)
                .with_context(|| format!("moving the old run {} aside", self.target.display()))?;
        }
        std::fs::rename(&current, &self.target)
            .with_context(|| format!("moving the new run {} into {}", current.display(), self.target.display()))?;
        *self.current.borrow_mut() = self.target.clone();
        if replacing {
            std::fs::remove_dir_all(&old).with_context(|| format!("removing the old run {}", old.display()))?;
        }
        Ok(())
    }

    /// After a failure before the first commit: removes what this run wrote (a staging directory,
    /// or the new directory it created) and says what was kept.
    pub fn abandon(&self) -> String {
        let current = self.path();
        if current != self.target {
            let _ = std::fs::remove_dir_all(&current);
            if self.target.exists() {
                format!("the previous run in {} is kept as it was", self.target.display())
            } else {
                format!("nothing was written to {}", self.target.display())
            }
        } else {
            let _ = std::fs::remove_dir_all(&current);
            format!("{} was removed", current.display())
        }
    }
}

/// Files only a run (train's run.json) or a comparison (report.json) of this tool writes.
const RUN_MARKERS: [&str; 2] = ["run.json", "report.json"];

/// Under the run's lock, finishes or removes what a killed process left beside the run: a
/// staging directory (`.NAME.new-PID`, a run that never reached its first checkpoint) is
/// removed; an old run moved aside (`.NAME.old-PID`) is removed once the new run is in place, or,
/// when the process died between the two renames of a commit, the new run is moved in first.
fn recover_interrupted(path: &Path) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    let (mut staged, mut old) = (Vec::new(), Vec::new());
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = file.strip_prefix(&format!(".{name}.")) {
            if rest.starts_with("new-") {
                staged.push(entry.path());
            } else if rest.starts_with("old-") {
                old.push(entry.path());
            }
        }
    }
    if !path.exists() && !old.is_empty() {
        // a commit stopped after moving the old run aside: its new run was complete
        let (from, what) = match staged.pop() {
            Some(new) => (new, "finishing the interrupted commit of"),
            None => (old.pop().unwrap_or_default(), "putting back the old run of"),
        };
        std::fs::rename(&from, path).with_context(|| format!("{what} {}", path.display()))?;
    }
    for dir in staged.iter().chain(&old) {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}, left by a killed run", dir.display()))?;
    }
    Ok(())
}

/// `<parent>/.<name>.<suffix>`: hidden siblings of a run directory (its lock, staging, old run).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    path.with_file_name(format!(".{name}.{suffix}"))
}

/// The directory a path means, wherever it is reached from: symbolic links followed (a dangling
/// one to where it points), relative parts and `..` resolved. Two spellings of one run lock the
/// same file.
fn canonical_run_path(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(&p) {
                Ok(target) => p = p.parent().map_or(target.clone(), |parent| parent.join(&target)),
                Err(_) => break,
            },
            _ => break,
        }
    }
    if let Ok(c) = std::fs::canonicalize(&p) {
        return c;
    }
    // not there yet: its parent's canonical path and its name
    let parent = p.parent().filter(|q| !q.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (std::fs::canonicalize(parent), p.file_name()) {
        (Ok(parent), Some(name)) => parent.join(name),
        _ => p,
    }
}

fn lock_run(path: &Path) -> Result<std::fs::File> {
    // one writer per run, however the path is spelled (a symlink to it, a relative path)
    let lock_path = sibling(&canonical_run_path(path), "lock");
    if let Some(parent) = lock_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening the lock {}", lock_path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another adahessian process is writing {} (it holds {}); wait for it to finish or choose another --out",
            path.display(),
            lock_path.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", lock_path.display())),
    }
}

/// What a resumed run must see again: rows, features and a hash of both splits.
pub fn data_fingerprint(data: &Data) -> serde_json::Value {
    serde_json::to_value(adahessian_wgpu::data::Fingerprint::of(&data.train, data.test.as_ref())).unwrap_or_default()
}

/// A run's state and the metrics it logged so far: what `--resume` continues from.
pub type Resume = (RunState, Vec<Metric>);

/// A run directory's checkpoint and metrics, for `--resume`.
pub fn load_resume(dir: &Path) -> Result<Resume> {
    let state = RunState::load(&dir.join("checkpoint.safetensors"))
        .with_context(|| format!("--resume {}: no usable checkpoint.safetensors", dir.display()))?;
    // a run with a checkpoint has logged its history: one that cannot be read is an error, not an
    // empty history (the resumed run would silently start its metrics again)
    let path = dir.join("metrics.csv");
    let metrics = read_metrics(&path).with_context(|| {
        format!(
            "--resume {}: its history {} cannot be read, so resuming would lose it; restore the file, or start a new run",
            dir.display(),
            path.display()
        )
    })?;
    let mut metrics = metrics;
    // rows past the checkpoint (none while the checkpoint is written first) are measured again
    // bit-identically by the resumed run
    metrics.retain(|m| m.step <= state.step);
    Ok((state, metrics))
}

fn read_metrics(path: &Path) -> Result<Vec<Metric>> {
    let text = std::fs::read_to_string(path)?;
    let metrics = Metric::parse_csv(&text);
    if !text.starts_with("step,") {
        bail!("it has no header line (it is empty or cut)");
    }
    if metrics.len() + 1 != text.lines().filter(|l| !l.trim().is_empty()).count() {
        bail!("a line of it is not a row of metrics (the file is damaged)");
    }
    Ok(metrics)
}

fn write_metrics(path: &Path, metrics: &[Metric], score: Score) -> Result<()> {
    crate::setup::write_file(path, Metric::csv(metrics, score))
}

/// What the command line does as the loop runs: a progress bar on a terminal (log lines
/// otherwise), and with a run directory the init / checkpoint / snapshot / final files and
/// metrics.csv, committing a staged run at its first checkpoint.
struct CliObserver<'a> {
    plan: &'a Plan,
    dir: Option<&'a RunDir>,
    quiet: bool,
    interactive: bool,
    bar: indicatif::ProgressBar,
    last_checkpoint: Option<u64>,
}

fn to_lib(e: anyhow::Error) -> Error {
    Error::Data(format!("{e:#}"))
}

impl Observer for CliObserver<'_> {
    fn started(&mut self, live: &Live<'_>) -> LibResult<()> {
        match self.dir {
            Some(dir) => checkpoint::save(&dir.file("init.safetensors"), &live.weights()?, HashMap::new()),
            None => Ok(()),
        }
    }

    fn stepped(&mut self, step: u64) {
        self.bar.set_position(step);
    }

    fn interrupted(&mut self) -> bool {
        crate::interrupt::requested()
    }

    fn evaluated(&mut self, live: &Live<'_>, metrics: &[Metric]) -> LibResult<()> {
        let (m, score) = (&metrics[metrics.len() - 1], self.plan.score.column());
        if self.interactive {
            self.bar.set_message(format!(
                "epoch {:.1}  train loss {:.4}  test loss {:.4}  {score} {:.4}",
                m.epoch, m.train_loss, m.test_loss, m.test_score
            ));
        } else if !self.quiet {
            eprintln!(
                "step {}/{} epoch {:.2} train_loss {:.4} test_loss {:.4} {score} {:.4} seconds {:.1}",
                m.step, self.plan.steps, m.epoch, m.train_loss, m.test_loss, m.test_score, m.seconds
            );
        }
        if let Some(dir) = self.dir {
            // the history first: a kill between the two leaves rows past the checkpoint, which a
            // resume drops and measures again, never a checkpoint whose history is missing
            write_metrics(&dir.file("metrics.csv"), metrics, self.plan.score).map_err(to_lib)?;
            live.state()?.save(&dir.file("checkpoint.safetensors"))?;
            self.last_checkpoint = Some(live.step);
            // the new run can now be resumed on its own: it replaces an old one here
            dir.commit().map_err(to_lib)?;
        }
        Ok(())
    }

    fn snapshot(&mut self, live: &Live<'_>) -> LibResult<()> {
        match self.dir {
            Some(dir) => checkpoint::save(
                &dir.file(&format!("step-{:08}.safetensors", live.step)),
                &live.weights()?,
                HashMap::new(),
            ),
            None => Ok(()),
        }
    }

    fn finished(&mut self, live: &Live<'_>) -> LibResult<()> {
        self.bar.finish_and_clear();
        match self.dir {
            Some(dir) => checkpoint::save(&dir.file("final.safetensors"), &live.weights()?, HashMap::new()),
            None => Ok(()),
        }
    }
}

/// Trains according to `plan`, writing into `dir` when given. A NaN loss stops the run with an
/// error naming the step; the last checkpoint (from the last evaluation) is kept.
pub fn train(
    gpu: &adahessian_wgpu::gpu::Gpu,
    data: &Data,
    plan: &Plan,
    dir: Option<&RunDir>,
    resume: Option<Resume>,
    quiet: bool,
) -> Result<Outcome> {
    if let Some(dir) = dir {
        crate::setup::write_file(&dir.file("model.json"), plan.spec.to_json())?;
        // the same architecture as a PyTorch module whose state_dict is final.safetensors'
        crate::setup::write_file(&dir.file("model.py"), adahessian_wgpu::nn::pytorch::model_py(&plan.spec)?)?;
    }
    let interactive = !quiet && std::io::stderr().is_terminal();
    // a progress bar on a terminal; plain log lines otherwise (files, pipes, CI)
    let bar = if interactive { indicatif::ProgressBar::new(plan.steps) } else { indicatif::ProgressBar::hidden() };
    bar.set_style(
        indicatif::ProgressStyle::with_template("  {bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(resume.as_ref().map_or(0, |r| r.0.step));
    let resumed_at = resume.as_ref().map(|r| r.0.step);
    let mut observer = CliObserver { plan, dir, quiet, interactive, bar, last_checkpoint: resumed_at };
    // Ctrl-C stops the loop after its step (the caller holds an `interrupt::Guard`), leaving the
    // run as any error does
    let outcome = match session::train(gpu, &data.train, data.test.as_ref(), plan, resume, &mut observer) {
        Ok(o) => o,
        Err(Error::Interrupted { step }) => {
            observer.bar.abandon();
            let kept = match (dir, observer.last_checkpoint) {
                (Some(dir), Some(at)) => format!(
                    "stopped after step {step}; {} keeps its checkpoint of step {at}, which `adahessian train --resume {}` continues from",
                    dir.target().display(),
                    dir.target().display()
                ),
                _ => format!("stopped after step {step}, before the run's first checkpoint"),
            };
            return Err(anyhow::Error::new(Error::Interrupted { step }).context(kept));
        }
        Err(Error::NonFinite { value, step, .. }) => {
            let kept = match (dir, observer.last_checkpoint) {
                (Some(_), Some(at)) => format!("the last good checkpoint (step {at}) is kept"),
                _ => "no checkpoint had been written".into(),
            };
            if step <= 1 {
                // the first loss is measured at the initial weights: no learning rate caused it
                bail!(
                    "the training loss was {value} at the first step, at the initial weights, before any update: the data or the model make it so, not --lr; check the inputs' and targets' scale (--normalize standard for the inputs); {kept}"
                );
            }
            bail!("the training loss became {value} at step {step}; {kept}. Lower --lr, or add --grad-clip 1.0");
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(dir) = dir {
        // the plots are a view of metrics.csv: failing to draw them (a full disk, say) must not
        // cost the run its summary
        if let Err(e) = plot_run(dir, plan.score, &outcome.metrics) {
            eprintln!(
                "warning: the plots were not written ({e:#}); the run is complete without them, and metrics.csv holds every figure they would show"
            );
        }
    }
    Ok(outcome)
}

/// loss.png/svg and accuracy.png/svg (or R²) from the metrics.
fn plot_run(dir: &RunDir, score: Score, metrics: &[Metric]) -> Result<()> {
    let series = |label: &str, f: &dyn Fn(&Metric) -> f32| Series {
        label: label.into(),
        points: metrics.iter().map(|m| (m.step as f64, f(m) as f64)).collect(),
    };
    line_chart(
        &dir.file("loss"),
        "Loss",
        "step",
        "loss",
        &[series("train", &|m| m.train_loss), series("test", &|m| m.test_loss)],
        true,
    )?;
    let (title, axis) = match score {
        Score::Accuracy => ("Test accuracy", "accuracy"),
        Score::R2 { .. } => ("Test R² (1 − MSE / variance)", "R²"),
    };
    line_chart(&dir.file("accuracy"), title, "step", axis, &[series("test", &|m| m.test_score)], false)
}

/// Writes summary.json.
pub fn write_summary(
    dir: &RunDir,
    gpu: &adahessian_wgpu::gpu::Gpu,
    plan: &Plan,
    data: &Data,
    out: &Outcome,
    argv: &[String],
) -> Result<()> {
    let score = plan.score;
    let summary = serde_json::json!({
        "task": match score { Score::Accuracy => "classify", Score::R2 { .. } => "regress" },
        score.column(): out.test.map(|t| score.of(&t)),
        "test_loss": out.test.map(|t| t.loss),
        "train_loss": out.train.loss,
        "train_accuracy": (score == Score::Accuracy).then_some(out.train.accuracy),
        "steps": out.steps,
        "seconds": out.seconds,
        "adapter": gpu.describe(),
        "parameters": out.params,
        "config": {
            "data": data.name,
            "data_decisions": data.decisions,
            "train_rows": data.train.rows(),
            "test_rows": data.test.as_ref().map_or(0, |t| t.rows()),
            "model": plan.spec.to_text(),
            "optimizer": crate::setup::config_json(&plan.config),
            "batch_size": plan.batch_size,
            "steps": plan.steps,
            "lr_schedule": format!("{:?}", plan.schedule),
            "seed": plan.seed,
            "command": argv,
        },
    });
    crate::setup::write_file(&dir.file("summary.json"), serde_json::to_string_pretty(&summary)?)
}
