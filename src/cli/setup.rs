//! Turning command-line flags into a data set, a model and an optimizer configuration, with
//! errors that name the flag and the fix.

use adahessian_wgpu::data::{self, csv::Task, synthetic::Synthetic, Dataset};
use adahessian_wgpu::nn::{Activation, Loss, ModelSpec};
use adahessian_wgpu::optim::OptimizerConfig;
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::Path;

/// Where the data comes from and how it is split.
#[derive(Args, Clone, Debug)]
pub struct DataArgs {
    /// digits | mnist10k | circle | xor | gauss | spiral | moons | spiral3 | blobs4 | csv:PATH | idx:IMAGES,LABELS | cifar10:DIR | cifar100:DIR (the binary versions) | random:CxHxW[:CLASSES] (N(0,1) pixels, random labels: timing data)
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// Gaussian noise (std) of the synthetic 2-D sets.
    /// Gaussian noise (std) of the synthetic 2-D sets [default: 0.2].
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Points in a synthetic 2-D set or a random:... set [default: 500].
    #[arg(long)]
    pub samples: Option<usize>,
    /// CSV target column, by header name or 0-based index (default: the last column); for
    /// cifar100: fine (100 classes, the default) or coarse (20 superclasses).
    #[arg(long)]
    pub target: Option<String>,
    /// CSV task: classify or regress [default: classify].
    #[arg(long)]
    pub task: Option<String>,
    /// CSV header row: auto (a header when a column holds a name over numbers), yes or no
    /// [default: auto].
    #[arg(long)]
    pub header: Option<String>,
    /// CSV field delimiter: auto (the most frequent of , ; and tab in the first line), or one
    /// character such as ';' or 'tab' [default: auto].
    #[arg(long)]
    pub delimiter: Option<String>,
    /// Fraction of rows held out for testing (0: train on everything) [default: 0.2; CIFAR
    /// keeps its official test split].
    #[arg(long, allow_negative_numbers = true)]
    pub test_fraction: Option<f64>,
    /// Normalisation fitted on the training rows: none, standard (per feature) or channel (per
    /// image channel) [default: channel for CIFAR, none otherwise].
    #[arg(long)]
    pub normalize: Option<String>,
    /// Augmentation of training batches of images: crop4 (random crop after 4-pixel zero
    /// padding) and/or flip (random horizontal flip), e.g. crop4,flip; seeded and resumable.
    #[arg(long)]
    pub augment: Option<String>,
}

/// A data set as it comes: one table to split, or (CIFAR) the official train and test splits.
enum Loaded {
    One(Dataset),
    Split(Dataset, Dataset),
}

/// The split data plus what it is.
pub struct Data {
    pub name: String,
    /// What loading decided that the user did not say (a CSV's header and delimiter).
    pub decisions: Vec<String>,
    pub train: Dataset,
    pub test: Option<Dataset>,
}

