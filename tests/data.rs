//! Data loading (CPU only): the embedded digits, the bundled MNIST IDX files, and clear errors
//! for malformed IDX input.

use adahessian_wgpu::data::{self, idx};
use std::path::Path;

fn mnist_paths() -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    (dir.join("mnist10k-images-idx3-ubyte.gz"), dir.join("mnist10k-labels-idx1-ubyte.gz"))
}

#[test]
fn digits_are_embedded_and_split_reproducibly() {
    let d = data::digits().unwrap();
    assert_eq!((d.rows(), d.features, d.classes()), (1797, 64, 10));
    assert_eq!(d.shape, vec![1, 8, 8]);
    assert!(d.x.iter().all(|&v| (0.0..=1.0).contains(&v)));
    let (a, b) = d.split(0.2, 7).unwrap();
    let (c, e) = d.split(0.2, 7).unwrap();
    assert_eq!((a.rows(), b.rows()), (1438, 359));
    assert_eq!((a, b), (c, e));
    let (all, none) = d.split(0.0, 1).unwrap();
    assert_eq!((all.rows(), none.rows()), (1797, 0));
    assert!(d.split(1.0, 0).is_err());
}

#[test]
fn bundled_mnist_idx_files_load() {
    let (images, labels) = mnist_paths();
    let d = idx::load(&images, &labels).unwrap();
    assert_eq!((d.rows(), d.features, d.classes()), (10000, 784, 10));
    assert_eq!(d.shape, vec![1, 28, 28]);
    let mut counts = [0usize; 10];
    if let data::Targets::Classes { labels, .. } = &d.targets {
        for &l in labels {
            counts[l as usize] += 1;
        }
    }
    assert!(counts.iter().all(|&c| c > 800), "class counts {counts:?}");
}

fn header(magic: u32, dims: &[u32]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend(d.to_be_bytes());
    }
    v
}

#[test]
fn malformed_idx_files_get_clear_errors() {
    let mut images = header(2051, &[2, 2, 2]);
    images.extend([0u8; 8]);
    let mut labels = header(2049, &[2]);
    labels.extend([3u8, 4]);
    let ok = idx::dataset(&images, &labels, "img", "lbl").unwrap();
    assert_eq!((ok.rows(), ok.features), (2, 4));

    let e = idx::dataset(&labels, &images, "img", "lbl").unwrap_err().to_string();
    assert!(e.contains("magic number 2049") && e.contains("swapped"), "{e}");
    let e = idx::dataset(&images[..20], &labels, "img", "lbl").unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("2 images of 2x2"), "{e}");
    let e = idx::dataset(&images, &labels[..9], "img", "lbl").unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("2 labels"), "{e}");
    let e = idx::dataset(&images[..2], &labels, "img", "lbl").unwrap_err().to_string();
    assert!(e.contains("too short"), "{e}");
    let mut three = header(2049, &[3]);
    three.extend([1u8, 2, 3]);
    let e = idx::dataset(&images, &three, "img", "lbl").unwrap_err().to_string();
    assert!(e.contains("2 images") && e.contains("3 labels"), "{e}");
    let e = idx::dataset(&[0x1f, 0x8b, 1, 2, 3], &labels, "img", "lbl").unwrap_err().to_string();
    assert!(e.contains("corrupt gzip"), "{e}");
    let e = idx::load(Path::new("/nonexistent/images"), Path::new("/nonexistent/labels")).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/images"), "{e}");
}
