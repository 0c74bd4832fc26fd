//! CIFAR-10 and CIFAR-100 in their official binary versions (Krizhevsky 2009), and the standard
//! augmentation (random crop after 4-pixel zero padding, horizontal flip).
//!
//! - CIFAR-10 (`cifar-10-batches-bin/`): `data_batch_1.bin` … `data_batch_5.bin` (training) and
//!   `test_batch.bin`, each 10,000 records of 1 label byte (0..10) + 3,072 pixel bytes, channel
//!   major (1,024 red, then green, then blue, each row-major 32×32).
//! - CIFAR-100 (`cifar-100-binary/`): `train.bin` (50,000) and `test.bin` (10,000), records of a
//!   coarse label byte (0..20), a fine label byte (0..100) and the same 3,072 pixels.
//!
//! Pixels become x = p / 255 exactly; per-channel normalisation is applied by the caller with
//! constants it prints and records. The bytes are kept too ([`Dataset::pixels`]): the GPU holds
//! them as bytes and normalises and augments in its gather. The files are not shipped: the user
//! downloads them.

use super::{Dataset, Targets};
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Pixels of one image, channel-major.
pub const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Which CIFAR and, for CIFAR-100, which labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cifar {
    /// 10 classes.
    Ten,
    /// 100 fine classes, or 20 coarse superclasses.
    Hundred {
        /// The 20 superclasses instead of the 100 classes.
        coarse: bool,
    },
}

impl Cifar {
    fn label_bytes(self) -> usize {
        match self {
            Cifar::Ten => 1,
            Cifar::Hundred { .. } => 2,
        }
    }

    /// Number of classes of the chosen labels.
    pub fn classes(self) -> usize {
        match self {
            Cifar::Ten => 10,
            Cifar::Hundred { coarse: true } => 20,
            Cifar::Hundred { coarse: false } => 100,
        }
    }

    fn files(self) -> (Vec<&'static str>, &'static str) {
        match self {
            Cifar::Ten => (
                vec![
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "test_batch.bin",
            ),
            Cifar::Hundred { .. } => (vec!["train.bin"], "test.bin"),
        }
    }

    /// The folder the official archive extracts to.
    fn folder(self) -> &'static str {
        match self {
            Cifar::Ten => "cifar-10-batches-bin",
            Cifar::Hundred { .. } => "cifar-100-binary",
        }
    }
}

/// Parses the records of one file: `[n, 3, 32, 32]` pixels scaled to [0, 1] and labels.
pub fn parse(bytes: &[u8], what: &str, kind: Cifar) -> Result<(Vec<f32>, Vec<u32>)> {
    let (pixels, labels) = parse_bytes(bytes, what, kind)?;
    Ok((pixels.iter().map(|&p| p as f32 / 255.0).collect(), labels))
}

/// [`parse`] with the pixels as their bytes, `[n, 3, 32, 32]`.
pub fn parse_bytes(bytes: &[u8], what: &str, kind: Cifar) -> Result<(Vec<u8>, Vec<u32>)> {
    let record = kind.label_bytes() + IMAGE_BYTES;
    if bytes.is_empty() || !bytes.len().is_multiple_of(record) {
        return Err(Error::Data(format!(
            "{what}: {} bytes is not a whole number of {record}-byte records ({} label byte{} + {IMAGE_BYTES} pixels); is this the binary version of {}?",
            bytes.len(),
            kind.label_bytes(),
            if kind.label_bytes() == 1 { "" } else { "s" },
            if kind == Cifar::Ten { "CIFAR-10" } else { "CIFAR-100" }
        )));
    }
    let n = bytes.len() / record;
    let mut x = Vec::with_capacity(n * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(n);
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = match kind {
            Cifar::Ten => r[0],
            Cifar::Hundred { coarse } => r[if coarse { 0 } else { 1 }],
        };
        if label as usize >= kind.classes() {
            return Err(Error::Data(format!(
                "{what}: record {i} has label {label}, outside 0..{}{}",
                kind.classes(),
                if kind == Cifar::Ten { " (a CIFAR-100 file read as CIFAR-10?)" } else { "" }
            )));
        }
        labels.push(label as u32);
        x.extend_from_slice(&r[kind.label_bytes()..]);
    }
    Ok((x, labels))
}

/// Where the files are: `dir` itself, or the archive's folder inside it.
fn locate(dir: &Path, kind: Cifar) -> PathBuf {
    let (train, _) = kind.files();
    if dir.join(train[0]).exists() {
        return dir.to_path_buf();
    }
    let inner = dir.join(kind.folder());
    if inner.join(train[0]).exists() {
        inner
    } else {
        dir.to_path_buf()
    }
}

/// The official training and test splits from `dir`.
pub fn load(dir: &Path, kind: Cifar) -> Result<(Dataset, Dataset)> {
    let root = locate(dir, kind);
    let (train_files, test_file) = kind.files();
    let read = |name: &str| -> Result<(Vec<u8>, Vec<u32>)> {
        let path = root.join(name);
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            path: format!(
                "{} (the binary version of {}: {} and {test_file} in {} or its {}/ folder)",
                path.display(),
                if kind == Cifar::Ten { "CIFAR-10" } else { "CIFAR-100" },
                train_files.join(", "),
                dir.display(),
                kind.folder()
            ),
            source,
        })?;
        parse_bytes(&bytes, &path.display().to_string(), kind)
    };
    let split = |names: &[&str]| -> Result<Dataset> {
        let (mut x, mut labels) = (Vec::new(), Vec::new());
        for name in names {
            let (xi, li) = read(name)?;
            x.extend(xi);
            labels.extend(li);
        }
        Dataset::from_pixels(x, [3, 32, 32], Targets::Classes { labels, classes: kind.classes() })
    };
    Ok((split(&train_files)?, split(&[test_file])?))
}