impl DataArgs {
    /// A data set that comes as one table (split by --test-fraction afterwards).
    fn load_one(&self, seed: u64, samples: usize, decisions: &mut Vec<String>) -> Result<Dataset> {
        let ds = if self.data == "digits" {
            data::digits()?
        } else if self.data == "mnist10k" {
            data::mnist10k()?
        } else if let Some(s) = Synthetic::parse(&self.data) {
            s.generate(samples, self.noise.unwrap_or(0.2), seed)?
        } else if let Some(path) = self.data.strip_prefix("csv:") {
            let task = match self.task.as_deref().unwrap_or("classify") {
                "classify" => Task::Classify,
                "regress" => Task::Regress,
                other => bail!("--task {other}: use classify or regress"),
            };
            let header = match self.header.as_deref().unwrap_or("auto") {
                "auto" => data::csv::Header::Auto,
                "yes" => data::csv::Header::Yes,
                "no" => data::csv::Header::No,
                other => bail!("--header {other}: use auto, yes or no"),
            };
            let delimiter = match self.delimiter.as_deref().unwrap_or("auto") {
                "auto" => None,
                "tab" | "\\t" | "\t" => Some(b'\t'),
                d if d.len() == 1 && d.is_ascii() => Some(d.as_bytes()[0]),
                other => bail!("--delimiter {other}: give one character such as ',' or ';', 'tab', or auto"),
            };
            let options = data::csv::Options { target: self.target.as_deref(), task, header, delimiter };
            let parsed = data::csv::load_options(Path::new(path), &options)?;
            let shown =
                if parsed.delimiter == b'\t' { "tab".to_string() } else { (parsed.delimiter as char).to_string() };
            decisions.push(format!(
                "{}; delimiter '{shown}'{}",
                if parsed.has_header { "the first row is a header" } else { "no header row: the first row is data" },
                if delimiter.is_none() { " (detected)" } else { "" }
            ));
            if header == data::csv::Header::Auto || delimiter.is_none() {
                eprintln!("csv: {} (--header, --delimiter to say otherwise)", decisions.join("; "));
            }
            parsed.dataset
        } else if let Some(rest) = self.data.strip_prefix("random:") {
            random_images(rest, samples, seed)?
        } else if let Some(paths) = self.data.strip_prefix("idx:") {
            let (images, labels) =
                paths.split_once(',').context("--data idx:IMAGES,LABELS needs two paths separated by a comma")?;
            data::idx::load(Path::new(images), Path::new(labels))?
        } else {
            bail!(
                "unknown data set '{}'; use digits, mnist10k, circle, xor, gauss, spiral, moons, spiral3, blobs4, csv:PATH, idx:IMAGES,LABELS, cifar10:DIR, cifar100:DIR or random:CxHxW[:CLASSES]",
                self.data
            )
        };
        Ok(ds)
    }

    /// `cifar10:DIR` / `cifar100:DIR` with `--target fine|coarse`.
    fn cifar(&self) -> Result<Option<(data::cifar::Cifar, &str)>> {
        use data::cifar::Cifar;
        if let Some(dir) = self.data.strip_prefix("cifar10:") {
            return Ok(Some((Cifar::Ten, dir)));
        }
        let Some(dir) = self.data.strip_prefix("cifar100:") else { return Ok(None) };
        let coarse = match self.target.as_deref().unwrap_or("fine") {
            "fine" => false,
            "coarse" => true,
            other => bail!("--target {other}: CIFAR-100 has fine (100 classes) or coarse (20 superclasses) labels"),
        };
        Ok(Some((Cifar::Hundred { coarse }, dir)))
    }

    /// A flag that the chosen data has no use for is refused, not silently ignored (as
    /// non-applicable optimizer flags are): `--task regress` on digits would otherwise train a
    /// classifier while the user believes it regresses.
    fn refuse_flags_that_do_not_apply(&self) -> Result<()> {
        let csv = self.data.starts_with("csv:");
        let cifar = self.data.starts_with("cifar10:") || self.data.starts_with("cifar100:");
        let images = cifar
            || matches!(self.data.as_str(), "digits" | "mnist10k")
            || self.data.starts_with("idx:")
            || self.data.starts_with("random:");
        let synthetic = Synthetic::parse(&self.data).is_some();
        let random = self.data.starts_with("random:");
        let given = [
            ("--target", self.target.is_some(), csv || self.data.starts_with("cifar100:"), "csv:PATH and cifar100:DIR"),
            (
                "--test-fraction",
                self.test_fraction.is_some(),
                !cifar,
                "data without an official test split (CIFAR keeps its own)",
            ),
            ("--augment", self.augment.is_some(), images, "image data"),
            ("--task", self.task.is_some(), csv, "csv:PATH"),
            ("--header", self.header.is_some(), csv, "csv:PATH"),
            ("--delimiter", self.delimiter.is_some(), csv, "csv:PATH"),
            ("--noise", self.noise.is_some(), synthetic, "the synthetic 2-D sets"),
            ("--samples", self.samples.is_some(), synthetic || random, "the synthetic 2-D sets and random:..."),
        ];
        for (flag, is_given, applies, to) in given {
            if is_given && !applies {
                bail!("{flag} does not apply to --data {}: it is for {to}; remove it", self.data);
            }
        }
        Ok(())
    }

