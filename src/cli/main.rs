//! `adahessian`: train, compare and benchmark optimizers on the GPU you have.
//! With no arguments it runs `compare` on the bundled digits (Adam, AdaHessian, SGD).

mod bench;
mod compare;
mod curvature;
mod interrupt;
mod plot;
mod run;
mod setup;

use adahessian_wgpu::gpu::{self, Gpu, GpuOptions};
use adahessian_wgpu::session::{Plan, Schedule, Score};
use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "adahessian", version, about = "AdaHessian and friends on any GPU, through wgpu")]
struct Cli {
    /// Backend: vulkan, metal, dx12, gl or webgpu (or set ADAHESSIAN_BACKEND).
    #[arg(long, global = true)]
    backend: Option<String>,
    /// Pick the adapter whose name contains this (or set ADAHESSIAN_ADAPTER).
    #[arg(long, global = true)]
    adapter: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the GPU adapters with their backend, type and the limits that matter.
    Devices,
    /// Train one model with one optimizer and write a run directory.
    Train(TrainCmd),
    /// Train the same model, data and seeds with several optimizers and write a report of measured claims.
    Compare(compare::CompareCmd),
    /// Time training steps per optimizer (warm-up, then the median of repetitions), with ratios to Adam.
    Bench(bench::BenchCmd),
    /// Hessian spectrum of a trained model: top eigenvalues, trace, density, exact Hessian, diagonal.
    Hessian(curvature::HessianCmd),
    /// Loss landscape around a trained model's weights, with its training trajectory.
    Landscape(curvature::LandscapeCmd),
}

/// Steps, batches and schedule.
#[derive(Args, Clone, Debug)]
pub struct LoopArgs {
    /// Rows per batch, or `full` for full-batch training.
    #[arg(long, default_value = "64")]
    pub batch_size: String,
    /// Epochs (passes over the training rows; default 10); ignored when --steps is given.
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Total optimizer steps (overrides --epochs).
    #[arg(long)]
    pub steps: Option<u64>,
    /// constant, step (×0.1 at 50% and 75%) or cosine.
    #[arg(long, default_value = "constant")]
    pub lr_schedule: String,
    /// Seed of the split, the initial weights, the batch order and the probes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Evaluate on the test rows every N steps (default: every epoch).
    #[arg(long)]
    pub eval_every: Option<u64>,
}

impl LoopArgs {
    pub fn batch_size(&self, rows: usize) -> Result<usize> {
        if self.batch_size == "full" {
            return Ok(rows);
        }
        let b: usize = self
            .batch_size
            .parse()
            .with_context(|| format!("--batch-size {}: give a whole number or 'full'", self.batch_size))?;
        if b == 0 {
            bail!("--batch-size 0: a batch needs at least one row");
        }
        Ok(b.min(rows))
    }

    pub fn steps(&self, rows: usize, batch: usize) -> Result<u64> {
        let per_epoch = rows.div_ceil(batch) as u64;
        let steps = match self.steps {
            Some(s) => s,
            None => self.epochs.unwrap_or(10).checked_mul(per_epoch).filter(|s| *s <= u64::from(u32::MAX)).with_context(|| {
                format!(
                    "--epochs {}: {} × {per_epoch} steps per epoch is more steps than a run can count (at most {}); use fewer epochs",
                    self.epochs.unwrap_or(10),
                    self.epochs.unwrap_or(10),
                    u32::MAX
                )
            })?,
        };
        if steps > u64::from(u32::MAX) {
            bail!("--steps {steps}: at most {} steps", u32::MAX);
        }
        if self.eval_every == Some(0) {
            bail!("--eval-every 0: evaluate every N ≥ 1 steps (default: once an epoch)");
        }
        if steps == 0 {
            bail!("nothing to do: --steps/--epochs is 0");
        }
        Ok(steps)
    }
}

