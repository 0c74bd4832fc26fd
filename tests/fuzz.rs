//! Property tests (CPU only): the readers of user files — CSV, IDX, model text and JSON,
//! checkpoints — given arbitrary bytes, or valid files with bytes mutated, never panic, and what
//! they return must be right: a value that is self-consistent (rows × features values, finite,
//! labels in range; a checkpoint that writes back to itself) or an error on one line that names
//! the file it is about.

use adahessian_wgpu::checkpoint::{from_bytes, to_bytes, NamedTensor};
use adahessian_wgpu::data::csv::{parse_with, Header, Task};
use adahessian_wgpu::data::idx::{parse_images, parse_labels};
use adahessian_wgpu::data::Targets;
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

/// An error about a file says which file, on one line.
fn names_the_file(message: &str, file: &str) -> Result<(), TestCaseError> {
    prop_assert!(message.contains(file), "the error does not name {}: {}", file, message);
    prop_assert!(!message.contains('\n'), "the error is not one line: {}", message);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn csv_never_panics(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), mutated(CSV.as_bytes().to_vec())]) {
        let text = String::from_utf8_lossy(&bytes);
        for task in [Task::Classify, Task::Regress] {
            for header in [Header::Auto, Header::Yes, Header::No] {
                for target in [None, Some("label")] {
                    match parse_with(&text, "fuzz.csv", target, task, header) {
                        Ok((ds, _)) => {
                            prop_assert!(ds.rows() > 0 && ds.features > 0 && ds.x.len() == ds.rows() * ds.features);
                            prop_assert!(ds.x.iter().all(|v| v.is_finite()));
                            match (&ds.targets, task) {
                                (Targets::Classes { labels, classes }, Task::Classify) => {
                                    prop_assert!(*classes >= 2 && labels.iter().all(|&l| (l as usize) < *classes));
                                    prop_assert!(ds.class_names.is_empty() || ds.class_names.len() == *classes);
                                }
                                (Targets::Values { values, width }, Task::Regress) => {
                                    prop_assert!(*width == 1 && values.len() == ds.rows() && values.iter().all(|v| v.is_finite()));
                                }
                                (t, task) => prop_assert!(false, "{task:?} gave {t:?}"),
                            }
                        }
                        Err(e) => names_the_file(&e.to_string(), "fuzz.csv")?,
                    }
                }
            }
        }
    }

    #[test]
    fn idx_never_panics(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..64), mutated(idx_images())]) {
        match parse_images(&bytes, "fuzz-images") {
            Ok((n, rows, cols, pixels)) => prop_assert_eq!(pixels.len(), n * rows * cols),
            Err(e) => names_the_file(&e.to_string(), "fuzz-images")?,
        }
        match parse_labels(&bytes, "fuzz-labels") {
            Ok(labels) => prop_assert!(labels.len() + 8 <= bytes.len().max(8) || bytes.starts_with(&[0x1f, 0x8b])),
            Err(e) => names_the_file(&e.to_string(), "fuzz-labels")?,
        }
    }

    #[test]
    fn model_text_never_panics(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..120), mutated(MODEL.as_bytes().to_vec())]) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(spec) = ModelSpec::parse(&text) {
            // whatever parses, resolves and prints back to a text that parses to the same model
            prop_assert_eq!(ModelSpec::parse(&spec.to_text()).unwrap(), spec);
        }
        let json = format!("{{\"input\": [3], \"layers\": [\"{}\"]}}", text.replace(['"', '\\'], ""));
        match ModelSpec::parse(&json) {
            Ok(spec) => prop_assert_eq!(ModelSpec::parse(&spec.to_json()).unwrap(), spec),
            Err(e) => prop_assert!(!e.to_string().trim().is_empty() && !e.to_string().contains('\n'), "{e}"),
        }
    }

    #[test]
    fn checkpoints_never_panic(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), mutated(checkpoint_bytes())]) {
        match from_bytes(&bytes, "fuzz.safetensors") {
            Ok((tensors, meta)) => {
                for t in &tensors {
                    prop_assert_eq!(t.values.len(), t.shape.iter().product::<usize>());
                }
                // what was read writes back to the same tensors
                let again = from_bytes(&to_bytes(&tensors, meta.clone()).unwrap(), "again").unwrap();
                prop_assert_eq!(again.0.len(), tensors.len());
            }
            Err(e) => names_the_file(&e.to_string(), "fuzz.safetensors")?,
        }
    }
}

/// A case the fuzzer found: a quoted label that holds line breaks, the only class of its
/// column, was echoed whole, so the refusal spanned three lines.
#[test]
fn a_one_class_label_with_line_breaks_is_refused_on_one_line() {
    let text = "a,b,label\n1,2,\"at\n0.5,-3,dog\n2,2,cat\n";
    for header in [Header::Auto, Header::Yes] {
        let e = parse_with(text, "fuzz.csv", Some("label"), Task::Classify, header).unwrap_err().to_string();
        assert!(e.contains("one class") && e.contains("fuzz.csv") && !e.contains('\n'), "{e}");
    }
}