    /// The share of a one-table data set's rows held out for testing (--test-fraction).
    pub fn test_fraction_or_default(&self) -> f64 {
        self.test_fraction.unwrap_or(0.2)
    }

    /// The fewest rows of a one-table data set that keep `train_rows` after the test split
    /// (`Dataset::split` holds out `round(rows * fraction)`); None when no count does.
    pub fn rows_keeping(&self, train_rows: usize) -> Option<usize> {
        let fraction = self.test_fraction_or_default();
        (0.0..1.0).contains(&fraction).then_some(())?;
        (train_rows..).find(|&n| n - (n as f64 * fraction).round() as usize >= train_rows)
    }

    /// Loads, splits (seeded) and normalises.
    pub fn load(&self, seed: u64) -> Result<Data> {
        self.refuse_flags_that_do_not_apply()?;
        let mut decisions = Vec::new();
        let samples = self.samples.unwrap_or(500);
        let ds = if let Some((kind, dir)) = self.cifar()? {
            let (train, test) = data::cifar::load(Path::new(dir), kind)?;
            Loaded::Split(train, test)
        } else {
            Loaded::One(self.load_one(seed, samples, &mut decisions)?)
        };
        let (mut train, mut test) = match ds {
            Loaded::Split(train, test) => (train, test),
            Loaded::One(ds) => {
                let test_fraction = self.test_fraction_or_default();
                if !(0.0..1.0).contains(&test_fraction) {
                    bail!("--test-fraction {test_fraction}: the test fraction must be in [0, 1)");
                }
                let (train, test) = ds.split(test_fraction, seed)?;
                if train.rows() == 0 {
                    bail!(
                        "--test-fraction {test_fraction} leaves no training rows of the {} in {}; use a smaller fraction",
                        ds.rows(),
                        self.data
                    );
                }
                (train, test)
            }
        };
        let cifar = self.data.starts_with("cifar10:") || self.data.starts_with("cifar100:");
        let mut fill = vec![0.0f32; train.shape.first().copied().unwrap_or(1)];
        match self.normalize.as_deref().unwrap_or(if cifar { "channel" } else { "none" }) {
            "none" => {}
            "standard" => {
                let (mean, std) = train.feature_stats();
                train.normalize(&mean, &std);
                test.normalize(&mean, &std);
            }
            "channel" => {
                if train.shape.len() != 3 {
                    bail!(
                        "--normalize channel needs images ([C, H, W] rows); this data has rows of shape {:?}",
                        train.shape
                    );
                }
                let (mean, std) = data::cifar::channel_stats(&train);
                data::cifar::normalize_channels(&mut train, &mean, &std);
                data::cifar::normalize_channels(&mut test, &mean, &std);
                let shown = |v: &[f32]| v.iter().map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
                let line = format!(
                    "per-channel normalisation from the {} training images: mean ({}), std ({}) (--normalize none for pixel/255)",
                    train.rows(),
                    shown(&mean),
                    shown(&std)
                );
                // once per process (compare loads the data for every seed)
                static SAID: std::sync::Once = std::sync::Once::new();
                SAID.call_once(|| eprintln!("data: {line}"));
                decisions.push(line);
                fill = mean.iter().zip(&std).map(|(m, s)| -m / s).collect();
            }
            other => bail!("--normalize {other}: use none, standard or channel"),
        }
        if let Some(text) = &self.augment {
            let mut aug = data::cifar::Augment::parse(text, &train.shape)?;
            if aug.fill.len() == fill.len() {
                aug.fill = fill;
            }
            decisions.push(format!("training batches augmented: {text}"));
            train.augment = Some(aug);
        }
        let test = (test.rows() > 0).then_some(test);
        Ok(Data { name: self.data.clone(), train, test, decisions })
    }
}

