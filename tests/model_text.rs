//! The human-readable model description (CPU only): parsing, round trips and the errors a person
//! sees for a typo or a shape mismatch.

use adahessian_wgpu::nn::{Activation, Layer, Loss, ModelSpec};

const DIGITS_CNN: &str = "
input 1x8x8
conv2d(16, k=3, p=1)   # same padding
relu
maxpool2d(2)
conv2d(32, 3, p=1)
relu
maxpool2d(2)
flatten
linear(10)
loss cross_entropy
";

#[test]
fn the_text_form_describes_a_cnn() {
    let spec = ModelSpec::parse(DIGITS_CNN).unwrap();
    assert_eq!(spec.input, vec![1, 8, 8]);
    assert_eq!(spec.layers[0], Layer::Conv2d { out: 16, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true });
    assert_eq!(spec.layers[2], Layer::MaxPool2d { kernel: (2, 2), stride: (2, 2) });
    let m = spec.resolve().unwrap();
    let names: Vec<(&str, Vec<usize>)> = m.params.iter().map(|p| (p.name.as_str(), p.shape.clone())).collect();
    assert_eq!(
        names,
        vec![
            ("0.weight", vec![16, 1, 3, 3]),
            ("0.bias", vec![16]),
            ("3.weight", vec![32, 16, 3, 3]),
            ("3.bias", vec![32]),
            ("7.weight", vec![10, 128]),
            ("7.bias", vec![10]),
        ]
    );
    // round trips through the text and JSON forms, and the one-line form
    assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
    assert_eq!(ModelSpec::parse(&spec.to_line()).unwrap(), spec, "the one-line form too");
    assert_eq!(ModelSpec::parse(&spec.to_json()).unwrap(), spec);
    let one_line = DIGITS_CNN
        .lines()
        .map(|l| l.split('#').next().unwrap().trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    assert_eq!(ModelSpec::parse(&one_line).unwrap(), spec);
}

#[test]
fn every_layer_kind_parses() {
    let spec = ModelSpec::parse(
        "input 3x9x7; conv2d(4, k=5x3, s=2x1, p=2x0); gelu; avgpool2d(2, s=1); conv(2, 1); sigmoid; \
         globalavgpool; flatten; linear(5); softplus; dense(2); tanh; identity; linear(1); loss mse",
    )
    .unwrap();
    assert_eq!(spec.loss, Loss::Mse);
    assert_eq!(spec.layers[0], Layer::Conv2d { out: 4, kernel: (5, 3), stride: (2, 1), padding: (2, 0), bias: true });
    assert_eq!(spec.layers[2], Layer::AvgPool2d { kernel: (2, 2), stride: (1, 1) });
    assert_eq!(spec.layers[5], Layer::GlobalAvgPool);
    assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
}

#[test]
fn the_mlp_shorthand_matches_the_builder() {
    assert_eq!(
        ModelSpec::parse("mlp:64-128-10:tanh").unwrap(),
        ModelSpec::mlp(&[64, 128, 10], Activation::Tanh, Loss::CrossEntropy)
    );
    assert_eq!(
        ModelSpec::parse("mlp:2-8-1:gelu:mse").unwrap(),
        ModelSpec::mlp(&[2, 8, 1], Activation::Gelu, Loss::Mse)
    );
}

#[test]
fn mistakes_get_errors_that_name_the_layer_and_the_fix() {
    let err = |t: &str| ModelSpec::parse(t).unwrap_err().to_string();
    let e = err("input 1x8x8; conv2d(4, k=3); relu; linear(10)");
    assert!(e.contains("layer 2 (Linear)") && e.contains("[4, 6, 6]") && e.contains("add Flatten"), "{e}");
    let e = err("input 1x4x4; conv2d(4, k=7)");
    assert!(e.contains("layer 0 (Conv2d)") && e.contains("larger than its padded input"), "{e}");
    let e = err("input 64; linear(10); softmax");
    assert!(e.contains("layer 1 'softmax'") && e.contains("unknown layer"), "{e}");
    let e = err("input 64; linear(10");
    assert!(e.contains("missing ')'"), "{e}");
    let e = err("input 64; linear(ten)");
    assert!(e.contains("'ten' is not a whole number"), "{e}");
    let e = err("linear(10)");
    assert!(e.contains("needs an 'input' line"), "{e}");
    let e = err("input 1x8x8; conv2d(4, k=3)");
    assert!(e.contains("ends with shape [4, 6, 6]"), "{e}");
    let e = err("input 64; linear(10); loss hinge");
    assert!(e.contains("unknown loss 'hinge'"), "{e}");
    let e = err("{\"input\": [64], \"layers\": [\"linear(10)\", 3]}");
    assert!(e.contains("layer 1 must be a string"), "{e}");
    let e = err("{\"input\": 64");
    assert!(e.contains("malformed"), "{e}");
    let e = err("mlp:64");
    assert!(e.contains("at least an input and an output"), "{e}");
    let e = err("input 2x8; linear(3)");
    assert!(e.contains("[features] or [channels, height, width]"), "{e}");
}

/// Sizes past what the kernels address are refused by name, never wrapped: a debug build would
/// panic on the overflow and a release build would train a garbage geometry.
#[test]
fn sizes_that_would_overflow_are_refused() {
    let err = |t: &str| ModelSpec::parse(t).unwrap_err().to_string();
    let max = usize::MAX;
    let e = err(&format!("input 64; linear({max})"));
    assert!(e.contains("more than 2^64 parameters") && e.contains("2^31"), "{e}");
    let e = err(&format!("input 1x8x8; conv2d(4, k=3, p={max}); flatten; linear(2)"));
    assert!(e.contains("layer 0 (Conv2d)") && e.contains("at most 2^24"), "{e}");
    let e = err(&format!("input 1x8x8; conv2d({max}, k=3); flatten; linear(2)"));
    assert!(e.contains("layer 0 (Conv2d)") && e.contains("at most 2^24"), "{e}");
    let e = err("input 1x8x8; conv2d(4, k=3, p=5000000); flatten; linear(2)");
    assert!(e.contains("more than 2^31 values"), "{e}");
    let e = err(&format!("input 1x8x8; maxpool2d(2, s={max}); flatten; linear(2)"));
    assert!(e.contains("layer 0 (MaxPool2d)") && e.contains("at most 2^24"), "{e}");
    let e = err(&format!("input {}x{}x{}; flatten; linear(2)", 1 << 20, 1 << 20, 1 << 20));
    assert!(e.contains("the input shape") && e.contains("more than this library addresses"), "{e}");
    let e = err(&format!("input {max}; linear(2)"));
    assert!(e.contains("the input shape"), "{e}");
    let e = adahessian_wgpu::nn::resnet_cifar(6 * (max / 6) + 2, 16, true, &[3, 32, 32], 10).unwrap_err().to_string();
    assert!(e.contains("deeper than this library builds"), "{e}");
}

/// A model that names no loss takes the task's (MSE for regression targets); one that names a loss
/// keeps it, in every form; a second `loss` line is refused instead of overriding the first.
#[test]
fn an_unnamed_loss_follows_the_task_and_a_named_one_is_kept() {
    for text in [
        "mlp:4-8-1:tanh",
        "input 4; linear(8); tanh; linear(1)",
        r#"{"input": [4], "layers": ["linear(8)", "tanh", "linear(1)"]}"#,
    ] {
        assert_eq!(ModelSpec::parse_with_default_loss(text, Loss::Mse).unwrap().loss, Loss::Mse, "{text}");
        assert_eq!(ModelSpec::parse(text).unwrap().loss, Loss::CrossEntropy, "{text}");
    }
    for text in [
        "mlp:4-8-1:tanh:cross_entropy",
        "input 4; linear(8); tanh; linear(1); loss cross_entropy",
        r#"{"input": [4], "layers": ["linear(1)"], "loss": "cross_entropy"}"#,
    ] {
        assert_eq!(ModelSpec::parse_with_default_loss(text, Loss::Mse).unwrap().loss, Loss::CrossEntropy, "{text}");
    }
    let err = ModelSpec::parse("input 4; linear(2); loss mse; loss cross_entropy").unwrap_err().to_string();
    assert!(err.contains("already names its loss"), "{err}");
}

/// No argument is dropped (issue 11): extra positional arguments, arguments given twice, unknown
/// keys (bias, dilation, typos) and unknown JSON keys are refused by name; positional stride and
/// padding are read in the documented order.
#[test]
fn every_argument_is_read_or_refused_by_name() {
    let layer = |t: &str| ModelSpec::parse(&format!("input 3x9x9; {t}; flatten; linear(2)")).map(|s| s.layers[0]);
    assert_eq!(
        layer("conv2d(4, 3, 2)").unwrap(),
        Layer::Conv2d { out: 4, kernel: (3, 3), stride: (2, 2), padding: (0, 0), bias: true }
    );
    assert_eq!(
        layer("conv2d(4, 3, 2, 1)").unwrap(),
        Layer::Conv2d { out: 4, kernel: (3, 3), stride: (2, 2), padding: (1, 1), bias: true }
    );
    assert_eq!(layer("maxpool2d(3, 1)").unwrap(), Layer::MaxPool2d { kernel: (3, 3), stride: (1, 1) });
    // PyTorch's tuples are one argument each (they were split at their comma: "given 2 times")
    assert_eq!(
        layer("conv2d(4, k=(3, 1), s=(2,1), p=(1, 0))").unwrap(),
        Layer::Conv2d { out: 4, kernel: (3, 1), stride: (2, 1), padding: (1, 0), bias: true }
    );
    let err = |t: &str| ModelSpec::parse(t).unwrap_err().to_string();
    for (text, needles) in [
        ("input 64; linear(64, 10)", &["2 positional arguments", "at most 1"][..]),
        ("input 3x9x9; conv2d(4, k=3, dilation=2); flatten; linear(2)", &["no argument 'dilation'"][..]),
        ("input 64; linear(10, bias=maybe)", &["use bias=true or bias=false"][..]),
        ("input 64; linear(10, False)", &["2 positional arguments"][..]),
        ("input 3x9x9; conv2d(4, k=3, strid=2); flatten; linear(2)", &["no argument 'strid'"][..]),
        ("input 3x9x9; conv2d(4, 3, k=5); flatten; linear(2)", &["'k' is given 2 times"][..]),
        ("input 3x9x9; maxpool2d(2, 2, 1); flatten; linear(2)", &["3 positional arguments"][..]),
        ("input 64; relu(inplace=True); linear(2)", &["takes no arguments"][..]),
        ("input 3x9x9; conv2d(4, k=(3, 1, 2)); flatten; linear(2)", &["not a pair"][..]),
        ("input 64; input 64; linear(2)", &["already has an input line"][..]),
        ("mlp:64-10:relu:tanh", &["two activations"][..]),
        (r#"{"input": [4], "input": [5], "layers": ["linear(2)"]}"#, &["\"input\" is given twice"][..]),
        (r#"{"input": [4], "layers": ["linear(2)"], "los": "mse"}"#, &["unknown key \"los\""][..]),
    ] {
        let e = err(text);
        for n in needles {
            assert!(e.contains(n), "{text}: '{e}' lacks '{n}'");
        }
    }
}
