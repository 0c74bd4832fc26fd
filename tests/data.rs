//! Data loading (CPU only): the embedded digits, the bundled MNIST IDX files, and clear errors
//! for malformed IDX input.

mod common;

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

/// An installed binary (`cargo install`) has no source tree: the bundled data must be embedded,
/// and no library or CLI source may read a path baked in at compile time.
#[test]
fn mnist10k_is_embedded_and_no_source_reads_the_build_tree() {
    let (images, labels) = mnist_paths();
    assert_eq!(data::mnist10k().unwrap(), idx::load(&images, &labels).unwrap());
    for path in common::files_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), "rs") {
        // (an include_str! of the build tree embeds the file at compile time, which is what an
        // installed binary needs; a run-time read of the path is the defect)
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines().filter(|l| l.contains(concat!("CARGO_", "MANIFEST_DIR"))) {
            assert!(
                line.contains("include_str!(") || line.contains("include_bytes!("),
                "{} reads the build tree's path: {line}",
                path.display()
            );
        }
    }
}

/// A small gzip that inflates beyond the limit is refused after reading at most the limit.
#[test]
fn gzip_bombs_are_refused_before_they_are_held() {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = enc.finish().unwrap();
    assert!(bomb.len() < 4096);
    let err = data::gunzip_at_most(&bomb, "bomb.gz", 1 << 16).unwrap_err().to_string();
    assert!(err.contains("bomb.gz") && err.contains("inflates to more than 65536 bytes"), "{err}");
    assert_eq!(data::gunzip_at_most(&bomb, "bomb.gz", 1 << 20).unwrap().len(), 1 << 20);
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

/// Class labels are never guessed (issue 11): indices 0..k stay themselves; strings, negative and
/// sparse integers map to 0..k in sorted order with numbers in numeric order ("10" after "9", not
/// after "1") and keep their names; missing labels, real values and identifier-like columns are
/// refused with the fix.
#[test]
fn csv_class_labels_are_mapped_explicitly_or_refused() {
    use adahessian_wgpu::data::csv::{parse, Task};
    use adahessian_wgpu::data::Targets;
    let labels = |text: &str| -> (Vec<u32>, usize, Vec<String>) {
        let ds = parse(text, "t.csv", None, Task::Classify).unwrap();
        match ds.targets {
            Targets::Classes { labels, classes } => (labels, classes, ds.class_names),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(labels("a,y\n1,0\n2,2\n3,1\n"), (vec![0, 2, 1], 3, vec![]));
    let (l, k, names) = labels("a,y\n1,9\n2,10\n3,-1\n4,10\n");
    assert_eq!((l, k), (vec![1, 2, 0, 2], 3));
    assert_eq!(names, ["-1", "9", "10"]);
    // issue 20: integer labels that are not exactly 0..k map too, whatever their largest value
    // (they gave max + 1 outputs below 1024 and mapped above it)
    for hi in [5, 1000, 1023, 1025] {
        let (l, k, names) = labels(&format!("a,y\n1,0\n2,{hi}\n3,0\n"));
        assert_eq!((l, k), (vec![0, 1, 0], 2), "labels {{0, {hi}}}");
        assert_eq!(names, ["0".to_string(), hi.to_string()]);
    }
    let (l, k, names) = labels("a,y\n1,1\n2,2\n");
    assert_eq!((l, k, names), (vec![0, 1], 2, vec!["1".to_string(), "2".to_string()]), "1-based labels map");
    let (l, _, names) = labels("a,y\n1,0\n2,1000000\n");
    assert_eq!((l, names), (vec![0, 1], vec!["0".to_string(), "1000000".to_string()]));
    let (l, k, names) = labels("a,y\n1,dog\n2,cat\n3,10\n4,9\n5,cat\n");
    assert_eq!((l, k), (vec![3, 2, 1, 0, 2], 4));
    assert_eq!(names, ["9", "10", "cat", "dog"]);
    assert_eq!(labels("a,y\n1,1.0\n2,0.0\n").0, vec![1, 0], "integral floats are integers");
    let err = |text: &str| parse(text, "t.csv", None, Task::Classify).unwrap_err().to_string();
    for missing in ["a,y\n1,0\n2,NA\n", "a,y\n1,0\n2,\n", "a,y\n1,0\n2,nan\n"] {
        let e = err(missing);
        assert!(e.contains("line 3") && e.contains("missing"), "{e}");
    }
    let named = |text: &str, target: &str| parse(text, "t.csv", Some(target), Task::Classify);
    // found by the fuzzer: a quoted header cell with a line break was echoed across lines
    let e = named("a,\"x\ny\",b\n1,2,0\n3,4,1\n", "label").unwrap_err().to_string();
    assert!(!e.contains('\n') && e.contains("x\\ny"), "{e}");
    let e = named("y,a,y\n0,1,1\n1,2,0\n", "y").unwrap_err().to_string();
    assert!(e.contains("ambiguous") && e.contains("columns 0 and 2"), "{e}");
    let e = named("a,0,b\n0,1,1\n1,2,0\n", "0").unwrap_err().to_string();
    assert!(e.contains("ambiguous") && e.contains("index of column 'a'"), "{e}");
    assert!(named("a,1,b\n0,1,1\n1,2,0\n", "1").is_ok(), "a numeric name at its own index is one reading");
    for single in ["a,y\n1,3\n2,3\n", "a,y\n1,cat\n2,cat\n", "a,y\n1,0\n"] {
        let e = err(single);
        assert!(e.contains("one class") && e.contains("at least 2") && e.contains("--target"), "{e}");
    }
    let e = err("a,y\n1,0.5\n2,1.25\n3,2\n");
    assert!(e.contains("real values") && e.contains("--task regress"), "{e}");
    let many: String = (0..1100).map(|i| format!("{i},id{i}\n")).collect();
    let e = err(&format!("a,y\n{many}"));
    assert!(e.contains("1100 distinct labels") && e.contains("--target"), "{e}");
}

/// A headerless file whose labels are words keeps its first row (it was taken for a header and
/// lost); a header of names over numbers is still found; `Header::Yes/No` override the rule.
#[test]
fn csv_header_detection_does_not_swallow_a_data_row() {
    use adahessian_wgpu::data::csv::{parse_with, Header, Task};
    let rows = |text: &str, h: Header| {
        let (ds, header) = parse_with(text, "t.csv", None, Task::Classify, h).unwrap();
        (ds.rows(), header)
    };
    assert_eq!(rows("1,2,cat\n2,1,dog\n3,3,cat\n", Header::Auto), (3, false));
    assert_eq!(rows("a,b,y\n1,2,cat\n2,1,dog\n", Header::Auto), (2, true));
    assert_eq!(rows("a,b,y\n1,2,0\n2,1,1\n", Header::Auto), (2, true));
    assert_eq!(rows("1,2,0\n2,1,1\n", Header::Auto), (2, false));
    assert_eq!(rows("1,2,cat\n2,1,dog\n3,3,cat\n", Header::Yes), (2, true));
    let err = parse_with("a,b,y\n1,2,0\n", "t.csv", None, Task::Classify, Header::No).unwrap_err().to_string();
    assert!(err.contains("line 1") && err.contains("'a' is not a number"), "{err}");
}

/// CSV as people write it (issue 11): RFC 4180 quoting with commas and quotes inside fields, CRLF
/// line ends, a UTF-8 byte-order mark, `;` and tab delimiters detected (or given), and a one-column
/// result that names the likely delimiter.
#[test]
fn csv_reads_quoting_bom_crlf_and_other_delimiters() {
    use adahessian_wgpu::data::csv::{parse_options, Header, Options, Task};
    let read = |text: &str, delimiter: Option<u8>| {
        parse_options(text, "t.csv", &Options { target: None, task: Task::Classify, header: Header::Auto, delimiter })
    };
    let quoted = "\u{feff}\"name, full\",\"x\",y\r\n\"0.942\",\"1\",\"Smith, John\"\r\n\"2\",3,\"O\"\"Brien\"\r\n";
    let p = read(quoted, None).unwrap();
    assert!(p.has_header && p.delimiter == b',');
    assert_eq!(p.dataset.x, vec![0.942, 1.0, 2.0, 3.0]);
    assert_eq!(p.dataset.class_names, ["O\"Brien", "Smith, John"]);
    let semi = "a;b;y\n1,5;2;0\n3;4;1\n";
    let p = read(&semi.replace("1,5", "1.5"), None).unwrap();
    assert_eq!((p.delimiter, p.dataset.x.clone()), (b';', vec![1.5, 2.0, 3.0, 4.0]));
    let p = read("a\tb\ty\n1\t2\t0\n3\t4\t1\n", None).unwrap();
    assert_eq!((p.delimiter, p.dataset.rows()), (b'\t', 2));
    let p = read("a|b|y\n1|2|0\n3|4|1\n", Some(b'|')).unwrap();
    assert_eq!(p.dataset.x, vec![1.0, 2.0, 3.0, 4.0]);
    let e = read("a;b;y\n1;2;0\n", Some(b',')).unwrap_err().to_string();
    assert!(e.contains("1 column") && e.contains("--delimiter"), "{e}");
}

/// Records in the official binary layout: `label_bytes` labels, then 3,072 channel-major pixels
/// (pixel value = (record · 7 + channel · 3 + position) mod 256).
fn cifar_records(labels: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (r, l) in labels.iter().enumerate() {
        out.extend_from_slice(l);
        out.extend((0..3072).map(|i| ((r * 7 + (i / 1024) * 3 + i % 1024) % 256) as u8));
    }
    out
}

/// CIFAR-10 and -100 from their binary files: pixel/255 channel-major, labels, fine or coarse;
/// a wrong size, a label out of range and a missing file each get one line naming the file.
#[test]
fn cifar_binary_files_load_and_bad_ones_are_named() {
    use adahessian_wgpu::data::cifar::{load, parse, Cifar};
    let (x, labels) = parse(&cifar_records(&[&[3], &[9]]), "b.bin", Cifar::Ten).unwrap();
    assert_eq!((x.len(), labels), (2 * 3072, vec![3, 9]));
    assert_eq!(x[1024 + 5], ((3 + 5) % 256) as f32 / 255.0, "channel-major: green starts at 1024");
    assert_eq!(x[3072], (7 % 256) as f32 / 255.0);
    let hundred = cifar_records(&[&[4, 77], &[19, 0]]);
    assert_eq!(parse(&hundred, "t.bin", Cifar::Hundred { coarse: false }).unwrap().1, vec![77, 0]);
    assert_eq!(parse(&hundred, "t.bin", Cifar::Hundred { coarse: true }).unwrap().1, vec![4, 19]);
    let e = parse(&cifar_records(&[&[3]])[..3000], "cut.bin", Cifar::Ten).unwrap_err().to_string();
    assert!(e.contains("cut.bin") && e.contains("3073-byte records"), "{e}");
    let e = parse(&cifar_records(&[&[0], &[12]]), "c100.bin", Cifar::Ten).unwrap_err().to_string();
    assert!(e.contains("c100.bin") && e.contains("record 1 has label 12") && e.contains("CIFAR-100"), "{e}");
    // the archive's folder inside the given directory is found; a missing file is named
    let dir = std::env::temp_dir().join(format!("adahessian-cifar-{}", std::process::id()));
    let inner = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&inner).unwrap();
    for (i, name) in
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
            .iter()
            .enumerate()
    {
        std::fs::write(inner.join(name), cifar_records(&[&[i as u8], &[(i + 5) as u8]])).unwrap();
    }
    let e = load(&dir, Cifar::Ten).unwrap_err().to_string();
    assert!(e.contains("test_batch.bin") && e.contains("binary version of CIFAR-10"), "{e}");
    std::fs::write(inner.join("test_batch.bin"), cifar_records(&[&[1]])).unwrap();
    let (train, test) = load(&dir, Cifar::Ten).unwrap();
    assert_eq!((train.rows(), test.rows(), train.classes(), train.shape.clone()), (10, 1, 10, vec![3, 32, 32]));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every augmented image is its original shifted by (dy, dx) ∈ [−4, 4]² with black padding, and
/// maybe mirrored (found by trying every one of the 162 possibilities); the draws cover shifts and
/// both flips; the same batch key gives the same images.
#[test]
fn cifar_augmentation_is_a_padded_crop_and_a_flip() {
    use adahessian_wgpu::data::cifar::Augment;
    let (c, h, w) = (2, 6, 5);
    let mut aug = Augment::parse("crop4,flip", &[c, h, w]).unwrap();
    aug.fill = vec![-1.0, -2.0];
    let image: Vec<f32> = (0..c * h * w).map(|i| i as f32).collect();
    let rows = 40;
    let batch: Vec<f32> = (0..rows).flat_map(|_| image.clone()).collect();
    let mut out = batch.clone();
    aug.apply(&mut out, 12345);
    let mut again = batch.clone();
    aug.apply(&mut again, 12345);
    assert_eq!(out, again, "the same key draws the same crops");
    let candidate = |dy: isize, dx: isize, flip: bool| -> Vec<f32> {
        let mut v = vec![0f32; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let xm = if flip { w - 1 - x } else { x };
                    let (ys, xs) = (y as isize + dy, xm as isize + dx);
                    v[(ch * h + y) * w + x] = if ys >= 0 && ys < h as isize && xs >= 0 && xs < w as isize {
                        image[(ch * h + ys as usize) * w + xs as usize]
                    } else {
                        aug.fill[ch]
                    };
                }
            }
        }
        v
    };
    let (mut flips, mut shifts) = (0, std::collections::HashSet::new());
    for row in out.chunks(c * h * w) {
        let found = (-4..=4)
            .flat_map(|dy| (-4..=4).flat_map(move |dx| [false, true].map(|f| (dy, dx, f))))
            .find(|&(dy, dx, f)| candidate(dy, dx, f) == row);
        let (dy, dx, f) = found.expect("an augmented image that is no padded crop or flip of the original");
        flips += f as usize;
        shifts.insert((dy, dx));
    }
    assert!(flips > 5 && flips < rows - 5 && shifts.len() > 15, "{flips} flips, {} shifts", shifts.len());
    assert!(Augment::parse("crop4,rotate", &[3, 32, 32]).unwrap_err().to_string().contains("unknown 'rotate'"));
    assert!(Augment::parse("flip", &[64]).unwrap_err().to_string().contains("images"));
}