/// Per-channel mean and standard deviation over every pixel of `ds` (`[C, H, W]` rows), in f64.
pub fn channel_stats(ds: &Dataset) -> (Vec<f32>, Vec<f32>) {
    let (c, plane) = (ds.shape[0], ds.features / ds.shape[0]);
    let mut sum = vec![0f64; c];
    let mut sq = vec![0f64; c];
    for row in ds.x.chunks(ds.features) {
        for ch in 0..c {
            for &v in &row[ch * plane..(ch + 1) * plane] {
                sum[ch] += v as f64;
                sq[ch] += (v as f64) * (v as f64);
            }
        }
    }
    let n = (ds.rows() * plane) as f64;
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sq.iter().zip(&mean).map(|(q, m)| ((q / n - m * m).max(0.0).sqrt()).max(1e-6) as f32).collect();
    (mean.iter().map(|m| *m as f32).collect(), std)
}

/// x ← (x − mean_c) / std_c for each channel c of `[C, H, W]` rows.
pub fn normalize_channels(ds: &mut Dataset, mean: &[f32], std: &[f32]) {
    let plane = ds.features / ds.shape[0];
    if let Some(p) = &mut ds.pixels {
        // the same f32 operations on every byte's value as on every pixel below
        for (ch, (m, s)) in mean.iter().zip(std).enumerate() {
            for v in &mut p.table[ch * 256..(ch + 1) * 256] {
                *v = (*v - m) / s;
            }
        }
    }
    for row in ds.x.chunks_mut(ds.features) {
        for (ch, (m, s)) in mean.iter().zip(std).enumerate() {
            for v in &mut row[ch * plane..(ch + 1) * plane] {
                *v = (*v - m) / s;
            }
        }
    }
}

/// The standard CIFAR augmentation of a training batch, applied where a streamed batch is
/// copied (training steps only, never evaluations): each image is shifted by a random
/// (dy, dx) ∈ [−pad, pad]² with padding coming in (a random `H×W` crop of the image padded by
/// `pad`), then flipped left-right with probability ½ when `flip`, as torchvision's
/// `RandomCrop(32, padding=4)` then `RandomHorizontalFlip()`. Those run before `Normalize`, so
/// the padding is a black pixel: `fill` holds its value after normalisation, (0 − mean_c) / std_c.
#[derive(Clone, Debug, PartialEq)]
pub struct Augment {
    /// Pixels of zero padding before the random crop (4 for CIFAR; 0: no crop).
    pub pad: usize,
    /// Random horizontal flips.
    pub flip: bool,
    /// `[C, H, W]` of a row.
    pub shape: [usize; 3],
    /// The value padding takes in each channel (0 unless the data were normalised).
    pub fill: Vec<f32>,
}

impl Augment {
    /// Parses `crop4,flip` (any of `cropN`, `flip`), for rows of `shape`.
    pub fn parse(text: &str, shape: &[usize]) -> Result<Augment> {
        let [c, h, w] = shape[..] else {
            return Err(Error::Config(format!("--augment needs images ([C, H, W] rows), not rows of shape {shape:?}")));
        };
        let mut out = Augment { pad: 0, flip: false, shape: [c, h, w], fill: vec![0.0; c] };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "flip" {
                out.flip = true;
            } else if let Some(n) = part.strip_prefix("crop").and_then(|n| n.parse::<usize>().ok()) {
                if n == 0 || n >= h.min(w) {
                    return Err(Error::Config(format!("--augment {part}: the padding must be in 1..{}", h.min(w))));
                }
                out.pad = n;
            } else {
                return Err(Error::Config(format!("--augment: unknown '{part}'; use cropN (e.g. crop4) and/or flip")));
            }
        }
        Ok(out)
    }

    /// Augments the rows of one batch in place. `key` identifies the batch (a hash of its row
    /// indices, which the seeded batch order fixes), so a resumed run draws the same crops.
    pub fn apply(&self, rows: &mut [f32], key: u64) {
        let [c, h, w] = self.shape;
        let f = c * h * w;
        let mut src = vec![0f32; f];
        for (i, row) in rows.chunks_mut(f).enumerate() {
            let (dy, dx, flip) = self.draw(key, i);
            src.copy_from_slice(row);
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        // output (y, x) shows input (y + dy, x' + dx), x' the flipped column
                        let xs = if flip { w - 1 - x } else { x } as isize + dx;
                        let ys = y as isize + dy;
                        row[(ch * h + y) * w + x] = if (0..h as isize).contains(&ys) && (0..w as isize).contains(&xs) {
                            src[(ch * h + ys as usize) * w + xs as usize]
                        } else {
                            self.fill[ch]
                        };
                    }
                }
            }
        }
    }

    /// Row `i` of the batch of `key`: its shift (dy, dx), each in [−pad, pad], and whether it is
    /// flipped (the GPU gather of image bytes draws the same, `shaders/gather_pixels.wgsl`).
    pub fn draw(&self, key: u64, i: usize) -> (isize, isize, bool) {
        let mut z = crate::probe::SplitMix64::new(key ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let span = 2 * self.pad as u64 + 1;
        let dy = (z.next_u64() % span) as isize - self.pad as isize;
        let dx = (z.next_u64() % span) as isize - self.pad as isize;
        let flip = self.flip && z.next_u64() & 1 == 1;
        (dy, dx, flip)
    }

    /// The key of a batch: FNV-1a of its row indices.
    pub fn batch_key(indices: &[u32]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &i in indices {
            for b in i.to_le_bytes() {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        h
    }
}