/// A sensible default model for a data set.
pub fn default_model(data: &Data) -> ModelSpec {
    let ds = &data.train;
    let outputs = if ds.classes() > 0 { ds.classes() } else { ds.targets.width() };
    let loss = if ds.classes() > 0 { "" } else { ":mse" };
    let text = match data.name.as_str() {
        "digits" => "mlp:64-64-10:tanh".to_string(),
        _ if ds.shape.len() == 3 => format!(
            "input {}x{}x{}; conv2d(8, k=3, p=1); relu; maxpool2d(2); conv2d(16, k=3, p=1); relu; maxpool2d(2); flatten; linear({outputs})",
            ds.shape[0], ds.shape[1], ds.shape[2]
        ),
        _ if ds.features == 2 => format!("mlp:2-16-16-{outputs}:tanh{loss}"),
        _ => format!("mlp:{}-64-{outputs}:relu{loss}", ds.features),
    };
    ModelSpec::parse(&text)
        .unwrap_or_else(|_| ModelSpec::mlp(&[ds.features, outputs], Activation::Relu, Loss::CrossEntropy))
}

/// The loss that fits the data when a model names none: cross-entropy for class labels, MSE for
/// real-valued (regression) targets.
pub fn task_loss(data: &Data) -> Loss {
    if data.train.classes() > 0 {
        Loss::CrossEntropy
    } else {
        Loss::Mse
    }
}

/// `random:CxHxW[:CLASSES]` (or `random:F[:CLASSES]`): `rows` rows of N(0, 1) pixels with
/// uniformly random labels (10 classes by default), seeded: data of a shape, with no signal, for
/// timing and memory (`bench --data random:3x32x32 --model resnet20`).
fn random_images(spec: &str, rows: usize, seed: u64) -> Result<adahessian_wgpu::data::Dataset> {
    let (shape, classes) = match spec.split_once(':') {
        Some((s, k)) => {
            (s, k.parse::<usize>().with_context(|| format!("random:{spec}: classes '{k}' is not a whole number"))?)
        }
        None => (spec, 10),
    };
    let shape: Vec<usize> = shape
        .split('x')
        .map(|d| d.parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<Vec<_>>>()
        .filter(|s| s.len() == 1 || s.len() == 3)
        .with_context(|| format!("random:{spec}: give a shape CxHxW or F of whole numbers > 0, e.g. random:3x32x32"))?;
    if classes < 2 {
        bail!("random:{spec}: at least 2 classes");
    }
    let features: usize = shape.iter().product();
    if rows.saturating_mul(features) > 1 << 28 {
        bail!("random:{spec}: {rows} rows of {features} values is more than 2^28 floats; lower --samples");
    }
    let mut rng = adahessian_wgpu::probe::SplitMix64::new(seed ^ 0x5EED);
    let x: Vec<f32> = (0..rows * features).map(|_| rng.normal() as f32).collect();
    let labels = (0..rows).map(|_| rng.below(classes) as u32).collect();
    Ok(adahessian_wgpu::data::Dataset::new(x, features, adahessian_wgpu::data::Targets::Classes { labels, classes })?
        .with_shape(shape)?)
}

/// Reads `--model` for this data: a ResNet preset (`resnet20`, `resnet:DEPTH[:WIDTH[:noshort|:nobn|:proj]]`,
/// shaped for the data's images and classes), or whatever [`parse_model`] reads.
pub fn model_for(arg: &str, data: &Data) -> Result<ModelSpec> {
    let images = if data.train.shape.len() == 3 { data.train.shape.clone() } else { Vec::new() };
    if let Some(spec) = adahessian_wgpu::nn::parse_resnet(arg, &images, data.train.classes()) {
        if images.is_empty() {
            bail!(
                "--model {arg}: a ResNet needs image data ([channels, height, width]), but {} has flat rows",
                data.name
            );
        }
        if data.train.classes() < 2 {
            bail!("--model {arg}: a ResNet classifies; {} is not a classification data set", data.name);
        }
        return Ok(spec?);
    }
    // a model text without an `input` line takes the data's shape, as the presets do
    let is_text = !Path::new(arg).exists()
        && !arg.trim_start().starts_with('{')
        && !arg.starts_with("mlp:")
        && !looks_like_a_path(arg);
    let has_input =
        arg.split(['\n', ';']).any(|statement| statement.split('#').next().unwrap_or("").trim().starts_with("input"));
    if is_text && !has_input {
        let shape: Vec<String> = data.train.shape.iter().map(|d| d.to_string()).collect();
        let with_input = format!("input {}\n{arg}", shape.join("x"));
        return ModelSpec::parse_with_default_loss(&with_input, task_loss(data))
            .with_context(|| format!("--model {arg} (its input {} is the data's)", shape.join("x")));
    }
    parse_model(arg, task_loss(data))
}

/// Reads `--model`: a file written by a previous run (model.json), the text form, or `mlp:...`;
/// `default_loss` when it names no loss ([`task_loss`]).
pub fn parse_model(arg: &str, default_loss: Loss) -> Result<ModelSpec> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading the model file {arg}"))?;
        return ModelSpec::parse_with_default_loss(&text, default_loss)
            .with_context(|| format!("in the model file {arg}"));
    }
    if path.is_dir() && path.join("model.json").is_file() {
        return parse_model(&path.join("model.json").display().to_string(), default_loss);
    }
    if path.is_dir() {
        bail!("--model {arg}: the directory has no model.json (give a run directory, a model file or a model text)");
    }
    if looks_like_a_path(arg) {
        bail!("--model {arg}: no such file (give a model file, a run directory, mlp:... or a model text)");
    }
    Ok(ModelSpec::parse_with_default_loss(arg, default_loss)?)
}

