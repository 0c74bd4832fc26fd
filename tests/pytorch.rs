//! model.py: the generated PyTorch module loads a run's safetensors with `strict=True` and gives
//! the same outputs (eval mode) and the same train-mode loss (batch statistics) as the GPU, in
//! float64, for MLPs, CNNs with every layer kind, residual blocks with both shortcuts and the
//! CIFAR ResNet's names. Where python3 with torch is absent, the test says so and checks the
//! names it can: every tensor's module is registered in model.py under its prefix.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::checkpoint::{self, NamedTensor};
use adahessian_wgpu::nn::{pytorch, resnet_cifar, Batch, BnMode, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::probe::SplitMix64;
use adahessian_wgpu::session;
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

fn torch_available() -> bool {
    Command::new("python3").args(["-c", "import torch"]).output().is_ok_and(|o| o.status.success())
}

/// The check PyTorch runs on one model directory: the module loads strictly, and its float64
/// outputs and train-mode loss are printed as JSON for the test to compare.
const CHECK: &str = r#"
import json, sys, importlib.util
import torch
d = sys.argv[1]
spec = importlib.util.spec_from_file_location("model", d + "/model.py")
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
m = mod.Model()
m.load_state_dict(mod.load_safetensors(d + "/final.safetensors"), strict=True)
data = mod.load_safetensors(d + "/data.safetensors")
m = m.double()
x, y = data["x"].double(), data["y"].double()
m.eval()
with torch.no_grad():
    out = m(x)
m.train()
with torch.no_grad():
    train_loss = mod.loss(m(x), y)
print(json.dumps({"outputs": out.flatten().tolist(), "train_loss": float(train_loss),
                  "parameters": sum(p.numel() for p in m.parameters()), "declared": mod.PARAMETERS}))
"#;

fn check(name: &str, spec: ModelSpec, rows: usize) {
    let gpu = gpu_or_skip!();
    let model = spec.resolve().unwrap();
    let net = Network::new(gpu, &spec, NetworkOptions::new(rows, 11)).unwrap();
    let mut rng = SplitMix64::new(5);
    common::randomize_running(gpu, &net, &mut rng);
    // move γ and β off 1 and 0 so a wrong affine would show
    for p in model.params.iter().filter(|p| !p.role.is_weight()) {
        let v = common::uniform(&mut rng, p.len(), -0.5, 1.5);
        net.set_tensor(gpu, &p.name, &p.shape, &v).unwrap();
    }
    let ds = common::random_data(&model, rows, 3);
    let bound = common::bind(gpu, &net, &ds);
    let indices: Vec<u32> = (0..rows as u32).collect();
    let batch = Batch { data: &bound, indices: &indices };
    net.set_bn_mode(BnMode::Eval);
    let outputs = block_on(net.predict(gpu, &batch)).unwrap();
    net.set_bn_mode(BnMode::Train);
    let train_loss = block_on(net.loss(gpu, &batch)).unwrap().loss as f64;

    let dir = std::env::temp_dir().join(format!("adahessian-pytorch-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let py = pytorch::model_py(&spec).unwrap();
    std::fs::write(dir.join("model.py"), &py).unwrap();
    let weights = session::weights(gpu, &net).unwrap();
    checkpoint::save(&dir.join("final.safetensors"), &weights, HashMap::new()).unwrap();
    let targets = ds.targets.as_f32();
    let data = vec![
        NamedTensor { name: "x".into(), shape: vec![rows, ds.features], values: ds.x.clone() },
        NamedTensor { name: "y".into(), shape: vec![rows, targets.len() / rows], values: targets },
    ];
    checkpoint::save(&dir.join("data.safetensors"), &data, HashMap::new()).unwrap();

    // what holds without torch: each tensor's module is registered under its prefix
    for t in &weights {
        let prefix = t.name.rsplit_once('.').unwrap().0;
        assert!(py.contains(&format!("_put(self, \"{prefix}\",")), "{name}: model.py registers no module '{prefix}'");
    }
    if !torch_available() {
        eprintln!("{name}: python3 with torch is absent: model.py's names were checked, not its outputs");
        return;
    }
    let out = Command::new("python3").args(["-c", CHECK, dir.to_str().unwrap()]).output().unwrap();
    assert!(
        out.status.success(),
        "{name}: PyTorch could not load or run model.py:\n{}\n{py}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let torch_out: Vec<f64> = report["outputs"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(report["parameters"], report["declared"], "{name}");
    assert_eq!(report["parameters"].as_u64().unwrap() as usize, model.n_params, "{name}");
    let scale = torch_out.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    common::Tolerance { atol: 2e-5 * scale, rtol: 2e-4 }.check(
        &format!("{name}: eval outputs vs PyTorch"),
        &outputs,
        &torch_out,
    );
    let want = report["train_loss"].as_f64().unwrap();
    common::Tolerance::F32_MODEL.check(&format!("{name}: train-mode loss vs PyTorch"), &[train_loss], &[want]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_mlp_with_layernorm_and_batchnorm1d_matches_pytorch() {
    check(
        "mlp",
        ModelSpec::parse("input 6; linear(5); batchnorm1d; tanh; linear(7, bias=false); layernorm; gelu; linear(3)")
            .unwrap(),
        5,
    );
    check("mse", ModelSpec::parse("mlp:4-6-2:softplus:mse").unwrap(), 4);
}

#[test]
fn a_cnn_with_every_layer_kind_matches_pytorch() {
    let text = "input 2x9x9; conv2d(3, k=3, p=1); sigmoid; maxpool2d(2); conv2d(4, k=(3, 1), s=(2, 1), p=(1, 0), bias=false); \
                batchnorm2d; relu; avgpool2d(2, 1); flatten; linear(5); layernorm; linear(3)";
    check("cnn", ModelSpec::parse(text).unwrap(), 3);
    check(
        "gap",
        ModelSpec::parse("input 3x5x5; conv2d(4, k=3); batchnorm2d; relu; globalavgpool; flatten; linear(2)").unwrap(),
        2,
    );
}

#[test]
fn residual_blocks_with_both_shortcuts_match_pytorch() {
    let text = "input 2x6x6; conv2d(4, k=3, p=1); relu; \
                residual(shortcut=pad) { conv2d(8, k=3, s=2, p=1, bias=false); batchnorm2d; relu; conv2d(8, k=3, p=1) }; relu; \
                residual { conv2d(8, k=3, p=1); layernorm }; flatten; linear(6); \
                residual { linear(6); batchnorm1d; tanh }; linear(3)";
    check("residual", ModelSpec::parse(text).unwrap(), 3);
    let option_b = "input 2x5x5; residual(shortcut=conv) { conv2d(4, k=3, s=2, p=1, bias=false); batchnorm2d; relu; \
                    conv2d(4, k=3, p=1) }; relu; flatten; linear(3)";
    check("residual-option-b", ModelSpec::parse(option_b).unwrap(), 3);
}

#[test]
fn the_cifar_resnet_loads_under_its_own_names() {
    check("resnet8", resnet_cifar(8, 4, true, &[3, 8, 8], 10).unwrap(), 2);
    check("resnet8-noshort", resnet_cifar(8, 4, false, &[3, 8, 8], 10).unwrap(), 2);
    let proj = adahessian_wgpu::nn::parse_resnet("resnet:8:4:proj", &[3, 8, 8], 10).unwrap().unwrap();
    check("resnet8-proj", proj, 2);
    let _ = Path::new(".");
}
