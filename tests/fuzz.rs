//! Property tests (CPU only): the readers of user files — CSV, IDX, model text and JSON,
//! checkpoints — given arbitrary bytes, or valid files with bytes mutated, return a value or an
//! error; they never panic.

use adahessian_wgpu::checkpoint::{from_bytes, to_bytes, NamedTensor};
use adahessian_wgpu::data::csv::{parse_with, Header, Task};
use adahessian_wgpu::data::idx::{parse_images, parse_labels};
use adahessian_wgpu::nn::ModelSpec;
use proptest::prelude::*;
use std::collections::HashMap;

const CSV: &str = "a,b,label\n1,2,cat\n0.5,-3,dog\n2,2,cat\n";
const MODEL: &str = "input 1x8x8; conv2d(4, k=3, p=1); relu; maxpool2d(2); flatten; linear(3); loss cross_entropy";

/// `base` with up to 8 bytes replaced at arbitrary positions.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let n = base.len();
    proptest::collection::vec((0..n, any::<u8>()), 0..8).prop_map(move |edits| {
        let mut b = base.clone();
        for (i, v) in edits {
            b[i] = v;
        }
        b
    })
}

fn idx_images() -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    b.extend([0, 64, 128, 255, 1, 2, 3, 4]);
    b
}

fn checkpoint_bytes() -> Vec<u8> {
    let t = vec![NamedTensor { name: "0.weight".into(), shape: vec![2, 2], values: vec![1.0, -2.0, 0.5, 3.0] }];
    to_bytes(&t, HashMap::from([("step".into(), "3".into())])).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn csv_never_panics(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), mutated(CSV.as_bytes().to_vec())]) {
        let text = String::from_utf8_lossy(&bytes);
        for task in [Task::Classify, Task::Regress] {
            for header in [Header::Auto, Header::Yes, Header::No] {
                let _ = parse_with(&text, "fuzz.csv", None, task, header);
                let _ = parse_with(&text, "fuzz.csv", Some("label"), task, header);
            }
        }
    }

    #[test]
    fn idx_never_panics(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..64), mutated(idx_images())]) {
        let _ = parse_images(&bytes, "fuzz-images");
        let _ = parse_labels(&bytes, "fuzz-labels");
    }

    #[test]
    fn model_text_never_panics(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..120), mutated(MODEL.as_bytes().to_vec())]) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(spec) = ModelSpec::parse(&text) {
            // whatever parses, resolves and prints back to a text that parses to the same model
            prop_assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
        }
        let _ = ModelSpec::parse(&format!("{{\"input\": [3], \"layers\": [\"{}\"]}}", text.replace('"', "")));
    }

    #[test]
    fn checkpoints_never_panic(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), mutated(checkpoint_bytes())]) {
        let _ = from_bytes(&bytes, "fuzz.safetensors");
    }
}