/// A `--model` argument that is not there but reads as a path (a separator or a dot, no layer
/// syntax): it is reported as a missing file, which reads better than an unknown layer.
fn looks_like_a_path(arg: &str) -> bool {
    !arg.trim_start().starts_with('{')
        && !arg.starts_with("mlp:")
        && !arg.contains(['(', ';', '\n'])
        && (arg.contains(std::path::MAIN_SEPARATOR) || arg.contains('/') || arg.contains('.'))
}

/// The --optimizer help: every registered name, so a new method shows up by itself.
fn optimizer_help() -> String {
    format!(
        "{}, optionally with settings: \"adamw(lr=3e-4, beta2=0.95)\"; the flags below override them",
        OptimizerConfig::names().join(" | ")
    )
}

/// Every optimizer hyper-parameter; unset ones keep the method's published default.
#[derive(Args, Clone, Debug, Default)]
pub struct OptimArgs {
    #[arg(long, default_value = "adahessian", help = optimizer_help())]
    pub optimizer: String,
    /// Learning rate (default: the method's).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f32>,
    /// β1.
    #[arg(long, allow_negative_numbers = true)]
    pub beta1: Option<f32>,
    /// β2.
    #[arg(long, allow_negative_numbers = true)]
    pub beta2: Option<f32>,
    /// ε added to the denominator.
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f32>,
    /// Weight decay (L2 for sgd/adam, decoupled for adamw/adahessian/sophia-h).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f32>,
    /// SGD momentum.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f32>,
    /// SGD dampening.
    #[arg(long, allow_negative_numbers = true)]
    pub dampening: Option<f32>,
    /// SGD Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// AdaHessian hessian power k in [0, 1].
    #[arg(long, allow_negative_numbers = true)]
    pub hessian_power: Option<f32>,
    /// New curvature estimate every N steps (AdaHessian, Sophia-H).
    #[arg(long)]
    pub update_each: Option<u32>,
    /// Probes per curvature estimate.
    #[arg(long)]
    pub n_samples: Option<u32>,
    /// AdaHessian: average |Hz| over each Dense weight row.
    #[arg(long)]
    pub average_dense: bool,
    /// AdaHessian: do not average |Hz| over conv kernel windows.
    #[arg(long)]
    pub no_average_conv: bool,
    /// Probe distribution: rademacher or gaussian.
    #[arg(long)]
    pub probe: Option<String>,
    /// AdaHessian with --update-each > 1: fold (davda54/timm, the default: the last estimate
    /// enters v at every step) or fresh (v changes only with a new estimate).
    #[arg(long)]
    pub update_each_variant: Option<String>,
    /// Sophia-H γ.
    #[arg(long, allow_negative_numbers = true)]
    pub gamma: Option<f32>,
    /// Clip the global gradient norm to this.
    #[arg(long, allow_negative_numbers = true)]
    pub grad_clip: Option<f32>,
}

