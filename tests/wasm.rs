//! In the browser (wasm-bindgen-test, headless Chromium, WebGPU on SwiftShader): the web build's
//! Hessian-vector product and AdaHessian step agree with the f64 references on a tiny model.
//! Run by tests/web.rs:
//! `cargo test --target wasm32-unknown-unknown --no-default-features --features web --test wasm`
//! with wasm-bindgen-test-runner as the runner and web/webdriver.json's browser flags.
#![cfg(target_arch = "wasm32")]

use adahessian_wgpu::data::{Dataset, DeviceDataset, Targets};
use adahessian_wgpu::gpu::{Gpu, GpuOptions};
use adahessian_wgpu::nn::{reference, Activation, Batch, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::optim::{reference as oref, AdaHessianConfig, Estimate, Method, Optimizer, OptimizerConfig};
use adahessian_wgpu::probe::{ProbeKey, ProbeKind, SplitMix64};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn close(what: &str, got: &[f32], want: &[f64]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (*g as f64 - w).abs();
        assert!(err <= 5e-6 + 2e-4 * w.abs(), "{what}[{i}]: got {g}, want {w}");
    }
}

#[wasm_bindgen_test]
async fn web_hvp_and_adahessian_step_match_the_f64_references() {
    let gpu = Gpu::new(GpuOptions { backends: Some(wgpu::Backends::BROWSER_WEBGPU), ..Default::default() })
        .await
        .unwrap_or_else(|e| panic!("no WebGPU in the test browser: {e}"));
    let spec = ModelSpec::mlp(&[3, 4, 2], Activation::Tanh, Loss::CrossEntropy);
    let model = spec.resolve().unwrap();
    let net = Network::new(&gpu, &spec, NetworkOptions::new(5, 1)).unwrap();
    let mut rng = SplitMix64::new(3);
    let x: Vec<f32> = (0..15).map(|_| rng.normal() as f32).collect();
    let labels: Vec<u32> = (0..5).map(|i| i % 2).collect();
    let ds = Dataset::new(x, 3, Targets::Classes { labels, classes: 2 }).unwrap();
    let data = net.bind(&gpu, &DeviceDataset::upload(&gpu, &ds).unwrap()).unwrap();
    let indices: Vec<u32> = (0..5).collect();
    let batch = Batch { data: &data, indices: &indices };
    let f64s = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let theta = f64s(&net.params(&gpu).await.unwrap());
    let (xs, ts) = (f64s(&ds.x), f64s(&ds.targets.as_f32()));

    let v: Vec<f32> = (0..model.n_params).map(|_| rng.normal() as f32).collect();
    let hv = net.hvp(&gpu, &batch, &v).await.unwrap();
    close("H v", &hv, &reference::hvp(&model, &theta, &xs, &ts, 5, &f64s(&v)));

    let config = AdaHessianConfig { seed: 5, ..Default::default() };
    let mut opt = Optimizer::new(&gpu, &net, OptimizerConfig::AdaHessian(config)).unwrap();
    opt.step(&gpu, &net, &batch).unwrap();
    let z = f64s(&ProbeKey { seed: 5, step: 1, sample: 0 }.vector(ProbeKind::Rademacher, model.n_params));
    let g = reference::gradient(&model, &theta, &xs, &ts, 5);
    let hz = reference::hvp(&model, &theta, &xs, &ts, 5, &z);
    let d = oref::curvature_estimate(Estimate::AbsMean, &[z], &[hz], &[]);
    let mut want = theta.clone();
    config.reference_step(&mut want, &g, Some(&d), &mut oref::State::new(model.n_params));
    // as tests/common's check_steps: f32 rounding of θ plus 2e-4 of the step itself
    for (i, (g, w)) in net.params(&gpu).await.unwrap().iter().zip(&want).enumerate() {
        let bound = 1e-6 + 1e-5 * w.abs() + 2e-4 * (w - theta[i]).abs();
        assert!((*g as f64 - w).abs() <= bound, "θ after one AdaHessian step [{i}]: got {g}, want {w}");
    }
}
