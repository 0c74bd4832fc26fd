//! The CIFAR ResNet presets: the architecture and names of the widely used PyTorch
//! implementation (ResNet-20 has its 269,722 parameters), its init, the shortcut-free variant,
//! refusals, and a small one's loss, gradient and H·z on the GPU against the f64 model in both
//! BatchNorm modes.

mod common;

use adahessian_wgpu::block_on;
use adahessian_wgpu::nn::{parse_resnet, reference, resnet_cifar, Batch, BnMode, ModelSpec, Network, NetworkOptions};
use common::{random_data, to_f64, uniform, Tolerance};

#[test]
fn resnet20_has_the_cifar_resnets_architecture_names_and_init() {
    let spec = parse_resnet("resnet20", &[3, 32, 32], 10).unwrap().unwrap();
    let model = spec.resolve().unwrap();
    // 432 + 32 (stem) + 14,016 + 51,072 + 203,520 (stages: 3×3 convs without bias, BatchNorm's γ, β)
    // + 650 (linear): the "0.27M" of He et al.'s Table 6
    assert_eq!(model.n_params, 269_722, "ResNet-20 (option A) for CIFAR-10");
    let get = |n: &str| model.param(n).unwrap_or_else(|| panic!("{n} missing")).shape.clone();
    assert_eq!(get("conv1.weight"), [16, 3, 3, 3]);
    assert_eq!(get("bn1.weight"), [16]);
    assert_eq!(get("layer1.2.conv2.weight"), [16, 16, 3, 3]);
    assert_eq!(get("layer2.0.conv1.weight"), [32, 16, 3, 3]);
    assert_eq!(get("layer3.2.bn2.bias"), [64]);
    assert_eq!(get("linear.weight"), [10, 64]);
    assert_eq!(get("linear.bias"), [10]);
    assert!(model.param("conv1.bias").is_none() && model.param("layer1.0.conv1.bias").is_none(), "bias-free convs");
    let prefixes: Vec<&str> = model.running.iter().map(|r| r.prefix.as_str()).collect();
    assert_eq!(prefixes.len(), 19);
    assert_eq!((prefixes[0], prefixes[18]), ("bn1", "layer3.2.bn2"));
    // the text and JSON forms keep the names; the shortcut-free twin has the same tensors
    assert_eq!(ModelSpec::parse(&spec.to_json()).unwrap(), spec);
    assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
    let plain = parse_resnet("resnet:20:16:noshort", &[3, 32, 32], 10).unwrap().unwrap().resolve().unwrap();
    assert_eq!(plain.params, model.params);
    assert!(plain.layers.len() < model.layers.len(), "no add layers");
    // kaiming_normal_: std √(2 / fan_in) for conv and linear weights, γ = 1, β = 0
    let theta = spec.init_params(0).unwrap();
    let p = model.param("layer3.0.conv2.weight").unwrap();
    let w = &theta[p.offset..p.offset + p.len()];
    let std = (w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    let want = (2.0f64 / (64.0 * 9.0)).sqrt();
    assert!((std / want - 1.0).abs() < 0.05, "std {std} vs {want}");
    let g = model.param("layer2.1.bn1.weight").unwrap();
    assert!(theta[g.offset..g.offset + g.len()].iter().all(|&v| v == 1.0));
    // widths and depths
    let r110 = resnet_cifar(110, 16, true, &[3, 32, 32], 10).unwrap().resolve().unwrap();
    assert!(r110.param("layer3.17.bn2.weight").is_some());
    let mnist = parse_resnet("resnet:8:4", &[1, 28, 28], 10).unwrap().unwrap();
    assert_eq!(mnist.resolve().unwrap().param("conv1.weight").unwrap().shape, [4, 1, 3, 3]);
    // PyHessian's comparison: the same network without BatchNorm (bias-free convs, the same names)
    let nobn = parse_resnet("resnet:20:16:nobn", &[3, 32, 32], 10).unwrap().unwrap().resolve().unwrap();
    assert!(nobn.running.is_empty() && nobn.param("bn1.weight").is_none());
    assert_eq!(nobn.param("layer2.0.conv2.weight").unwrap().shape, [32, 32, 3, 3]);
    assert_eq!(nobn.n_params, 269_722 - 2 * (16 + 3 * 2 * 16 + 3 * 2 * 32 + 3 * 2 * 64), "BatchNorm's γ, β are gone");
    let neither = parse_resnet("resnet:20:16:noshort+nobn", &[3, 32, 32], 10).unwrap().unwrap().resolve().unwrap();
    assert_eq!(neither.params, nobn.params);
    assert!(neither.layers.len() < nobn.layers.len(), "no add layers");
    // option B where the width doubles: a 1×1 conv and a BatchNorm per stage change, under the
    // names of the PyTorch CIFAR ResNets with projection shortcuts
    let proj = parse_resnet("resnet:20:16:proj", &[3, 32, 32], 10).unwrap().unwrap().resolve().unwrap();
    assert_eq!(proj.param("layer2.0.shortcut.0.weight").unwrap().shape, [32, 16, 1, 1]);
    assert_eq!(proj.param("layer3.0.shortcut.1.bias").unwrap().shape, [64]);
    assert!(proj.param("layer1.0.shortcut.0.weight").is_none() && proj.param("layer2.1.shortcut.0.weight").is_none());
    assert_eq!(proj.n_params, 269_722 + (32 * 16 + 2 * 32) + (64 * 32 + 2 * 64));
    assert!(proj.running.iter().any(|r| r.prefix == "layer2.0.shortcut.1"));
    // with a width option A cannot pad (odd), option B still builds
    assert!(parse_resnet("resnet:8:5:proj", &[3, 8, 8], 10).unwrap().is_ok());
    for (bad, says) in [
        ("resnet:20:16:proj+noshort", "cannot go with"),
        ("resnet:20:16:proj+proj", "twice"),
        ("resnet:20:16:nobn+nobn", "twice"),
        ("resnet:20:16:noshort+bn", "'bn' is not"),
        ("resnet21", "6n+2"),
        ("resnet:20:15", "even"),
        ("resnet:20:16:short", "noshort"),
        ("resnet:x", "not a whole number"),
    ] {
        let err = parse_resnet(bad, &[3, 32, 32], 10).unwrap().unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
    assert!(parse_resnet("mlp:4-2", &[3, 32, 32], 10).is_none());
    assert!(parse_resnet("resnet:8", &[64], 10).unwrap().unwrap_err().to_string().contains("images"));
}

#[test]
fn a_small_resnet_matches_the_f64_model_on_the_gpu_in_both_bn_modes() {
    let gpu = gpu_or_skip!();
    for text in ["resnet:8:4", "resnet:8:4:noshort", "resnet:8:4:nobn", "resnet:8:4:proj"] {
        let spec = parse_resnet(text, &[3, 8, 8], 5).unwrap().unwrap();
        let model = spec.resolve().unwrap();
        let rows = 3;
        let net = Network::new(gpu, &spec, NetworkOptions::new(rows, 1)).unwrap();
        let ds = random_data(&model, rows, 2);
        let data = common::bind(gpu, &net, &ds);
        let indices: Vec<u32> = (0..rows as u32).collect();
        let batch = Batch { data: &data, indices: &indices };
        let theta = to_f64(&block_on(net.params(gpu)).unwrap());
        let running = to_f64(&block_on(net.running_stats(gpu)).unwrap());
        let (x, t) = (to_f64(&ds.x), to_f64(&ds.targets.as_f32()));
        let mut rng = adahessian_wgpu::probe::SplitMix64::new(6);
        let z32 = uniform(&mut rng, model.n_params, -1.0, 1.0);
        let z = to_f64(&z32);
        for mode in [BnMode::Train, BnMode::Eval] {
            net.set_bn_mode(mode);
            let m = common::norm_mode(mode, &running);
            let want = reference::pass_in(m, &model, &theta, &x, &t, rows, Some(&z));
            let label = format!("{text} {}", mode.name());
            let (loss, g) = block_on(net.gradient(gpu, &batch)).unwrap();
            Tolerance::F32_MODEL.check(&format!("{label} loss"), &[loss], &[want.loss]);
            Tolerance::F32_MODEL.scaled_by(&want.grad, 1e-4).check(&format!("{label} gradient"), &g, &want.grad);
            let hz = block_on(net.hvp(gpu, &batch, &z32)).unwrap();
            let want_hz = want.hz.as_ref().unwrap();
            Tolerance::F32_MODEL.scaled_by(want_hz, 1e-4).check(&format!("{label} Hz"), &hz, want_hz);
        }
    }
}

/// A batch whose activation arena is larger than one storage binding (128 MiB under WebGPU's
/// default limits): each layer binds only its window of the arena, so the network builds, and in
/// eval mode (rows independent) its loss, gradient and H·z are the row-weighted means of the
/// same network's on chunks of the batch. For a residual network and for a chain (whose shared
/// slots then move from one region at the end of the arena to near their nodes).
#[test]
fn an_arena_larger_than_one_binding_gives_the_chunked_results() {
    let gpu = gpu_or_skip!();
    for text in ["resnet:8", "resnet:8:16:noshort", "resnet:8:16:proj"] {
        chunked_results_match(gpu, text);
    }
}

fn chunked_results_match(gpu: &adahessian_wgpu::gpu::Gpu, text: &str) {
    let spec = parse_resnet(text, &[3, 32, 32], 10).unwrap().unwrap();
    let model = spec.resolve().unwrap();
    let arena = |net: &Network| {
        let m = net.memory();
        m.values + m.tangents + m.cotangents + m.scratch + m.padding
    };
    let chunk = 8;
    let small = Network::new(gpu, &spec, NetworkOptions::new(chunk, 3)).unwrap();
    let binding = gpu.limits().max_storage_buffer_binding_size;
    let per_row = arena(&small) / chunk as u64;
    let rows = ((binding / per_row) as usize + chunk).next_multiple_of(chunk);
    let big = Network::new(gpu, &spec, NetworkOptions::new(rows, 3)).unwrap();
    assert!(arena(&big) > binding, "{text}: {} bytes for {rows} rows", arena(&big));
    assert_eq!(block_on(big.params(gpu)).unwrap(), block_on(small.params(gpu)).unwrap(), "one initialisation");
    let ds = random_data(&model, rows, 4);
    let (on_big, on_small) = (common::bind(gpu, &big, &ds), common::bind(gpu, &small, &ds));
    let mut rng = adahessian_wgpu::probe::SplitMix64::new(8);
    let z = uniform(&mut rng, model.n_params, -1.0, 1.0);
    for net in [&big, &small] {
        net.set_bn_mode(BnMode::Eval);
    }
    let all: Vec<u32> = (0..rows as u32).collect();
    let batch = Batch { data: &on_big, indices: &all };
    let (loss, g) = block_on(big.gradient(gpu, &batch)).unwrap();
    let hz = block_on(big.hvp(gpu, &batch, &z)).unwrap();
    let (mut want_loss, mut want_g, mut want_hz) = (0.0, vec![0.0; model.n_params], vec![0.0; model.n_params]);
    for part in all.chunks(chunk) {
        let batch = Batch { data: &on_small, indices: part };
        let (l, gc) = block_on(small.gradient(gpu, &batch)).unwrap();
        let hc = block_on(small.hvp(gpu, &batch, &z)).unwrap();
        let w = part.len() as f64 / rows as f64;
        want_loss += w * l as f64;
        for (acc, v) in want_g.iter_mut().zip(&gc).chain(want_hz.iter_mut().zip(&hc)) {
            *acc += w * *v as f64;
        }
    }
    let tol = Tolerance::F32_MODEL;
    tol.check(&format!("{text} loss"), &[loss], &[want_loss]);
    tol.scaled_by(&want_g, 1e-4).check(&format!("{text} gradient"), &g, &want_g);
    tol.scaled_by(&want_hz, 1e-4).check(&format!("{text} H z"), &hz, &want_hz);
}