#[derive(Args, Debug)]
struct TrainCmd {
    #[command(flatten)]
    data: setup::DataArgs,
    /// mlp:64-128-10:tanh, a model text ("input 1x8x8; conv2d(8, k=3); ..."), or a model.json / run directory.
    #[arg(long)]
    model: Option<String>,
    #[command(flatten)]
    optim: setup::OptimArgs,
    #[command(flatten)]
    looping: LoopArgs,
    /// Run directory (default: runs/DATA-OPTIMIZER-seedSEED).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Overwrite a non-empty run directory.
    #[arg(long)]
    force: bool,
    /// Continue the run in this directory (same data, model and optimizer) up to the new --steps/--epochs.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Also keep the weights every N steps (step-XXXXXXXX.safetensors), for trajectories.
    #[arg(long)]
    save_every: Option<u64>,
    /// Print nothing but the final line.
    #[arg(long)]
    quiet: bool,
}

/// The data flags and seed a run directory was trained with (from its run.json).
pub fn run_data_args(dir: &std::path::Path) -> Result<(setup::DataArgs, u64)> {
    let (cmd, _) = original_train(dir)?;
    Ok((cmd.data, cmd.looping.seed))
}

fn original_train(dir: &std::path::Path) -> Result<(TrainCmd, Vec<String>)> {
    let run: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("run.json"))
            .with_context(|| format!("{}: not a run directory (no run.json)", dir.display()))?,
    )
    .with_context(|| format!("{}: run.json is corrupted", dir.display()))?;
    let mut argv: Vec<String> = run["argv"]
        .as_array()
        .context("run.json has no argv")?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    // runs written before AdaHessian's update_each had two rules used the one now called `fresh`
    // (run.json then had no "optimizer"): they resume with it, not the new default
    let before_variants = run["optimizer"]["settings"].is_null();
    for pass in 0..2 {
        let Ok(Cli { command: Some(Command::Train(cmd)), .. }) = Cli::try_parse_from(&argv) else { break };
        let o = &cmd.optim;
        let old_rule = before_variants && o.optimizer.starts_with("adahessian") && o.update_each.unwrap_or(1) > 1;
        if pass == 1 || !old_rule || o.update_each_variant.is_some() {
            return Ok((cmd, argv));
        }
        argv.extend(["--update-each-variant".to_string(), "fresh".to_string()]);
    }
    bail!("{}: run.json does not hold a train command", dir.display())
}

/// ADAHESSIAN_BACKEND / ADAHESSIAN_ADAPTER / ADAHESSIAN_KERNELS, overridden by --backend / --adapter.
fn gpu_options(cli: &Cli) -> Result<GpuOptions> {
    let mut options = GpuOptions::from_env()?;
    if let Some(b) = &cli.backend {
        options.backends = Some(gpu::parse_backend(b).map_err(|e| anyhow::anyhow!("--backend {b}: {e}"))?);
    }
    if let Some(a) = &cli.adapter {
        options.adapter = Some(a.clone());
    }
    Ok(options)
}

/// The message for "no adapter" when a backend was chosen: it names where the choice came from.
fn chosen_backend_hint(cli: &Cli) -> Option<String> {
    let (from, name) = match (&cli.backend, std::env::var(gpu::BACKEND_ENV)) {
        (Some(b), _) => ("--backend", b.clone()),
        (None, Ok(b)) if !b.is_empty() => (gpu::BACKEND_ENV, b),
        _ => return None,
    };
    Some(format!(
        "no GPU adapter on the '{name}' backend, which {from} selects; unset it to search every backend, \
         or install a driver for that backend"
    ))
}

fn open_gpu(cli: &Cli) -> Result<Gpu> {
    match Gpu::new_blocking(gpu_options(cli)?) {
        Err(adahessian_wgpu::Error::NoAdapter { .. }) if chosen_backend_hint(cli).is_some() => {
            bail!("{}", chosen_backend_hint(cli).unwrap_or_default())
        }
        other => Ok(other?),
    }
}

/// Flags a resumed run may change (recorded in run.json); every other flag of the original
/// command stays as the run was started.
const RESUME_MAY_CHANGE: [&str; 3] = ["--lr", "--grad-clip", "--lr-schedule"];