impl OptimArgs {
    /// The configuration for `self.optimizer` with the flags applied, validated.
    pub fn config(&self, seed: u64) -> Result<OptimizerConfig> {
        let name = self.optimizer.as_str();
        self.config_for(name, seed)
    }

    /// The configuration for a given optimizer name with the flags applied.
    pub fn config_for(&self, name: &str, seed: u64) -> Result<OptimizerConfig> {
        let mut c = OptimizerConfig::parse(name)?;
        let num = |v: Option<f32>| v.map(|v| v.to_string());
        // every method-specific flag as (flag, setting, value if given): a flag given to a method
        // that has no such setting is refused, never silently ignored
        let flags: [(&str, &str, Option<String>); 14] = [
            ("--lr", "lr", num(self.lr)),
            ("--weight-decay", "weight_decay", num(self.weight_decay)),
            ("--momentum", "momentum", num(self.momentum)),
            ("--dampening", "dampening", num(self.dampening)),
            ("--nesterov", "nesterov", self.nesterov.then(|| "true".into())),
            ("--beta1", "beta1", num(self.beta1)),
            ("--beta2", "beta2", num(self.beta2)),
            ("--eps", "eps", num(self.eps)),
            ("--hessian-power", "hessian_power", num(self.hessian_power)),
            ("--average-dense", "average_dense", self.average_dense.then(|| "true".into())),
            ("--no-average-conv", "average_conv", self.no_average_conv.then(|| "false".into())),
            ("--update-each", "update_each", self.update_each.map(|v| v.to_string())),
            ("--n-samples", "n_samples", self.n_samples.map(|v| v.to_string())),
            ("--gamma", "gamma", num(self.gamma)),
        ];
        let more = [
            ("--update-each-variant", "update_each_variant", self.update_each_variant.clone()),
            ("--probe", "probe", self.probe.clone()),
            ("--grad-clip", "grad_clip", num(self.grad_clip)),
        ];
        for (flag, key, value) in flags.into_iter().chain(more) {
            let Some(value) = value else { continue };
            if !c.has_setting(key) {
                let takes: Vec<String> =
                    c.setting_names().iter().map(|k| format!("--{}", k.replace('_', "-"))).collect();
                bail!("{flag} does not apply to {}; its settings are {}", c.name(), takes.join(", "));
            }
            c.set(key, &value).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
        }
        if c.has_setting("seed") {
            c.set("seed", &seed.to_string())?;
        }
        c.validate()?;
        Ok(c)
    }
}

/// The configuration as JSON, for summary.json.
pub fn config_json(c: &OptimizerConfig) -> serde_json::Value {
    serde_json::json!({ "optimizer": c.name(), "text": c.to_text(), "settings": c.settings_json() })
}

/// Before any work: an output directory must be a directory (or not exist yet), and one the user
/// named must not already hold a file this command writes, unless `force`. A default directory
/// inside a run directory (RUN/hessian, RUN/landscape) is this tool's own: it is rewritten.
pub fn check_output_dir(flag: &str, dir: &Path, names: &[String], named_by_user: bool, force: bool) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("{flag} {}: this is a file, not a directory; choose another {flag}", dir.display());
    }
    if named_by_user && !force {
        if let Some(name) = names.iter().find(|n| dir.join(n).exists()) {
            bail!(
                "{flag} {}: {name} is already there and would be overwritten; pass --force to overwrite it, or choose another {flag}",
                dir.display()
            );
        }
    }
    Ok(())
}

/// Writes a file atomically (the old file or the new one, never a cut one); an error names the
/// path (a full disk, a directory in the way, no permission).
pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    adahessian_wgpu::files::write_atomic(path, contents.as_ref()).map_err(anyhow::Error::from)
}

/// A spinner with `message` on stderr while long work runs, when stderr is a terminal (nothing
/// otherwise); call `finish_and_clear` when done.
pub fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}
