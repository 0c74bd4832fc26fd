//! The comparison's own arithmetic, without a GPU: Spearman's ρ, label noise, the MLP shape the
//! depth sweep varies, and the article's verdicts from measurements built by hand.

use adahessian_wgpu::compare::{
    mlp_shape, spearman, ArticleVerdict, Comparison, DiagonalFit, Measured, Memory, NoisePoint, SeedRun, Setup,
};
use adahessian_wgpu::data::{Dataset, Targets};
use adahessian_wgpu::nn::{Activation, Layer, Loss, ModelSpec};
use adahessian_wgpu::session::Schedule;

#[test]
fn spearman_is_rank_correlation_with_average_ties() {
    let a = [1.0, 2.0, 3.0, 4.0, 5.0];
    assert!((spearman(&a, &[10.0, 20.0, 30.0, 40.0, 1e9]) - 1.0).abs() < 1e-12, "monotone, not linear: 1");
    assert!((spearman(&a, &[5.0, 4.0, 3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    // by hand: ranks of b = [1, 2.5, 2.5, 4, 5] (a tie), ρ = Pearson of the ranks = 0.9747
    let rho = spearman(&a, &[1.0, 2.0, 2.0, 3.0, 4.0]);
    assert!((rho - 0.974_679_434_480_896_4).abs() < 1e-12, "{rho}");
}

#[test]
fn label_noise_replaces_exactly_that_fraction_with_other_classes() {
    let labels: Vec<u32> = (0..1000).map(|i| i % 7).collect();
    let ds = Dataset::new(vec![0.0; 1000], 1, Targets::Classes { labels: labels.clone(), classes: 7 }).unwrap();
    for (fraction, wrong) in [(0.0, 0), (0.2, 200), (0.4, 400), (1.0, 1000)] {
        let noisy = ds.with_label_noise(fraction, 3).unwrap();
        let Targets::Classes { labels: got, classes } = &noisy.targets else { panic!() };
        assert_eq!(*classes, 7);
        assert!(got.iter().all(|&l| l < 7));
        assert_eq!(got.iter().zip(&labels).filter(|(a, b)| a != b).count(), wrong, "fraction {fraction}");
        assert_eq!(noisy.x, ds.x);
        assert_eq!(ds.with_label_noise(fraction, 3).unwrap(), noisy, "seeded");
    }
    assert!(ds.with_label_noise(1.5, 0).is_err());
    let regression = Dataset::new(vec![0.0; 4], 1, Targets::Values { values: vec![0.0; 4], width: 1 }).unwrap();
    assert!(regression.with_label_noise(0.2, 0).unwrap_err().to_string().contains("class labels"));
}

#[test]
fn the_depth_sweep_needs_a_plain_mlp() {
    assert_eq!(mlp_shape(&ModelSpec::mlp(&[64, 32, 32, 10], Activation::Tanh, Loss::CrossEntropy)), Some((64, 32, 10)));
    assert_eq!(mlp_shape(&ModelSpec::mlp(&[64, 10], Activation::Tanh, Loss::CrossEntropy)), None, "no hidden layer");
    let cnn = ModelSpec {
        input: vec![1, 8, 8],
        layers: vec![
            Layer::Conv2d { out: 4, kernel: (3, 3), stride: (1, 1), padding: (1, 1), bias: true },
            Layer::Flatten,
            Layer::Dense { out: 10, bias: true },
        ],
        loss: Loss::CrossEntropy,
        naming: adahessian_wgpu::nn::Naming::Sequential,
    };
    assert_eq!(mlp_shape(&cnn), None);
}

/// A measured method with the given per-seed accuracies and steps to target.
fn measured(name: &str, accuracies: &[f64], steps: &[u64], bytes: u64, ms: f64) -> Measured {
    Measured {
        name: name.into(),
        config: name.into(),
        settings: serde_json::json!({}),
        seeds: accuracies
            .iter()
            .zip(steps)
            .enumerate()
            .map(|(i, (&a, &s))| SeedRun {
                seed: i as u64,
                test_accuracy: a,
                train_accuracy: a + 0.01,
                reached_target: Some((s, s as f64 / 100.0)),
                early: Vec::new(),
                metrics: Vec::new(),
            })
            .collect(),
        ms_per_step: ms,
        memory: Memory { params_and_grads: bytes, state: 0, activations: 0 },
        lr_sweep: vec![(1.0, accuracies[0])],
        batch_sweep: vec![(64, accuracies[0])],
        depth_sweep: Vec::new(),
        noise_sweep: vec![
            NoisePoint { noise: 0.0, test_accuracy: accuracies[0], train_accuracy: accuracies[0] },
            NoisePoint { noise: 0.4, test_accuracy: accuracies[0] - 0.1, train_accuracy: 0.6 },
        ],
        diagonal: None,
    }
}

fn setup() -> Setup {
    Setup {
        spec: ModelSpec::mlp(&[4, 8, 3], Activation::Tanh, Loss::CrossEntropy),
        steps: 100,
        batch: 16,
        eval_every: 5,
        schedule: Schedule::Constant,
        seeds: 3,
        target_accuracy: 0.9,
        lr_factors: vec![1.0],
        batch_sizes: vec![64],
        depths: Vec::new(),
        depth_activations: Vec::new(),
        label_noise: vec![0.0, 0.4],
        early_fractions: Vec::new(),
        diagonal_samples: 0,
        bn_mode: adahessian_wgpu::nn::BnMode::Train,
        recipe: None,
    }
}

#[test]
fn the_article_verdicts_follow_the_measurements_and_the_noise() {
    // AdaHessian: 1.2× the bytes, 2× the time, fewer steps beyond the noise; accuracy inside it
    let mut ah = measured("adahessian", &[0.95, 0.96, 0.97], &[30, 35, 40], 120, 2.0);
    let adam = measured("adam", &[0.955, 0.965, 0.96], &[100, 110, 120], 100, 1.0);
    ah.diagonal = Some(DiagonalFit {
        samples: 128,
        rho_diagonal: 0.5,
        rho_row_norm: 0.9,
        median_row_norm_over_diagonal: 10.0,
        z_stderr: (1.06f64 / 125.0).sqrt(),
        hvps: 512,
    });
    let c = Comparison::new("test".into(), ("synthetic".into(), 100, 30), setup(), vec![adam, ah]).unwrap();
    assert_eq!((c.subject.as_str(), c.baseline.as_str()), ("adahessian", "adam"));
    let verdict = |from: &str| c.article.iter().find(|a| a.from == from).unwrap().verdict;
    assert_eq!(verdict("memory"), ArticleVerdict::Holds, "1.2× is within 'slightly'");
    assert_eq!(verdict("time_per_step"), ArticleVerdict::Holds);
    assert_eq!(verdict("steps_to_target"), ArticleVerdict::Holds);
    assert_eq!(verdict("label_noise_accuracy"), ArticleVerdict::InsideNoise, "0.06 vs 0.05 apart at 40%: within noise");
    assert_eq!(verdict("diagonal"), ArticleVerdict::Contradicted, "ρ 0.9 with row norms vs 0.5 with the diagonal");
    assert_eq!(verdict("depth"), ArticleVerdict::NotMeasured, "no depth sweep");
    assert_eq!(verdict("early_5"), ArticleVerdict::NotMeasured);
    let md = c.to_markdown();
    assert!(md.find("The article's claims").unwrap() < md.find("Every measurement").unwrap(), "verdicts first");
    assert!(md.contains("\\|Δ\\|") && !md.contains(" |Δ|"), "pipes inside cells are escaped");
    // the same measurements with the roles of memory reversed: 2× is not "slightly"
    let big = measured("adahessian", &[0.95, 0.96, 0.97], &[30, 35, 40], 200, 2.0);
    let adam = measured("adam", &[0.955, 0.965, 0.96], &[100, 110, 120], 100, 1.0);
    let c = Comparison::new("test".into(), ("synthetic".into(), 100, 30), setup(), vec![adam, big]).unwrap();
    assert_eq!(c.article.iter().find(|a| a.from == "memory").unwrap().verdict, ArticleVerdict::Contradicted);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["article"][0]["verdict"], "contradicted");
    // a baseline that never reaches the target loses the steps row (it is not "not comparable")
    let ah = measured("adahessian", &[0.95, 0.96, 0.97], &[30, 35, 40], 120, 2.0);
    let mut adam = measured("adam", &[0.85, 0.86, 0.84], &[0, 0, 0], 100, 1.0);
    adam.seeds.iter_mut().for_each(|s| s.reached_target = None);
    let c = Comparison::new("test".into(), ("synthetic".into(), 100, 30), setup(), vec![adam, ah]).unwrap();
    let steps = c.article.iter().find(|a| a.from == "steps_to_target").unwrap();
    assert_eq!(steps.verdict, ArticleVerdict::Holds, "{}", steps.measured);
    assert!(steps.measured.contains("adam has no value"), "{}", steps.measured);
}