/// Removes every occurrence of `flag` (`--flag value` or `--flag=value`) from `args`.
fn remove_flag(args: &mut Vec<String>, flag: &str) {
    let mut i = 0;
    while i < args.len() {
        if args[i] == flag {
            args.drain(i..(i + 2).min(args.len()));
        } else if args[i].starts_with(&format!("{flag}=")) {
            args.remove(i);
        } else {
            i += 1;
        }
    }
}

/// `flag`'s tokens as given on this command line (`--flag value` or `--flag=value`).
fn flag_tokens(args: &[String], flag: &str) -> Option<Vec<String>> {
    let i = args.iter().position(|a| a == flag || a.starts_with(&format!("{flag}=")))?;
    Some(if args[i] == flag { args[i..(i + 2).min(args.len())].to_vec() } else { vec![args[i].clone()] })
}

fn train_cmd(cli: &Cli, cmd: &TrainCmd, argv: &[String]) -> Result<()> {
    // --resume re-reads the original command from the run directory: the new length counts, and
    // lr, gradient clipping and the schedule may change; any other flag would contradict the run
    if let Some(dir) = &cmd.resume {
        let (_, mut original) = original_train(dir).map_err(|e| anyhow::anyhow!("--resume {e}"))?;
        let after_train = argv.iter().position(|a| a == "train").map_or(&argv[..0], |i| &argv[i + 1..]);
        for token in after_train.iter().filter(|a| a.starts_with("--")) {
            let name = token.split('=').next().unwrap_or(token);
            if !["--resume", "--steps", "--epochs", "--quiet"].contains(&name) && !RESUME_MAY_CHANGE.contains(&name) {
                bail!(
                    "--resume continues {} with the settings it was started with, so {name} cannot be given (the run's command is in its run.json); \
                     --steps/--epochs, {} may change; start a new run (--out) to change anything else",
                    dir.display(),
                    RESUME_MAY_CHANGE.join(", ")
                );
            }
        }
        let mut changes = Vec::new();
        for flag in RESUME_MAY_CHANGE {
            if let Some(tokens) = flag_tokens(after_train, flag) {
                remove_flag(&mut original, flag);
                changes.push(tokens.join(" "));
                original.extend(tokens);
            }
        }
        let (flag, value) = match (cmd.looping.steps, cmd.looping.epochs) {
            (Some(steps), _) => ("--steps", steps),
            (None, Some(epochs)) => ("--epochs", epochs),
            (None, None) => bail!("--resume: say how long the whole run should be, with --steps or --epochs"),
        };
        for old in ["--steps", "--epochs"] {
            if let Some(i) = original.iter().position(|a| a == old) {
                original.drain(i..(i + 2).min(original.len()));
            }
        }
        original.extend([flag.to_string(), value.to_string()]);
        let Ok(Cli { command: Some(Command::Train(orig)), .. }) = Cli::try_parse_from(&original) else {
            bail!("--resume {}: the stored command no longer parses", dir.display());
        };
        let state = run::load_resume(dir)?;
        return train_with(cli, &orig, &original, Some(dir.clone()), Some((state, changes)));
    }
    train_with(cli, cmd, argv, None, None)
}

