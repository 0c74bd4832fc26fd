//! The real `adahessian` binary: every command, the files a run writes, resume equivalence, and
//! every bad input named in the issue: one clear line on stderr and a non-zero exit.

mod common;

use adahessian_wgpu::checkpoint;
use adahessian_wgpu::data::synthetic::Synthetic;
use std::path::{Path, PathBuf};
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_adahessian"))
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("adahessian-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs the binary; returns (success, stdout, stderr).
fn run(args: &[&str]) -> (bool, String, String) {
    let out = bin().args(args).output().expect("the binary runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// Expects failure with a message containing every needle, on one `error:` line.
fn fails(args: &[&str], needles: &[&str]) {
    let (ok, _, err) = run(args);
    assert!(!ok, "{args:?} should fail");
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("error"))
        .unwrap_or_else(|| panic!("{args:?}: no error line in {err}"));
    for n in needles {
        assert!(line.contains(n), "{args:?}: '{line}' lacks '{n}'");
    }
}

#[test]
fn devices_lists_the_adapter() {
    gpu_or_skip!();
    let (ok, out, err) = run(&["devices"]);
    assert!(ok, "{err}");
    assert!(out.contains("max storage binding"), "{out}");
    // a normal run prints no line that reads as an error (Mesa's device-select layer printed two
    // "error: XDG_RUNTIME_DIR ..." lines on headless machines)
    assert!(!err.lines().any(|l| l.starts_with("error")), "{err}");
    // and it honours the adapter and backend choices the other commands honour
    let out = bin().args(["devices"]).env("ADAHESSIAN_ADAPTER", "no-such-gpu-xyz").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-such-gpu-xyz"), "{err}");
    let out = bin().args(["devices"]).env("ADAHESSIAN_BACKEND", "metal-ish").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("ADAHESSIAN_BACKEND"), "{err}");
    if cfg!(target_os = "linux") {
        // a backend this OS does not have: the message names the variable that chose it
        for args in [&["devices"][..], &["bench", "--steps", "1", "--reps", "1"][..]] {
            let out = bin().args(args).env("ADAHESSIAN_BACKEND", "metal").output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && err.contains("ADAHESSIAN_BACKEND") && err.contains("'metal'"),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn train_writes_a_complete_run_directory() {
    gpu_or_skip!();
    let dir = tmp("train");
    let d = dir.to_str().unwrap();
    let (ok, out, err) = run(&[
        "train",
        "--data",
        "gauss",
        "--samples",
        "200",
        "--steps",
        "30",
        "--batch-size",
        "32",
        "--out",
        d,
        "--eval-every",
        "10",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("test accuracy"), "{out}");
    for f in [
        "model.json",
        "model.py",
        "init.safetensors",
        "final.safetensors",
        "checkpoint.safetensors",
        "metrics.csv",
        "summary.json",
        "run.json",
        "loss.png",
        "loss.svg",
        "accuracy.png",
        "accuracy.svg",
    ] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    for k in ["test_accuracy", "test_loss", "train_loss", "steps", "seconds", "adapter", "config"] {
        assert!(!summary[k].is_null(), "summary.json lacks {k}");
    }
    assert_eq!(summary["steps"], 30);
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("step,epoch,train_loss,test_loss,test_accuracy,seconds"));
    assert_eq!(metrics.lines().count(), 4, "{metrics}");
    // nn.Sequential names and shapes
    let (tensors, _) = checkpoint::load(&dir.join("final.safetensors")).unwrap();
    let names: Vec<(String, Vec<usize>)> = tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
    assert_eq!(
        names,
        vec![
            ("0.bias".into(), vec![16]),
            ("0.weight".into(), vec![16, 2]),
            ("2.bias".into(), vec![16]),
            ("2.weight".into(), vec![16, 16]),
            ("4.bias".into(), vec![2]),
            ("4.weight".into(), vec![2, 16]),
        ]
    );
    // refuses to overwrite without --force, keeps what is there
    fails(&["train", "--data", "gauss", "--steps", "5", "--out", d], &["already exists", "--force"]);
    assert!(dir.join("final.safetensors").is_file());
    let (ok, _, err) = run(&["train", "--data", "gauss", "--steps", "5", "--out", d, "--force", "--quiet"]);
    assert!(ok, "{err}");
    // --test-fraction 0 trains on everything; the summary says there is no test score
    let (ok, out, err) =
        run(&["train", "--data", "gauss", "--steps", "5", "--test-fraction", "0", "--out", d, "--force", "--quiet"]);
    assert!(ok, "{err}");
    assert!(out.contains("test accuracy n/a"), "{out}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["test_accuracy"].is_null() && summary["config"]["train_rows"] == 500);
    // full-batch training
    let (ok, _, err) =
        run(&["train", "--data", "xor", "--steps", "3", "--batch-size", "full", "--out", d, "--force", "--quiet"]);
    assert!(ok, "{err}");
}

#[test]
fn a_checkpoint_loads_back_into_the_library_with_the_same_loss() {
    let gpu = gpu_or_skip!();
    let dir = tmp("reload");
    let d = dir.to_str().unwrap();
    let (ok, _, err) =
        run(&["train", "--data", "digits", "--steps", "20", "--out", d, "--quiet", "--test-fraction", "0.2"]);
    assert!(ok, "{err}");
    let spec =
        adahessian_wgpu::nn::ModelSpec::parse(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    let net = adahessian_wgpu::nn::Network::new(gpu, &spec, Default::default()).unwrap();
    let (tensors, _) = checkpoint::load(&dir.join("final.safetensors")).unwrap();
    for t in &tensors {
        net.set_tensor(gpu, &t.name, &t.shape, &t.values).unwrap();
    }
    let (train, _) = adahessian_wgpu::data::digits().unwrap().split(0.2, 0).unwrap();
    let data = common::bind(gpu, &net, &train);
    let loss = adahessian_wgpu::block_on(net.evaluate(gpu, &data)).unwrap().loss;
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let want = summary["train_loss"].as_f64().unwrap() as f32;
    assert!((loss - want).abs() <= 1e-6 * want.abs().max(1.0), "reloaded train loss {loss} vs summary {want}");
}

#[test]
fn resuming_is_bit_identical_to_training_straight_through() {
    gpu_or_skip!();
    let mut b = tmp("resumed");
    // the default, and both update_each rules: step 21 is in the middle of a 3-step cycle (new
    // estimates at steps 19 and 22), so the resumed run must carry the kept estimate and counters
    for (i, rule) in
        [&[][..], &["--update-each", "3"], &["--update-each", "3", "--update-each-variant", "fresh"]].iter().enumerate()
    {
        let a = tmp(&format!("straight{i}"));
        b = tmp(&format!("resumed{i}"));
        let common_args =
            ["train", "--data", "moons", "--samples", "300", "--batch-size", "32", "--eval-every", "7", "--quiet"];
        let with = |extra: &[&str]| -> Vec<String> {
            common_args.iter().chain(rule.iter()).chain(extra).map(|s| s.to_string()).collect()
        };
        let run_owned = |args: Vec<String>| {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, _, err) = run(&refs);
            assert!(ok, "{err}");
        };
        run_owned(with(&["--steps", "40", "--out", a.to_str().unwrap()]));
        // 21 steps, then resume to 40: the checkpoint at step 21 is mid-epoch
        run_owned(with(&["--steps", "21", "--out", b.to_str().unwrap()]));
        run_owned(vec!["train".into(), "--resume".into(), b.to_str().unwrap().into(), "--steps".into(), "40".into()]);
        let (ta, _) = checkpoint::load(&a.join("final.safetensors")).unwrap();
        let (tb, _) = checkpoint::load(&b.join("final.safetensors")).unwrap();
        assert_eq!(ta.len(), tb.len());
        for (x, y) in ta.iter().zip(&tb) {
            assert_eq!(x.name, y.name);
            assert!(
                x.values.iter().zip(&y.values).all(|(p, q)| p.to_bits() == q.to_bits()),
                "{} differs after resume ({rule:?})",
                x.name
            );
        }
    }
    // a corrupted checkpoint is refused, naming the file
    std::fs::write(b.join("checkpoint.safetensors"), b"not a checkpoint").unwrap();
    fails(&["train", "--resume", b.to_str().unwrap(), "--steps", "50"], &["checkpoint", "corrupted"]);
    fails(&["train", "--resume", "/nonexistent-run", "--steps", "50"], &["not a run directory"]);
}

#[test]
fn compare_and_bench_produce_their_reports() {
    gpu_or_skip!();
    let dir = tmp("compare");
    let d = dir.to_str().unwrap();
    let (ok, out, err) = run(&[
        "compare",
        "--data",
        "xor",
        "--samples",
        "200",
        "--optimizers",
        "adam,adahessian",
        "--epochs",
        "2",
        "--seeds",
        "2",
        "--lr-factors",
        "0.3,1",
        "--batch-sizes",
        "32,64",
        "--depths",
        "1,3",
        "--depth-activations",
        "relu",
        "--label-noise",
        "0,0.3",
        "--diagonal-samples",
        "16",
        "--out",
        d,
    ]);
    assert!(ok, "{err}");
    for claim in [
        "The article's claims",
        "GPU memory",
        "time per step",
        "steps to",
        "final test accuracy",
        "train − test",
        "learning-rate",
        "batch-size",
        "depth: final test accuracy (steps to target) with 1 / 3 hidden layers",
        "label noise: test accuracy with 0% / 30%",
        "early phase: test accuracy (and loss) after 5% of the steps",
        "what the curvature estimate tracks",
    ] {
        assert!(out.contains(claim), "the report lacks '{claim}'");
    }
    let files = ["report.md", "report.csv", "report.json", "accuracy.png", "accuracy.svg", "lr_sweep.png"];
    for f in files.iter().chain(&["batch_sweep.svg", "label_noise.png", "depth_relu.svg"]) {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
    // the report as data: every article claim has a verdict, every claim a cell per optimizer
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    let article = json["article"].as_array().unwrap();
    assert_eq!(article.len(), 11, "{json}");
    assert!(article.iter().all(|c| c["verdict"].is_string()));
    assert!(json["claims"].as_array().unwrap().iter().all(|c| c["cells"].as_array().unwrap().len() == 2));
    let (ok, out, err) = run(&[
        "bench",
        "--data",
        "gauss",
        "--optimizers",
        "adam,adahessian",
        "--steps",
        "5",
        "--reps",
        "2",
        "--warmup",
        "2",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("adapter") && out.contains("adahessian") && out.contains("vs adam"), "{out}");
}

#[test]
fn bad_input_gets_one_clear_line_and_a_non_zero_exit() {
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str, content: &[u8]| -> String {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_str().unwrap().to_string()
    };
    let out = dir.join("out");
    let o = out.to_str().unwrap();
    let nan_csv = format!("csv:{}", p("nan.csv", b"a,b,y\n1,2,0\n1,NaN,1\n"));
    let text_csv = format!("csv:{}", p("text.csv", b"a,b,y\n1,2,0\n1,two,1\n"));
    let short_csv = format!("csv:{}", p("short.csv", b"a,b,y\n1,2,0\n1,1\n"));
    let good_csv = format!("csv:{}", p("good.csv", b"a,b,y\n1,2,0\n1,1,1\n0,1,0\n2,2,1\n"));
    let bad_magic = p("bad-magic", &[0, 0, 8, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7]);
    let labels = p("labels", &[0, 0, 8, 1, 0, 0, 0, 1, 3]);
    let truncated = p("truncated", &[0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2]);
    let idx_bad = format!("idx:{bad_magic},{labels}");
    let idx_trunc = format!("idx:{truncated},{labels}");
    let existing = p("unrelated.npy", b"keep me");
    let huge_csv = format!("csv:{}", p("huge.csv", b"a,b,y\n1,2,0\n1,1e308,1\n"));
    let user_dir = dir.join("mine").to_str().unwrap().to_string();
    std::fs::create_dir_all(&user_dir).unwrap();
    for name in ["grid.csv", "density.csv", "eigenvector-0.safetensors"] {
        std::fs::write(Path::new(&user_dir).join(name), "mine").unwrap();
    }
    let twice_json =
        p("twice.json", br#"{"input": [64], "layers": ["linear(10)"], "loss": "mse", "loss": "cross_entropy"}"#);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["train", "--data", "csv:/nonexistent.csv", "--out", o], vec!["/nonexistent.csv"]),
        (vec!["train", "--data", &nan_csv, "--out", o], vec!["line 3", "not finite"]),
        (vec!["train", "--data", &text_csv, "--out", o], vec!["line 3", "'two' is not a number"]),
        (vec!["train", "--data", &short_csv, "--out", o], vec!["line 3", "2 cells"]),
        (vec!["train", "--data", &good_csv, "--target", "z", "--out", o], vec!["no target column 'z'"]),
        (vec!["train", "--data", &idx_bad, "--out", o], vec!["magic number 2049", "swapped"]),
        (vec!["train", "--data", &idx_trunc, "--out", o], vec!["truncated"]),
        (vec!["train", "--data", "idx:onlyone", "--out", o], vec!["two paths"]),
        (vec!["train", "--data", "cifar", "--out", o], vec!["unknown data set 'cifar'"]),
        (vec!["train", "--optimizer", "nosuch", "--out", o], vec!["unknown optimizer 'nosuch'", "lion"]),
        (vec!["train", "--model", "mlp:10-5-10", "--out", o], vec!["10 features", "64 per row"]),
        (vec!["train", "--model", "input 64; linear(10); softmax", "--out", o], vec!["unknown layer"]),
        (vec!["train", "--lr", "0", "--out", o], vec!["lr = 0", "> 0"]),
        (vec!["train", "--lr=-1", "--out", o], vec!["lr = -1"]),
        (vec!["train", "--beta1", "1.0", "--out", o], vec!["beta1", "[0, 1)"]),
        (vec!["train", "--beta2=-0.1", "--out", o], vec!["beta2"]),
        (vec!["train", "--hessian-power", "2", "--out", o], vec!["hessian_power", "[0, 1]"]),
        (vec!["train", "--batch-size", "0", "--out", o], vec!["--batch-size 0"]),
        (vec!["train", "--batch-size", "many", "--out", o], vec!["--batch-size many"]),
        (vec!["train", "--test-fraction", "1.5", "--out", o], vec!["test fraction"]),
        (vec!["train", "--normalize", "minmax", "--out", o], vec!["--normalize minmax"]),
        (vec!["train", "--lr-schedule", "linear", "--out", o], vec!["--lr-schedule linear"]),
        (vec!["compare", "--optimizers", "adam,nosuch", "--out", o], vec!["unknown optimizer 'nosuch'"]),
        (vec!["bench", "--batch-size", "0"], vec!["at least 1"]),
        // 32 samples keep 26 training rows: timing 26 under the name "batch 32" is refused
        (
            vec!["bench", "--data", "random:3x8x8", "--samples", "32", "--batch-size", "32"],
            vec!["--batch-size 32 is more than the 26 training rows", "--samples 40"],
        ),
        // issue 11: each of these panicked, ran unbounded or printed nonsense before
        (vec!["train", "--test-fraction", "0.9999", "--out", o], vec!["leaves no training rows"]),
        (vec!["train", "--eval-every", "0", "--out", o], vec!["--eval-every 0"]),
        (vec!["train", "--save-every", "0", "--out", o], vec!["--save-every 0"]),
        (
            vec!["train", "--epochs", "18446744073709551615", "--out", o],
            vec!["--epochs 18446744073709551615", "fewer epochs"],
        ),
        (vec!["train", "--optimizer", "sgd", "--momentum", "1.5", "--out", o], vec!["momentum = 1.5", "[0, 1)"]),
        (vec!["train", "--optimizer", "sgd", "--momentum", "-0.5", "--out", o], vec!["momentum = -0.5"]),
        (vec!["bench", "--optimizers", ""], vec!["no optimizer"]),
        (
            vec!["train", "--optimizer", "adam", "--momentum", "0.5", "--out", o],
            vec!["--momentum does not apply to adam"],
        ),
        (vec!["train", "--optimizer", "sgd", "--eps", "1e-3", "--out", o], vec!["--eps does not apply to sgd"]),
        (vec!["train", "--optimizer", "adahessian", "--gamma", "0.1", "--out", o], vec!["--gamma does not apply"]),
        (vec!["train", "--optimizer", "adam", "--probe", "gaussian", "--out", o], vec!["--probe does not apply"]),
        (vec!["bench", "--reps", "0"], vec!["--reps"]),
        (vec!["bench", "--matmul", "0"], vec!["--matmul 0"]),
        (vec!["bench", "--kernels", "fast"], vec!["unknown kernel set 'fast'"]),
        (vec!["hessian", "--run", o, "--max-iter", "0"], vec!["--max-iter 0"]),
        (vec!["hessian", "--run", o, "--tol", "-1"], vec!["--tol -1"]),
        (vec!["hessian", "--run", o, "--sigma", "NaN"], vec!["--sigma NaN"]),
        (vec!["hessian", "--run", o, "--sigma", "-0.1"], vec!["--sigma -0.1"]),
        (vec!["landscape", "--run", o, "--range", "-1:1:1"], vec!["POINTS ≥ 2"]),
        (vec!["landscape", "--run", o, "--range", "-1:1:100000"], vec!["grid points", "at most"]),
        (vec!["hessian", "--run", o, "--exact", "--out", &existing], vec![&existing, "already exists", "--force"]),
        (vec!["hessian", "--run", o, "--exact", "--out", "/no/such/dir/H.npy"], vec!["/no/such/dir", "does not exist"]),
        (vec!["train", "--model", "/no/such/model.json", "--out", o], vec!["/no/such/model.json", "no such file"]),
        (vec!["train", "--data", &huge_csv, "--out", o], vec!["line 3", "1e308", "f32 range"]),
        // issue 20 item 7: counts that start work that cannot finish are refused up front
        (
            vec!["train", "--data", "moons", "--samples", "4294967296", "--out", o],
            vec!["--samples", "at most 10000000"],
        ),
        (vec!["compare", "--seeds", "4294967296", "--out", o], vec!["--seeds 4294967296", "at most 1000"]),
        (vec!["hessian", "--run", o, "--lanczos-steps", "100000"], vec!["--lanczos-steps 100000", "at most 10000"]),
        (vec!["compare", "--target-accuracy", "2", "--out", o], vec!["--target-accuracy 2", "(0, 1]"]),
        (vec!["compare", "--optimizers", "adam,adam", "--out", o], vec!["adam twice"]),
        (vec!["compare", "--lr-factors", "nan", "--out", o], vec!["--lr-factors", "NaN"]),
        // issue 20 item 8: no flag or repeat is silently ignored
        (vec!["train", "--data", "digits", "--task", "regress", "--out", o], vec!["--task does not apply", "digits"]),
        (vec!["train", "--data", "moons", "--target", "y", "--out", o], vec!["--target does not apply", "csv:PATH"]),
        (vec!["train", "--data", &idx_bad, "--header", "yes", "--out", o], vec!["--header does not apply"]),
        (vec!["train", "--data", "digits", "--samples", "10", "--out", o], vec!["--samples does not apply"]),
        (vec!["train", "--data", "moons", "--model", "mlp:2-16-2:tanh:relu", "--out", o], vec!["two activations"]),
        (vec!["train", "--data", "moons", "--model", "mlp:2-16-2:mse:cross_entropy", "--out", o], vec!["second loss"]),
        (vec!["train", "--model", "input 64; input 64; linear(10)", "--out", o], vec!["already has an input line"]),
        (vec!["train", "--model", &twice_json, "--out", o], vec!["\"loss\" is given twice"]),
        // issue 20 item 6: a user's files are checked before any work, never overwritten silently
        (vec!["landscape", "--run", o, "--out", &user_dir], vec!["grid.csv is already there", "--force"]),
        (vec!["hessian", "--run", o, "--out-dir", &user_dir], vec!["density.csv is already there"]),
        (vec!["hessian", "--run", o, "--save-eigenvectors", &user_dir], vec!["eigenvector-0.safetensors"]),
        (vec!["hessian", "--run", o, "--exact", "--force", "--out", &user_dir], vec!["is a directory"]),
        (vec!["landscape", "--run", o, "--out", &existing], vec!["is a file, not a directory"]),
    ];
    for (args, needles) in cases {
        fails(&args, &needles);
    }
    // issue 20 item 10: the message tells the real cause, once, and never echoes a huge field
    let long_field = format!("csv:{}", p("long.csv", format!("a,y\n1,0\n{},1\n", "x".repeat(1 << 20)).as_bytes()));
    let big_target = format!("csv:{}", p("big-target.csv", b"a,y\n1,0\n2,1e30\n3,5\n"));
    for (args, needles, absent) in [
        (vec!["train", "--backend", "foo", "--out", o], vec!["--backend foo"], "ADAHESSIAN_BACKEND"),
        (vec!["hessian", "--run", o, "--rows", "0"], vec!["--rows 0"], "max_batch"),
        (vec!["landscape", "--run", o, "--rows", "0"], vec!["--rows 0"], "max_batch"),
        (vec!["train", "--data", "csv:/nonexistent.csv", "--out", o], vec!["(os error 2)"], "(os error 2): No such"),
        (vec!["train", "--data", &long_field, "--out", o], vec!["line 3", "(1048576 bytes)"], &"x".repeat(100)),
        (
            vec!["train", "--data", &big_target, "--task", "regress", "--lr", "1e-12", "--out", o],
            vec!["1e19", "rescale"],
            "--lr",
        ),
        (
            vec!["train", "--model", "input 3x8x8; conv2d(2, k=(3, 1)); flatten; linear(2)", "--out", o],
            vec!["64"],
            "given 2 times",
        ),
    ] {
        let (ok, _, err) = run(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(needles.iter().all(|n| err.contains(n)) && !err.contains(absent), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me", "an unrelated file is never overwritten");
    for name in ["grid.csv", "density.csv", "eigenvector-0.safetensors"] {
        assert_eq!(std::fs::read_to_string(Path::new(&user_dir).join(name)).unwrap(), "mine", "{name} was overwritten");
    }
    assert!(!out.join("final.safetensors").exists(), "no failed run may leave a final checkpoint");
}

#[test]
fn a_nan_loss_stops_the_run_keeping_the_last_good_checkpoint() {
    gpu_or_skip!();
    let dir = tmp("nan");
    let d = dir.to_str().unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--model",
        "mlp:64-64-64-10:relu",
        "--optimizer",
        "sgd",
        "--lr",
        "1e35",
        "--steps",
        "50",
        "--eval-every",
        "1",
        "--out",
        d,
        "--quiet",
    ]);
    assert!(!ok, "a 1e30 learning rate should blow up");
    let line = err.lines().rev().find(|l| l.starts_with("error")).unwrap();
    assert!(line.contains("at step") && line.contains("last good checkpoint"), "{line}");
    assert!(dir.join("checkpoint.safetensors").is_file() && !dir.join("final.safetensors").exists());
    let (_, meta) = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    let (tensors, _) = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    assert!(tensors.iter().all(|t| t.values.iter().all(|v| v.is_finite())), "the kept checkpoint is finite");
    assert!(meta.contains_key("step"));
}

#[test]
fn synthetic_data_is_seeded_and_reproducible() {
    for s in Synthetic::ALL {
        let a = s.generate(100, 0.1, 3).unwrap();
        assert_eq!(a, s.generate(100, 0.1, 3).unwrap(), "{s:?}");
        assert_ne!(a.x, s.generate(100, 0.1, 4).unwrap().x, "{s:?}");
        assert_eq!((a.rows(), a.features, a.classes()), (100, 2, s.classes() as usize));
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_adahessian")).is_file());
}

/// A model text without an `input` line takes the data's shape (as the ResNet presets do), and
/// says so when the layers do not fit it; one with an input line keeps its own.
#[test]
fn a_model_text_without_an_input_line_takes_the_datas_shape() {
    gpu_or_skip!();
    let dir = tmp("implicit-input");
    let o = dir.to_str().unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--data",
        "digits",
        "--model",
        "conv2d(4, k=3, p=1, bias=false); batchnorm2d; relu; flatten; linear(10)",
        "--steps",
        "1",
        "--out",
        o,
    ]);
    assert!(ok, "{err}");
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    assert_eq!(model["input"], serde_json::json!([1, 8, 8]), "{model}");
    fails(
        &["train", "--data", "digits", "--model", "linear(10)", "--steps", "1", "--out", o],
        &["its input 1x8x8 is the data's", "add Flatten"],
    );
    fails(
        &["train", "--data", "digits", "--model", "input 3x8x8; flatten; linear(10)", "--steps", "1", "--out", o],
        &["192 features", "64 per row"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hessian_and_landscape_run_on_a_trained_model() {
    gpu_or_skip!();
    let dir = tmp("curv");
    let d = dir.to_str().unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--data",
        "gauss",
        "--samples",
        "120",
        "--model",
        "mlp:2-4-2:tanh",
        "--steps",
        "30",
        "--batch-size",
        "16",
        "--save-every",
        "10",
        "--out",
        d,
        "--quiet",
    ]);
    assert!(ok, "{err}");
    assert!(dir.join("step-00000010.safetensors").is_file() && dir.join("step-00000030.safetensors").is_file());
    let (ok, out, err) = run(&[
        "hessian",
        "--run",
        d,
        "--top-k",
        "2",
        "--trace",
        "--probes",
        "20",
        "--density",
        "--lanczos-steps",
        "10",
        "--json",
    ]);
    assert!(ok, "{err}");
    let j: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(j["top_eigenvalues"].as_array().unwrap().len(), 2);
    for k in ["trace", "trace_stderr", "trace_probes", "hvps", "seconds", "parameters", "rows"] {
        assert!(!j[k].is_null(), "JSON lacks {k}");
    }
    assert!(
        (j["density"]["weights"].as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).sum::<f64>() - 1.0).abs()
            < 1e-6
    );
    let npy = dir.join("H.npy");
    let (ok, out, err) =
        run(&["hessian", "--run", d, "--exact", "--out", npy.to_str().unwrap(), "--diagonal", "--probes", "10"]);
    assert!(ok, "{err}");
    assert!(out.contains("exact Hessian [22, 22]") && out.contains("row norm"), "{out}");
    let bytes = std::fs::read(&npy).unwrap();
    assert!(
        bytes.starts_with(b"\x93NUMPY") && (bytes.len() - 22 * 22 * 8).is_multiple_of(64),
        "npy of {} bytes",
        bytes.len()
    );
    // read back by an independent reader: shape, dtype and a symmetric Hessian
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    assert_eq!(file.shape(), &[22, 22]);
    let h: Vec<f64> = file.into_vec().unwrap();
    let asym = (0..22)
        .flat_map(|i| (0..22).map(move |j| (i, j)))
        .map(|(i, j)| (h[i * 22 + j] - h[j * 22 + i]).abs())
        .fold(0.0, f64::max);
    assert!(asym < 1e-4 && h.iter().any(|v| *v != 0.0), "max |H - Hᵀ| {asym}");
    // --extremes: Lanczos' λmin and λmax against the exact Hessian's eigenvalues (22 steps span it)
    let (ok, out, err) = run(&["hessian", "--run", d, "--extremes", "--lanczos-steps", "22", "--json"]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (values, _) = adahessian_wgpu::curvature::eigen::symmetric_eigen(&h, 22);
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), v| (l.min(*v), u.max(*v)));
    let scale = lo.abs().max(hi.abs());
    let (got_lo, got_hi) = (report["lambda_min"].as_f64().unwrap(), report["lambda_max"].as_f64().unwrap());
    assert!(
        (got_lo - lo).abs() <= 1e-3 * scale && (got_hi - hi).abs() <= 1e-3 * scale,
        "({got_lo}, {got_hi}) vs ({lo}, {hi})"
    );
    assert!((report["nonconvexity"].as_f64().unwrap() - got_lo.abs() / got_hi.abs()).abs() < 1e-12);
    assert!(dir.join("hessian/diagonal.csv").is_file() && dir.join("hessian/diagonal.png").is_file());
    // per tensor: one row per tensor (as text and JSON), a bar plot, and traces that add up to the
    // whole Hessian's diagonal sum (the exact H above)
    let (ok, out, err) = run(&["hessian", "--run", d, "--per-layer", "--probes", "200", "--json"]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let blocks = json["per_layer"].as_array().unwrap();
    assert_eq!(blocks.iter().map(|b| b["params"].as_u64().unwrap()).sum::<u64>(), 22, "{out}");
    let (traces, errs): (f64, f64) = blocks.iter().fold((0.0, 0.0), |(t, e), b| {
        (t + b["trace"].as_f64().unwrap(), e + b["trace_stderr"].as_f64().unwrap().powi(2))
    });
    let exact: f64 = (0..22).map(|i| h[i * 22 + i]).sum();
    assert!((traces - exact).abs() <= 4.0 * errs.sqrt() + 1e-6, "Σ block traces {traces} vs tr H {exact}");
    assert!(dir.join("hessian/per_layer.png").is_file() && dir.join("hessian/per_layer.svg").is_file());
    // the sharpness the run's optimizer sees, from its checkpointed state, against its edge
    let (ok, out, err) = run(&["hessian", "--run", d, "--preconditioned"]);
    assert!(ok, "{err}");
    assert!(out.contains("edge of stability: sharpness") && out.contains("(2 + 2β1)"), "{out}");
    fails(&["hessian", "--run", d, "--exact", "--max-exact-params", "10"], &["22 parameters", "--max-exact-params"]);
    // an output directory that is a file: the error names the path ("File exists" alone did not)
    let blocker = dir.join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let b = blocker.to_str().unwrap();
    fails(&["landscape", "--run", d, "--range", "-1:1:3", "--out", b], &[b]);
    for directions in ["random", "hessian", "pca"] {
        let out_dir = dir.join(format!("land-{directions}"));
        let (ok, _, err) = run(&[
            "landscape",
            "--run",
            d,
            "--directions",
            directions,
            "--range",
            "-1:1:5",
            "--out",
            out_dir.to_str().unwrap(),
        ]);
        assert!(ok, "{directions}: {err}");
        let grid = std::fs::read_to_string(out_dir.join("grid.csv")).unwrap();
        assert_eq!(grid.lines().count(), 26, "{directions}");
        assert!(out_dir.join("landscape_train.png").is_file() && out_dir.join("landscape_train.svg").is_file());
        assert!(out_dir.join("trajectory.csv").is_file());
    }
    let out_dir = dir.join("land-1d");
    let (ok, _, err) = run(&[
        "landscape",
        "--run",
        d,
        "--dim",
        "1",
        "--range",
        "-0.5:0.5:9",
        "--split",
        "both",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out_dir.join("landscape.png").is_file());
    fails(&["landscape", "--run", d, "--range", "1:-1:5"], &["MIN:MAX:POINTS"]);
    fails(&["landscape", "--run", d, "--directions", "sideways"], &["--directions sideways"]);
    fails(&["hessian", "--model", "mlp:2-4-2"], &["no weights"]);
}

/// Real-valued targets train the MSE loss when the model names none (it trained cross-entropy on
/// them before, loss falling to −5794 with exit 0), and log R², not an accuracy of 0; a model that
/// names cross-entropy for them, and `compare` on them, are refused with the fix.
#[test]
fn a_regression_task_trains_mse_and_reports_r2() {
    gpu_or_skip!();
    let dir = tmp("regress");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("r.csv");
    let mut text = String::from("a,b,c,d,y\n");
    for i in 0..120 {
        let v: Vec<f64> = (0..4).map(|j| ((i * 7 + j * 13) % 17) as f64 / 17.0).collect();
        let y = v[0] + 2.0 * v[1] - v[2] + 0.5 * v[3];
        text.push_str(&format!("{},{},{},{},{y}\n", v[0], v[1], v[2], v[3]));
    }
    std::fs::write(&csv, text).unwrap();
    let data = format!("csv:{}", csv.display());
    let out = dir.join("run");
    let (ok, _, err) = run(&[
        "train",
        "--data",
        &data,
        "--task",
        "regress",
        "--model",
        "mlp:4-1",
        "--optimizer",
        "adam",
        "--lr",
        "0.05",
        "--epochs",
        "40",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["task"], "regress", "{summary}");
    assert!(summary["config"]["model"].as_str().unwrap().contains("loss mse"), "{summary}");
    let r2 = summary["test_r2"].as_f64().unwrap();
    assert!(r2 > 0.9 && r2 <= 1.0, "a linear target is fitted: R² {r2}");
    assert!(summary["test_loss"].as_f64().unwrap() >= 0.0, "an MSE is never negative: {summary}");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("step,epoch,train_loss,test_loss,test_r2,seconds"), "{metrics}");
    fails(
        &[
            "train",
            "--data",
            &data,
            "--task",
            "regress",
            "--model",
            "mlp:4-1:cross_entropy",
            "--out",
            dir.join("ce").to_str().unwrap(),
        ],
        &["cross_entropy", "real-valued", "loss mse"],
    );
    fails(
        &["compare", "--data", &data, "--task", "regress", "--out", dir.join("cmp").to_str().unwrap()],
        &["real-valued"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without a test split, metrics.csv leaves the test cells empty (it wrote "NaN", which CSV
/// readers take for a number).
#[test]
fn absent_metrics_are_empty_cells() {
    gpu_or_skip!();
    let dir = tmp("no-test");
    let (ok, _, err) = run(&[
        "train",
        "--data",
        "xor",
        "--samples",
        "64",
        "--test-fraction",
        "0",
        "--epochs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let metrics = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = metrics.lines().skip(1).collect();
    assert!(!rows.is_empty() && !metrics.contains("NaN"), "{metrics}");
    for row in rows {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!((cells[3], cells[4]), ("", ""), "test loss and score are absent: {row}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A checkpoint records the optimizer that wrote it: one copied from another optimizer's run is
/// refused on --resume (it resumed silently before); a damaged one is refused by its checksum.
#[test]
fn resume_refuses_another_optimizers_or_a_damaged_checkpoint() {
    gpu_or_skip!();
    let (a, b) = (tmp("resume-adam"), tmp("resume-ah"));
    for (dir, opt) in [(&a, "adam"), (&b, "adahessian")] {
        let (ok, _, err) = run(&[
            "train",
            "--data",
            "xor",
            "--samples",
            "64",
            "--optimizer",
            opt,
            "--epochs",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(ok, "{err}");
    }
    std::fs::copy(a.join("checkpoint.safetensors"), b.join("checkpoint.safetensors")).unwrap();
    fails(&["train", "--resume", b.to_str().unwrap(), "--epochs", "4"], &["written by adam", "adahessian"]);
    let mut bytes = std::fs::read(a.join("checkpoint.safetensors")).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x10; // inside the last tensor's data
    std::fs::write(a.join("checkpoint.safetensors"), bytes).unwrap();
    fails(&["train", "--resume", a.to_str().unwrap(), "--epochs", "4"], &["checkpoint"]);
    let (_, _, err) = run(&["train", "--resume", a.to_str().unwrap(), "--epochs", "4"]);
    assert!(err.contains("checksum mismatch"), "{err}");
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// Run directories are all-or-nothing and single-writer (issue 11): a --force run that fails
/// before its first checkpoint leaves the old run as it was; one that succeeds leaves none of the
/// old run's files; a second process on the same directory is refused while the first runs.
#[test]
fn run_directories_are_all_or_nothing_and_single_writer() {
    gpu_or_skip!();
    let dir = tmp("atomic");
    let d = dir.to_str().unwrap();
    let base = ["train", "--data", "xor", "--samples", "64", "--epochs", "4"];
    let (ok, _, err) = run(&[&base[..], &["--save-every", "2", "--out", d]].concat());
    assert!(ok, "{err}");
    assert!(dir.join("step-00000002.safetensors").exists());
    let before = std::fs::read(dir.join("final.safetensors")).unwrap();
    // a NaN at the first step, long before the first evaluation: the old run must survive whole
    let (ok, _, err) = run(&[
        "train",
        "--data",
        "xor",
        "--samples",
        "64",
        "--optimizer",
        "sgd",
        "--lr",
        "1e38",
        "--epochs",
        "50",
        "--eval-every",
        "1000",
        "--force",
        "--out",
        d,
    ]);
    assert!(!ok && err.contains("is kept as it was"), "{err}");
    assert_eq!(std::fs::read(dir.join("final.safetensors")).unwrap(), before, "the old run is untouched");
    assert!(dir.join("step-00000002.safetensors").exists() && dir.join("checkpoint.safetensors").exists());
    // a successful --force run replaces it whole: no stale trajectory of the old run remains
    let (ok, _, err) = run(&[&base[..], &["--force", "--out", d]].concat());
    assert!(ok, "{err}");
    assert!(!dir.join("step-00000002.safetensors").exists(), "stale files of the old run");
    let leftovers: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("atomic") && (n.contains(".new-") || n.contains(".old-")))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // issue 20 item 6: --force replaces only a previous run, and says so before training
    let user_file = dir.with_file_name(format!("{}-notes.txt", dir.file_name().unwrap().to_string_lossy()));
    std::fs::write(&user_file, "my notes").unwrap();
    let user_dir = dir.with_file_name(format!("{}-photos", dir.file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&user_dir).unwrap();
    std::fs::write(user_dir.join("cat.jpg"), "meow").unwrap();
    for (out, needle) in [
        (user_file.to_str().unwrap(), "is a file, not a run directory"),
        (".", "current directory"),
        (user_dir.to_str().unwrap(), "not a run of this tool"),
    ] {
        fails(&[&base[..], &["--force", "--out", out]].concat(), &[needle]);
    }
    assert_eq!(std::fs::read_to_string(&user_file).unwrap(), "my notes");
    assert_eq!(std::fs::read_to_string(user_dir.join("cat.jpg")).unwrap(), "meow");
    let hidden: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| (n.contains("notes.txt.") || n.contains("photos.")) && !n.ends_with(".lock"))
        .collect();
    assert!(hidden.is_empty(), "a refused --force left {hidden:?}");
    // what a killed run left (a staging directory of a dead process) neither blocks nor survives
    // the next run there
    let fresh = dir.with_file_name(format!("{}-fresh", dir.file_name().unwrap().to_string_lossy()));
    let stale = fresh.with_file_name(format!(".{}.new-4000000000", fresh.file_name().unwrap().to_string_lossy()));
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("run.json"), "{}").unwrap();
    let (ok, _, err) = run(&[&base[..], &["--out", fresh.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert!(!stale.exists() && fresh.join("final.safetensors").exists());
    let _ = std::fs::remove_dir_all(&fresh);
    let _ = std::fs::remove_dir_all(&user_dir);
    let _ = std::fs::remove_file(&user_file);
    // one writer at a time
    let other = dir.with_file_name(format!("{}-long", dir.file_name().unwrap().to_string_lossy()));
    let o = other.to_str().unwrap();
    let mut first = bin()
        .args(["train", "--data", "xor", "--samples", "256", "--epochs", "2000", "--batch-size", "8", "--out", o])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = other.with_file_name(format!(".{}.lock", other.file_name().unwrap().to_string_lossy()));
    // until the first writer holds the lock (or has stopped): no deadline that a slow machine
    // could miss
    while !(other.join("run.json").exists() && lock.exists()) && first.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (ok, _, err) = run(&["train", "--data", "xor", "--samples", "64", "--epochs", "1", "--force", "--out", o]);
    // the same run through a symbolic link is the same run: refused too (it used to take a lock
    // of its own and write into the directory beside the first writer)
    #[cfg(unix)]
    let through_link = {
        let link = other.with_file_name(format!("{}-link", other.file_name().unwrap().to_string_lossy()));
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&other, &link).unwrap();
        let l = link.to_str().unwrap();
        let r = run(&["train", "--data", "xor", "--samples", "64", "--epochs", "1", "--force", "--out", l]);
        let _ = std::fs::remove_file(&link);
        r
    };
    let _ = first.kill();
    let _ = first.wait();
    assert!(!ok && err.contains("another adahessian process"), "{err}");
    #[cfg(unix)]
    assert!(!through_link.0 && through_link.2.contains("another adahessian process"), "{}", through_link.2);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

/// --resume keeps the run's settings: a contradicting flag is refused by name, --lr may change and
/// the change is recorded; data that changed under the same path is refused.
#[test]
fn resume_keeps_the_runs_settings_and_data() {
    gpu_or_skip!();
    let dir = tmp("resume-flags");
    std::fs::create_dir_all(&dir).unwrap();
    let csv = dir.join("d.csv");
    let rows: String = (0..40).map(|i| format!("{},{},{}\n", i % 7, (i * 3) % 5, i % 2)).collect();
    std::fs::write(&csv, format!("a,b,y\n{rows}")).unwrap();
    let data = format!("csv:{}", csv.display());
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    let (ok, _, err) = run(&["train", "--data", &data, "--optimizer", "adam", "--epochs", "2", "--out", o]);
    assert!(ok, "{err}");
    fails(&["train", "--resume", o, "--epochs", "4", "--batch-size", "8"], &["--batch-size", "cannot be given"]);
    fails(&["train", "--resume", o, "--epochs", "4", "--optimizer", "sgd"], &["--optimizer"]);
    let (ok, _, err) = run(&["train", "--resume", o, "--epochs", "4", "--lr", "0.01"]);
    assert!(ok, "{err}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["resumes"][0]["changed"][0], "--lr 0.01", "{record}");
    // a refused resume changes nothing: the run already has its 4 epochs, so --lr 0.5 must not
    // reach run.json (the next plain --resume would train with it)
    let before = std::fs::read(out.join("run.json")).unwrap();
    fails(&["train", "--resume", o, "--epochs", "4", "--lr", "0.5"], &["already has", "nothing was changed"]);
    assert_eq!(std::fs::read(out.join("run.json")).unwrap(), before, "a refused resume rewrote run.json");
    assert!(record["argv"].as_array().unwrap().iter().any(|a| a == "0.01"), "{record}");
    // the same rows with the first label flipped
    let flipped = rows.replacen(",0\n", ",1\n", 1);
    std::fs::write(&csv, format!("a,b,y\n{flipped}")).unwrap();
    fails(&["train", "--resume", o, "--epochs", "6"], &["not the data the run was trained on"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// kill -9 in the middle of training, then --resume: the final weights are bit-identical to a run
/// that was never interrupted (checkpoints are written atomically and hold the whole state).
#[test]
fn a_killed_run_resumes_bit_identically() {
    gpu_or_skip!();
    let (a, b) = (tmp("straight"), tmp("killed"));
    let args = |out: &PathBuf| -> Vec<String> {
        ["train", "--data", "xor", "--samples", "256", "--batch-size", "16", "--epochs", "120", "--eval-every", "20"]
            .iter()
            .map(|s| s.to_string())
            .chain(["--out".to_string(), out.display().to_string()])
            .collect()
    };
    let mut child =
        bin().args(args(&b)).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    while !b.join("checkpoint.safetensors").exists() && child.try_wait().unwrap().is_none() {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert!(!b.join("final.safetensors").exists(), "the run finished before it could be killed");
    let (ok, _, err) = run(&["train", "--resume", b.to_str().unwrap(), "--epochs", "120"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&args(&a).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(ok, "{err}");
    let (wa, _) = checkpoint::load(&a.join("final.safetensors")).unwrap();
    let (wb, _) = checkpoint::load(&b.join("final.safetensors")).unwrap();
    assert_eq!(wa, wb, "resumed weights differ from the uninterrupted run's");
    // the resumed history is the whole history, row for row (seconds aside)
    let rows = |dir: &PathBuf| -> Vec<String> {
        let text = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
        text.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect()
    };
    assert_eq!(rows(&a), rows(&b), "the resumed run's metrics.csv lost or repeated rows");
    assert!(
        std::fs::read_dir(&b).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with(".tmp-")),
        "a temporary file was left in the run"
    );
    // a history that cannot be read is an error, not an empty history
    std::fs::write(b.join("metrics.csv"), "").unwrap();
    fails(
        &["train", "--resume", b.to_str().unwrap(), "--epochs", "140"],
        &["metrics.csv", "cannot be read", "restore"],
    );
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// Ctrl-C (SIGINT) stops `train` after its step with exit status 130: before the first
/// checkpoint nothing is left (no staging directory, no run), afterwards a run that resumes.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_run_cleanly_and_leaves_it_resumable() {
    gpu_or_skip!();
    let parent = tmp("interrupted");
    std::fs::create_dir_all(&parent).unwrap();
    let out = parent.join("run");
    let hidden = |parent: &Path| -> Vec<String> {
        std::fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".run.new-") || n.starts_with(".run.old-"))
            .collect()
    };
    let interrupt = |eval_every: &str, ready: &dyn Fn() -> bool| {
        let mut child = bin()
            .args(["train", "--data", "xor", "--samples", "256", "--batch-size", "16", "--epochs", "100000"])
            .args(["--eval-every", eval_every, "--out", out.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // the run is under way (a state of the file system, not a timer)
        while !ready() {
            assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be interrupted");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
        assert!(status.success());
        let done = child.wait_with_output().unwrap();
        (done.status.code(), String::from_utf8_lossy(&done.stderr).into_owned())
    };
    // before the first checkpoint: the staging directory exists, then nothing does
    let staged = || !hidden(&parent).is_empty();
    let (code, err) = interrupt("1000000", &staged);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted") && err.contains("before its first checkpoint"), "{err}");
    assert!(!out.exists() && hidden(&parent).is_empty(), "left behind: {:?}", hidden(&parent));
    // after a checkpoint: the run stays and resumes
    let (code, err) = interrupt("20", &|| out.join("checkpoint.safetensors").exists());
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("--resume") && err.contains("checkpoint of step"), "{err}");
    assert!(hidden(&parent).is_empty(), "left behind: {:?}", hidden(&parent));
    assert!(!out.join("final.safetensors").exists());
    let state = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let last: u64 = state.lines().last().unwrap().split(',').next().unwrap().parse().unwrap();
    let (ok, _, err) = run(&["train", "--resume", out.to_str().unwrap(), "--steps", &(last + 20).to_string()]);
    assert!(ok, "{err}");
    assert!(out.join("final.safetensors").exists());
    let _ = std::fs::remove_dir_all(&parent);
}

/// A run written before AdaHessian's update_each had two rules used the one now called `fresh`:
/// it resumes with that rule, not with the new default, and run.json says so.
#[test]
fn an_old_update_each_run_resumes_with_its_own_rule() {
    gpu_or_skip!();
    let dir = tmp("old-update-each");
    let d = dir.to_str().unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--data",
        "moons",
        "--samples",
        "200",
        "--update-each",
        "3",
        "--steps",
        "8",
        "--quiet",
        "--out",
        d,
    ]);
    assert!(ok, "{err}");
    let path = dir.join("run.json");
    let mut record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(record["optimizer"]["settings"]["update_each_variant"], "fold", "{record}");
    record.as_object_mut().unwrap().remove("optimizer"); // as the older versions wrote it
    std::fs::write(&path, record.to_string()).unwrap();
    let (ok, _, err) = run(&["train", "--resume", d, "--steps", "12", "--quiet"]);
    assert!(ok, "{err}");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(record["optimizer"]["settings"]["update_each_variant"], "fresh", "{record}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A BatchNorm CNN from the command line: it trains, resumes bit-identically with its running
/// statistics (the checkpoint and the export carry them under PyTorch's names), and `hessian`
/// and `landscape` say which BatchNorm mode they used; a bad mode is refused.
#[test]
fn a_batchnorm_model_trains_resumes_and_is_analysed_in_both_bn_modes() {
    gpu_or_skip!();
    let (a, b) = (tmp("bn-straight"), tmp("bn-resumed"));
    let model = "input 1x8x8; conv2d(6, k=3, p=1); batchnorm2d; relu; maxpool2d(2); flatten; linear(16); \
                 batchnorm1d; relu; linear(10)";
    let args = |out: &PathBuf, epochs: &str| -> Vec<String> {
        ["train", "--data", "digits", "--model", model, "--epochs", epochs, "--out"]
            .iter()
            .map(|s| s.to_string())
            .chain([out.display().to_string()])
            .collect()
    };
    for (out, epochs) in [(&a, "2"), (&b, "1")] {
        let (ok, _, err) = run(&args(out, epochs).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(ok, "{err}");
    }
    let (ok, _, err) = run(&["train", "--resume", b.to_str().unwrap(), "--epochs", "2"]);
    assert!(ok, "{err}");
    let (wa, _) = checkpoint::load(&a.join("final.safetensors")).unwrap();
    let (wb, _) = checkpoint::load(&b.join("final.safetensors")).unwrap();
    assert_eq!(wa, wb, "resumed weights or running statistics differ from the uninterrupted run's");
    let names: Vec<&str> = wa.iter().map(|t| t.name.as_str()).collect();
    for n in ["1.running_mean", "1.running_var", "1.num_batches_tracked", "6.running_var"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    let tracked = wa.iter().find(|t| t.name == "1.num_batches_tracked").unwrap();
    assert!(tracked.shape.is_empty() && tracked.values[0] > 0.0, "{tracked:?}");
    let dir = a.to_str().unwrap();
    let mut tops = Vec::new();
    for mode in ["train", "eval"] {
        let (ok, out, err) =
            run(&["hessian", "--run", dir, "--top-k", "1", "--rows", "64", "--bn-mode", mode, "--json"]);
        assert!(ok, "{err}");
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["bn_mode"], mode, "{r}");
        tops.push(r["top_eigenvalues"][0].as_f64().unwrap());
        let (ok, out, err) = run(&["hessian", "--run", dir, "--top-k", "1", "--rows", "64", "--bn-mode", mode]);
        assert!(ok && out.contains(&format!("BatchNorm in {mode} mode")), "{out}{err}");
    }
    assert!(tops[0] != tops[1], "the two modes are different functions: {tops:?}");
    let (ok, out, err) = run(&["landscape", "--run", dir, "--range", "-1:1:3", "--bn-mode", "eval"]);
    assert!(ok && out.contains("BatchNorm in eval mode"), "{out}{err}");
    fails(&["hessian", "--run", dir, "--top-k", "1", "--bn-mode", "test"], &["--bn-mode", "train or eval"]);
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
}

/// A CIFAR-10 directory in the official binary layout, `per_file` records in each of the six
/// files (pixels vary with record and channel, labels cycle through 0..10).
fn cifar10_dir(name: &str, per_file: usize) -> PathBuf {
    let dir = tmp(name);
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    for (f, file) in files.iter().enumerate() {
        let mut bytes = Vec::new();
        for r in 0..per_file {
            bytes.push(((f * per_file + r) % 10) as u8);
            bytes.extend(
                (0..3072).map(|i| ((r * 31 + f * 17 + (i / 1024) * 50 + (i % 1024) * (r % 3 + 1)) % 256) as u8),
            );
        }
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

/// `--data cifar10:DIR` trains on the official split with per-channel normalisation (printed and
/// recorded) and `--augment crop4,flip`; a resumed augmented run is bit-identical to one run
/// straight through (the crops are drawn from the seeded batch order); flags that do not apply
/// are refused.
#[test]
fn cifar_trains_augmented_and_resumes_bit_identically() {
    gpu_or_skip!();
    let data_dir = cifar10_dir("cifar", 4);
    let data = format!("cifar10:{}", data_dir.display());
    let (a, b) = (tmp("cifar-straight"), tmp("cifar-resumed"));
    let base =
        ["train", "--data", &data, "--augment", "crop4,flip", "--batch-size", "4", "--eval-every", "3", "--quiet"];
    let (ok, _, err) = run(&[&base[..], &["--steps", "6", "--out", a.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    assert!(err.contains("per-channel normalisation from the 20 training images"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("summary.json")).unwrap()).unwrap();
    let decisions = summary["config"]["data_decisions"].to_string();
    assert!(decisions.contains("mean (") && decisions.contains("crop4,flip"), "{decisions}");
    assert_eq!(summary["config"]["test_rows"], 4, "the official test split");
    let (ok, _, err) = run(&[&base[..], &["--steps", "3", "--out", b.to_str().unwrap()]].concat());
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["train", "--resume", b.to_str().unwrap(), "--steps", "6"]);
    assert!(ok, "{err}");
    let (wa, _) = checkpoint::load(&a.join("final.safetensors")).unwrap();
    let (wb, _) = checkpoint::load(&b.join("final.safetensors")).unwrap();
    assert_eq!(wa, wb, "an augmented run resumed is not the run straight through");
    // without augmentation the weights differ: the augmentation did something
    let c = tmp("cifar-plain");
    let (ok, _, err) =
        run(&["train", "--data", &data, "--batch-size", "4", "--steps", "6", "--quiet", "--out", c.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert_ne!(checkpoint::load(&c.join("final.safetensors")).unwrap().0, wa, "--augment changed nothing");
    let o = tmp("cifar-refused");
    let o = o.to_str().unwrap();
    fails(
        &["train", "--data", &data, "--test-fraction", "0.1", "--out", o],
        &["--test-fraction does not apply", "official test split"],
    );
    fails(&["train", "--data", &data, "--target", "coarse", "--out", o], &["--target does not apply"]);
    fails(&["train", "--data", "moons", "--augment", "flip", "--out", o], &["--augment does not apply"]);
    fails(&["train", "--data", "cifar10:/no/such/dir", "--out", o], &["/no/such/dir", "data_batch_1.bin"]);
    fails(&["train", "--data", &data, "--augment", "crop4,rotate", "--out", o], &["unknown 'rotate'"]);
    for d in [&a, &b, &c, &data_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// `compare --bn-mode` says in its report which BatchNorm mode the curvature check used, and a
/// model without BatchNorm mentions none.
#[test]
fn compare_states_its_batchnorm_mode() {
    gpu_or_skip!();
    let model = "input 1x8x8; conv2d(4, k=3, p=1, bias=false); batchnorm2d; relu; flatten; linear(10)";
    for mode in ["train", "eval"] {
        let dir = tmp(&format!("compare-bn-{mode}"));
        let d = dir.to_str().unwrap();
        let (ok, out, err) = run(&[
            "compare",
            "--model",
            model,
            "--optimizers",
            "adam,adahessian",
            "--steps",
            "6",
            "--seeds",
            "1",
            "--lr-factors",
            "1",
            "--batch-sizes",
            "32",
            "--depths",
            "",
            "--label-noise",
            "0",
            "--diagonal-samples",
            "4",
            "--bn-mode",
            mode,
            "--out",
            d,
        ]);
        assert!(ok, "{err}");
        assert!(out.contains(&format!("BatchNorm in {mode} mode (--bn-mode)")), "{out}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
        assert_eq!(report["setup"]["bn_mode"], mode, "{}", report["setup"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `compare --recipe paper` inserts the paper's settings before the user's flags (so a flag
/// given wins, and one the data refuses is refused: the recipe augments images) and sets the
/// paper's table beside the measured one.
#[test]
fn the_paper_recipe_expands_and_reports_the_papers_table() {
    gpu_or_skip!();
    let dir = tmp("recipe");
    let d = dir.to_str().unwrap();
    fails(
        &["compare", "--recipe", "paper", "--data", "moons", "--out", d],
        &["--augment does not apply to --data moons"],
    );
    fails(&["compare", "--recipe", "nosuch", "--out", d], &["--recipe nosuch", "paper"]);
    let (ok, out, err) = run(&[
        "compare",
        "--recipe",
        "paper",
        "--data",
        "digits",
        "--model",
        "mlp:64-16-10:tanh",
        "--optimizers",
        "adam,adahessian",
        "--steps",
        "4",
        "--diagonal-samples",
        "0",
        "--out",
        d,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("## The paper's table beside this run"), "{out}");
    assert!(out.contains("| adam | 90.33 |") && out.contains("| adahessian | 92.13 |"), "{out}");
    assert!(out.contains("seeds 0..1") && out.contains("Step lr schedule"), "the recipe's seeds and schedule: {out}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `landscape --nonconvexity` (Li et al.'s |λmin/λmax| map): at the grid's centre it is the
/// exact Hessian's ratio (from `hessian --exact` on the same rows); a grid that would cost too
/// many HVPs is refused before any work.
#[test]
fn the_nonconvexity_map_matches_the_exact_hessian_at_the_weights() {
    gpu_or_skip!();
    let dir = tmp("nonconvexity");
    let d = dir.to_str().unwrap();
    let (ok, _, err) = run(&[
        "train",
        "--data",
        "xor",
        "--samples",
        "64",
        "--model",
        "mlp:2-4-2:tanh",
        "--steps",
        "40",
        "--quiet",
        "--out",
        d,
    ]);
    assert!(ok, "{err}");
    let npy = dir.join("H.npy");
    let (ok, _, err) = run(&["hessian", "--run", d, "--rows", "40", "--exact", "--out", npy.to_str().unwrap()]);
    assert!(ok, "{err}");
    let h: Vec<f64> = npyz::NpyFile::new(&std::fs::read(&npy).unwrap()[..]).unwrap().into_vec().unwrap();
    let (values, _) = adahessian_wgpu::curvature::eigen::symmetric_eigen(&h, 22);
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, u), v| (l.min(*v), u.max(*v)));
    let want = lo.abs() / hi.abs();
    let out_dir = dir.join("map");
    let (ok, out, err) = run(&[
        "landscape",
        "--run",
        d,
        "--rows",
        "40",
        "--range",
        "-1:1:3",
        "--nonconvexity",
        "--nonconvexity-steps",
        "22",
        "--json",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    let n = &report["splits"][0]["nonconvexity"];
    let got = n["at_weights"].as_f64().unwrap();
    assert!((got - want).abs() <= 1e-4 * want.max(1e-3), "|λmin/λmax| {got} vs exact {want}");
    assert_eq!(n["hvps"].as_u64().unwrap(), 9 * 22, "{n}");
    let grid = std::fs::read_to_string(out_dir.join("grid.csv")).unwrap();
    assert!(grid.starts_with("split,a,b,loss,accuracy,nonconvexity\n") && grid.lines().count() == 10, "{grid}");
    assert!(out_dir.join("nonconvexity_train.png").is_file());
    fails(
        &["landscape", "--run", d, "--range", "-1:1:301", "--nonconvexity", "--out", out_dir.to_str().unwrap()],
        &["HVPs", "coarser grid"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
