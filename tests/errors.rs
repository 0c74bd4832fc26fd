//! Bad input gets a clear error that names the problem and the fix, never a panic.

mod common;

use adahessian_wgpu::data::{self, Dataset, DeviceDataset, Targets};
use adahessian_wgpu::gpu::{parse_backend, Gpu, GpuOptions};
use adahessian_wgpu::nn::{Activation, Batch, Layer, Loss, ModelSpec, Network, NetworkOptions};
use adahessian_wgpu::{block_on, Error};

#[test]
fn malformed_csv_is_refused_with_line_and_column() {
    let e = data::parse_labelled_csv("a,b,label\n1,2,0\n1,x,1\n", "t.csv", 2).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("'x' is not a number"), "{e}");
    let e = data::parse_labelled_csv("a,b,label\n1,2\n", "t.csv", 2).unwrap_err().to_string();
    assert!(e.contains("2 cells") && e.contains("header has 3"), "{e}");
    let e = data::parse_labelled_csv("a,b,label\n1,2,7\n", "t.csv", 2).unwrap_err().to_string();
    assert!(e.contains("label 7"), "{e}");
    let e = data::parse_labelled_csv("a,b,label\n1,NaN,0\n", "t.csv", 2).unwrap_err().to_string();
    assert!(e.contains("NaN"), "{e}");
    let e = data::parse_labelled_csv("", "t.csv", 2).unwrap_err().to_string();
    assert!(e.contains("empty"), "{e}");
    assert!(data::gunzip_text(b"not gzip", "x.gz").is_err());
}

#[test]
fn model_shape_errors_name_the_layer() {
    let e = ModelSpec {
        input: vec![0],
        layers: vec![Layer::Dense { out: 2, bias: true }],
        loss: Loss::Mse,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    }
    .resolve()
    .unwrap_err();
    assert!(e.to_string().contains("input shape [0]"), "{e}");
    let e = ModelSpec {
        input: vec![3],
        layers: vec![Layer::Dense { out: 0, bias: true }],
        loss: Loss::Mse,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    }
    .resolve()
    .unwrap_err();
    assert!(e.to_string().contains("layer 0 (Linear) has 0 outputs"), "{e}");
    let e = ModelSpec {
        input: vec![3],
        layers: vec![Layer::Activation(Activation::Tanh)],
        loss: Loss::Mse,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    }
    .resolve()
    .unwrap_err();
    assert!(e.to_string().contains("no layer with parameters (linear, conv2d, batchnorm, layernorm)"), "{e}");
    assert!(parse_backend("cuda").unwrap_err().to_string().contains("use vulkan"));
}

#[test]
fn names_and_shapes_follow_pytorch_sequential() {
    let spec = ModelSpec::mlp(&[64, 128, 10], Activation::Tanh, Loss::CrossEntropy);
    let m = spec.resolve().unwrap();
    let names: Vec<(&str, Vec<usize>)> = m.params.iter().map(|p| (p.name.as_str(), p.shape.clone())).collect();
    assert_eq!(
        names,
        vec![("0.weight", vec![128, 64]), ("0.bias", vec![128]), ("2.weight", vec![10, 128]), ("2.bias", vec![10])]
    );
    // identities keep their Sequential index
    let spec = ModelSpec {
        input: vec![3],
        layers: vec![
            Layer::Dense { out: 4, bias: true },
            Layer::Activation(Activation::Identity),
            Layer::Dense { out: 2, bias: true },
        ],
        loss: Loss::Mse,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    };
    assert_eq!(spec.resolve().unwrap().params[2].name, "2.weight");
    // PyTorch's nn.Linear init: every value within ±1/√fan_in, and not all equal
    let theta = ModelSpec::mlp(&[64, 128, 10], Activation::Tanh, Loss::CrossEntropy).init_params(3).unwrap();
    let m = ModelSpec::mlp(&[64, 128, 10], Activation::Tanh, Loss::CrossEntropy).resolve().unwrap();
    for p in &m.params {
        let bound = 1.0 / (p.fan_in as f32).sqrt();
        let vals = &theta[p.offset..p.offset + p.len()];
        assert!(vals.iter().all(|v| v.abs() <= bound), "{}", p.name);
        let mean_abs = vals.iter().map(|v| v.abs()).sum::<f32>() / vals.len() as f32;
        assert!((mean_abs - bound / 2.0).abs() < 0.2 * bound, "{}: mean |θ| {mean_abs} vs U(±{bound})", p.name);
    }
}