fn train_with(
    cli: &Cli,
    cmd: &TrainCmd,
    argv: &[String],
    resume_dir: Option<PathBuf>,
    resume: Option<(run::Resume, Vec<String>)>,
) -> Result<()> {
    let seed = cmd.looping.seed;
    let data = cmd.data.load(seed)?;
    let plan = train_plan(cmd, &data)?;
    // a resume that would be refused must be refused before anything is written: run.json would
    // otherwise keep the refused flags (an --lr that the next plain --resume then trains with)
    if let Some(((state, _), _)) = &resume {
        if state.step >= plan.steps {
            bail!(
                "--resume {}: the run already has {} steps; ask for more with --steps or --epochs (nothing was changed)",
                out_dir_name(&resume_dir),
                state.step
            );
        }
    }
    let out = match (&resume_dir, &cmd.out) {
        (Some(d), _) => d.clone(),
        (None, Some(o)) => o.clone(),
        (None, None) => {
            PathBuf::from(format!("runs/{}-{}-seed{seed}", data.name.replace([':', '/', ','], "_"), plan.config.name()))
        }
    };
    // from before the run directory exists to the end of the loop, Ctrl-C asks the loop to stop
    // after its step (`interrupt`) instead of ending the process mid-write
    let _interrupt = interrupt::Guard::install();
    let dir = if resume_dir.is_some() { run::RunDir::resume(&out)? } else { run::RunDir::create(&out, cmd.force)? };
    let gpu = open_gpu(cli)?;
    if !cmd.quiet {
        eprintln!("adapter: {}", gpu.describe());
        eprintln!(
            "{}: {} train / {} test rows; {} parameters; {} for {} steps of batch {}",
            data.name,
            data.train.rows(),
            data.test.as_ref().map_or(0, |t| t.rows()),
            plan.spec.resolve()?.n_params,
            plan.config.name(),
            plan.steps,
            plan.batch_size
        );
    }
    write_run_record(&dir, cmd, argv, &data, &plan, resume.as_ref().map(|(s, c)| (s.0.step, c.as_slice())))?;
    let fresh = resume_dir.is_none();
    let outcome = match run::train(&gpu, &data, &plan, Some(&dir), resume.map(|(state, _)| state), cmd.quiet) {
        Ok(o) => o,
        Err(e) => {
            // a new run that failed before its first checkpoint leaves nothing worth keeping (and
            // an old run it was to replace stays as it was)
            if fresh && !dir.file("checkpoint.safetensors").exists() {
                let kept = dir.abandon();
                let what = if interrupted(&e) { "was stopped" } else { "failed" };
                return Err(e.context(format!("the run {what} before its first checkpoint; {kept}")));
            }
            return Err(e);
        }
    };
    run::write_summary(&dir, &gpu, &plan, &data, &outcome, argv)?;
    println!(
        "{}: {} {}, test loss {}, train loss {:.4}, {} steps in {:.1}s -> {}",
        plan.config.name(),
        plan.score.column().replace('_', " "),
        outcome.test.map_or("n/a".into(), |t| format!("{:.4}", plan.score.of(&t))),
        outcome.test.map_or("n/a".into(), |t| format!("{:.4}", t.loss)),
        outcome.train.loss,
        outcome.steps,
        outcome.seconds,
        dir.path().display()
    );
    Ok(())
}

/// The run's plan from the train flags, with the model checked against the data.
fn train_plan(cmd: &TrainCmd, data: &setup::Data) -> Result<Plan> {
    let seed = cmd.looping.seed;
    let spec = match &cmd.model {
        Some(m) => setup::model_for(m, data)?,
        None => setup::default_model(data),
    };
    let model = spec.resolve()?;
    if model.nodes[0] != data.train.features {
        bail!(
            "the model's input has {} features but the data has {} per row; change --model (e.g. mlp:{}-64-{}:relu)",
            model.nodes[0],
            data.train.features,
            data.train.features,
            data.train.classes().max(1)
        );
    }
    let batch_size = cmd.looping.batch_size(data.train.rows())?;
    let per_epoch = data.train.rows().div_ceil(batch_size) as u64;
    Ok(Plan {
        spec,
        config: cmd.optim.config(seed)?,
        batch_size,
        steps: cmd.looping.steps(data.train.rows(), batch_size)?,
        schedule: Schedule::parse(&cmd.looping.lr_schedule)?,
        seed,
        eval_every: cmd.looping.eval_every.unwrap_or(per_epoch).max(1),
        save_every: match cmd.save_every {
            Some(0) => bail!("--save-every 0: keep the weights every N ≥ 1 steps"),
            other => other,
        },
        target_accuracy: None,
        score: Score::for_split(data.test.as_ref().unwrap_or(&data.train)),
    })
}

fn out_dir_name(dir: &Option<PathBuf>) -> String {
    dir.as_ref().map_or_else(String::new, |d| d.display().to_string())
}

/// run.json (the command line first, so a run stopped by a NaN can still be resumed; the data's
/// fingerprint, which a resume must match; the optimizer's settings; the history of changes made
/// on resuming) and classes.json when the file's labels were mapped to class indices.
fn write_run_record(
    dir: &run::RunDir,
    cmd: &TrainCmd,
    argv: &[String],
    data: &setup::Data,
    plan: &Plan,
    resumed: Option<(u64, &[String])>,
) -> Result<()> {
    let fingerprint = run::data_fingerprint(data);
    let mut record =
        serde_json::json!({ "argv": argv, "data": fingerprint, "optimizer": setup::config_json(&plan.config) });
    if let Some((at_step, changes)) = resumed {
        let old: serde_json::Value = std::fs::read_to_string(dir.file("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        if let Some(before) = old.get("data").filter(|d| **d != fingerprint) {
            bail!(
                "--resume {}: the data is not the data the run was trained on (then {before}, now {fingerprint}); \
                 relative paths are read from the current directory, so resume from the directory the run was started in",
                dir.path().display()
            );
        }
        let mut resumes = old.get("resumes").cloned().unwrap_or_else(|| serde_json::json!([]));
        if let Some(list) = resumes.as_array_mut() {
            list.push(serde_json::json!({ "at_step": at_step, "changed": changes }));
        }
        record["resumes"] = resumes;
        if !changes.is_empty() && !cmd.quiet {
            eprintln!("resuming at step {at_step} with {} (recorded in run.json)", changes.join(", "));
        }
    }
    setup::write_file(&dir.file("run.json"), serde_json::to_string(&record)?)?;
    let names = &data.train.class_names;
    if !names.is_empty() {
        // the file's labels were mapped to class indices: say how, in the run and on the terminal
        let mapping: Vec<serde_json::Value> =
            names.iter().enumerate().map(|(i, n)| serde_json::json!({ "class": i, "label": n })).collect();
        setup::write_file(&dir.file("classes.json"), serde_json::to_string_pretty(&mapping)?)?;
        if !cmd.quiet {
            let shown: Vec<String> = names.iter().take(6).enumerate().map(|(i, n)| format!("'{n}' → {i}")).collect();
            let more = if names.len() > 6 { format!(", … ({} classes)", names.len()) } else { String::new() };
            eprintln!("labels: {}{more} (classes.json)", shown.join(", "));
        }
    }
    Ok(())
}

fn devices(cli: &Cli) -> Result<()> {
    let options = gpu_options(cli)?;
    let mut list = gpu::list_adapters(options.backends);
    if let (true, Some(hint)) = (list.is_empty(), chosen_backend_hint(cli)) {
        bail!("{hint}");
    }
    if list.is_empty() {
        bail!(
            "no GPU adapter found; install a GPU driver (on Linux without a GPU: apt-get install mesa-vulkan-drivers)"
        );
    }
    if let Some(wanted) = &options.adapter {
        let names: Vec<String> = list.iter().map(|(info, _)| info.name.clone()).collect();
        list.retain(|(info, _)| info.name.to_ascii_lowercase().contains(&wanted.to_ascii_lowercase()));
        if list.is_empty() {
            bail!(
                "no adapter's name contains '{wanted}' (--adapter / ADAHESSIAN_ADAPTER); there are: {}",
                names.join(", ")
            );
        }
    }
    for (info, limits) in list {
        println!("{}", gpu::describe(&info));
        println!(
            "    max buffer {} MiB, max storage binding {} MiB, {} storage buffers per stage, {} invocations per workgroup, {} KiB workgroup memory",
            limits.max_buffer_size >> 20,
            limits.max_storage_buffer_binding_size >> 20,
            limits.max_storage_buffers_per_shader_stage,
            limits.max_compute_invocations_per_workgroup,
            limits.max_compute_workgroup_storage_size >> 10
        );
    }
    println!("(devices are opened with WebGPU's default limits, so runs here also run in a browser; ADAHESSIAN_LIMITS=adapter opens them with the adapter's own)");
    Ok(())
}

/// Mesa's device-select Vulkan layer probes Wayland when it loads, and without a session
/// (XDG_RUNTIME_DIR unset: a server, a container, CI) that prints two lines starting "error:"
/// on every run, which read as this tool's errors. The layer only reorders GPUs for the default
/// choice, and adapters are chosen here by ADAHESSIAN_ADAPTER / power preference, so headless runs
/// switch it off (NODEVICE_SELECT is Mesa's own switch; set it yourself to override).
fn quiet_headless_vulkan_layers() {
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() && std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() {
    quiet_headless_vulkan_layers();
    let argv: Vec<String> = std::env::args().collect();
    let cli = Cli::parse();
    let result = match &cli.command {
        None => compare::run(&cli_gpu(&cli), &compare::CompareCmd::default_job(), true),
        Some(Command::Devices) => devices(&cli),
        Some(Command::Train(cmd)) => train_cmd(&cli, cmd, &argv),
        Some(Command::Compare(cmd)) if cmd.recipe().is_some() => {
            with_recipe(&argv).and_then(|cmd| compare::run(&cli_gpu(&cli), &cmd, false))
        }
        Some(Command::Compare(cmd)) => compare::run(&cli_gpu(&cli), cmd, false),
        Some(Command::Bench(cmd)) => bench::run(&cli_gpu(&cli), cmd),
        Some(Command::Hessian(cmd)) => curvature::hessian(&cli_gpu(&cli), cmd),
        Some(Command::Landscape(cmd)) => curvature::landscape_cmd(&cli_gpu(&cli), cmd),
    };
    if let Err(e) = result {
        // a cause that its context already quotes (an I/O error shown after its path) is said once
        let mut line = String::new();
        for cause in e.chain().map(|c| c.to_string()) {
            if line.is_empty() {
                line = cause;
            } else if !line.ends_with(&cause) {
                line = format!("{line}: {cause}");
            }
        }
        eprintln!("error: {line}");
        // 128 + SIGINT, as a shell reports a process that Ctrl-C ended
        std::process::exit(if interrupted(&e) { 130 } else { 1 });
    }
}

/// Whether `e` is a training loop stopped by Ctrl-C or SIGTERM (`interrupt`).
fn interrupted(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| matches!(c.downcast_ref::<adahessian_wgpu::Error>(), Some(adahessian_wgpu::Error::Interrupted { .. })))
}

/// `compare --recipe NAME`: the command line again with the recipe's flags inserted right after
/// `compare`, so every flag the user gave still wins over the recipe's.
fn with_recipe(argv: &[String]) -> anyhow::Result<compare::CompareCmd> {
    use clap::{CommandFactory, FromArgMatches};
    let at = argv.iter().position(|a| a == "compare").context("--recipe belongs to compare")?;
    let recipe_name = argv
        .iter()
        .position(|a| a == "--recipe")
        .and_then(|i| argv.get(i + 1).cloned())
        .or_else(|| argv.iter().find_map(|a| a.strip_prefix("--recipe=").map(String::from)))
        .unwrap_or_default();
    let flags = compare::recipe_flags(&recipe_name)?;
    let mut full: Vec<String> = argv[..=at].to_vec();
    full.extend(flags.iter().map(|f| f.to_string()));
    full.extend(argv[at + 1..].iter().cloned());
    let command = Cli::command().mut_subcommand("compare", |c| c.args_override_self(true));
    let matches = command.try_get_matches_from(&full)?;
    match Cli::from_arg_matches(&matches)?.command {
        Some(Command::Compare(cmd)) => Ok(cmd),
        _ => anyhow::bail!("--recipe belongs to compare"),
    }
}

/// Opens the GPU lazily: commands parse and check their arguments before the device is opened.
pub struct LazyGpu<'a> {
    cli: &'a Cli,
    gpu: std::cell::OnceCell<Gpu>,
}

impl LazyGpu<'_> {
    pub fn get(&self) -> Result<&Gpu> {
        if let Some(g) = self.gpu.get() {
            return Ok(g);
        }
        let g = open_gpu(self.cli)?;
        Ok(self.gpu.get_or_init(|| g))
    }
}

fn cli_gpu(cli: &Cli) -> LazyGpu<'_> {
    LazyGpu { cli, gpu: std::cell::OnceCell::new() }
}