#[test]
fn gpu_input_errors_are_clear() {
    let gpu = gpu_or_skip!();
    let spec = ModelSpec::mlp(&[4, 3, 2], Activation::Relu, Loss::CrossEntropy);
    let net = Network::new(gpu, &spec, NetworkOptions::new(4, 0)).unwrap();
    // data with the wrong number of features
    let ds = Dataset::new(vec![0.0; 15], 5, Targets::Classes { labels: vec![0, 1, 0], classes: 2 }).unwrap();
    let e = net.bind(gpu, &DeviceDataset::upload(gpu, &ds).unwrap()).err().unwrap().to_string();
    assert!(e.contains("5 features") && e.contains("expects 4"), "{e}");
    // more classes than logits
    let ds = Dataset::new(vec![0.0; 12], 4, Targets::Classes { labels: vec![0, 1, 2], classes: 3 }).unwrap();
    let e = net.bind(gpu, &DeviceDataset::upload(gpu, &ds).unwrap()).err().unwrap().to_string();
    assert!(e.contains("3 classes") && e.contains("2 logits"), "{e}");
    // regression targets for a classification loss
    let ds = Dataset::new(vec![0.0; 12], 4, Targets::Values { values: vec![0.0; 6], width: 2 }).unwrap();
    assert!(net.bind(gpu, &DeviceDataset::upload(gpu, &ds).unwrap()).is_err());
    // batch problems
    let ds = Dataset::new(vec![0.0; 24], 4, Targets::Classes { labels: vec![0; 6], classes: 2 }).unwrap();
    let data = net.bind(gpu, &DeviceDataset::upload(gpu, &ds).unwrap()).unwrap();
    let too_many: Vec<u32> = (0..5).collect();
    let e = block_on(net.loss(gpu, &Batch { data: &data, indices: &too_many })).unwrap_err().to_string();
    assert!(e.contains("max_batch 4"), "{e}");
    let e = block_on(net.loss(gpu, &Batch { data: &data, indices: &[9] })).unwrap_err().to_string();
    assert!(e.contains("row index 9"), "{e}");
    assert!(block_on(net.loss(gpu, &Batch { data: &data, indices: &[] })).is_err());
    // wrong direction length, wrong tensor name and shape, NaN weights
    assert!(block_on(net.hvp(gpu, &Batch { data: &data, indices: &[0] }, &[1.0; 3])).is_err());
    let e = net.set_tensor(gpu, "1.weight", &[3, 4], &[0.0; 12]).unwrap_err().to_string();
    assert!(e.contains("no parameter named '1.weight'") && e.contains("0.weight"), "{e}");
    let e = net.set_tensor(gpu, "0.weight", &[4, 3], &[0.0; 12]).unwrap_err().to_string();
    assert!(e.contains("[3, 4]"), "{e}");
    assert!(net.set_params(gpu, &vec![f32::NAN; net.n_params()]).is_err());
    assert!(gpu.check().is_ok(), "no wgpu validation error may be left behind");
}

#[test]
fn a_model_too_large_for_the_device_names_the_limit() {
    let gpu = gpu_or_skip!();
    // 8192 × 8192 weights = 256 MiB of f32: over WebGPU's default 128 MiB binding limit
    let spec = ModelSpec::mlp(&[8192, 8192], Activation::Identity, Loss::Mse);
    match Network::new(gpu, &spec, NetworkOptions::new(1, 0)) {
        Err(Error::LimitExceeded { limit_name, .. }) => {
            assert_eq!(limit_name, "maxStorageBufferBindingSize")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a 256 MiB parameter arena must be refused"),
    }
    // and a huge batch of activations
    let spec = ModelSpec::mlp(&[4, 4096, 2], Activation::Tanh, Loss::Mse);
    let e = Network::new(gpu, &spec, NetworkOptions::new(4096, 0)).err().unwrap().to_string();
    assert!(e.contains("activation arena") && e.contains("maxStorageBufferBindingSize"), "{e}");
}

#[test]
fn asking_for_a_missing_adapter_lists_the_available_ones() {
    gpu_or_skip!();
    let options = GpuOptions { adapter: Some("no-such-gpu-xyz".into()), ..Default::default() };
    match Gpu::new_blocking(options) {
        Err(Error::AdapterNotFound { available, .. }) => assert!(!available.is_empty()),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("found a GPU named no-such-gpu-xyz"),
    }
}
