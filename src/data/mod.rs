//! Data sets: an in-memory table of features and targets, loaders, splits and normalisation, and
//! its copy on the GPU. The UCI digits are embedded in the library so the default run needs no files.

pub mod cifar;
pub mod csv;
mod device;
pub mod idx;
pub mod plane;
pub mod synthetic;
pub(crate) use device::HostRows;
pub use device::{kernels, DeviceDataset};

use crate::error::{Error, Result};
use crate::probe::SplitMix64;
use std::io::Read;

/// What a row is labelled with.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// A class index per row, in `0..classes`.
    Classes {
        /// One label per row.
        labels: Vec<u32>,
        /// Number of classes.
        classes: usize,
    },
    /// `width` real values per row (regression).
    Values {
        /// `[rows, width]` row-major.
        values: Vec<f32>,
        /// Values per row.
        width: usize,
    },
}

impl Targets {
    /// Values per row as stored on the GPU: 1 for class labels.
    pub fn width(&self) -> usize {
        match self {
            Targets::Classes { .. } => 1,
            Targets::Values { width, .. } => *width,
        }
    }

    /// The targets as the GPU stores them (labels as exact small f32 integers).
    pub fn as_f32(&self) -> Vec<f32> {
        match self {
            Targets::Classes { labels, .. } => labels.iter().map(|&l| l as f32).collect(),
            Targets::Values { values, .. } => values.clone(),
        }
    }

    fn rows(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values { values, width } => values.len() / (*width).max(1),
        }
    }

    fn select(&self, rows: &[usize]) -> Targets {
        match self {
            Targets::Classes { labels, classes } => {
                Targets::Classes { labels: rows.iter().map(|&r| labels[r]).collect(), classes: *classes }
            }
            Targets::Values { values, width } => Targets::Values {
                values: rows.iter().flat_map(|&r| values[r * width..(r + 1) * width].iter().copied()).collect(),
                width: *width,
            },
        }
    }
}

/// A table of `rows × features` f32 inputs with their targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// `[rows, features]` row-major.
    pub x: Vec<f32>,
    /// Features per row.
    pub features: usize,
    /// Labels or values.
    pub targets: Targets,
    /// The shape of one row, `[features]` or `[channels, height, width]` for images.
    pub shape: Vec<usize>,
    /// The original label of each class index, when the file's labels were not already the
    /// indices 0..k (strings, negative or sparse integers); empty otherwise.
    pub class_names: Vec<String>,
    /// Augmentation of training batches (images only): each training batch is augmented as it
    /// is gathered (on the GPU when the data set keeps its [`Pixels`], else as it is copied from
    /// the host); evaluations see the images as they are.
    pub augment: Option<cifar::Augment>,
    /// The bytes an image data set was decoded from (CIFAR, IDX), while `x` is still exactly
    /// what they decode to: the GPU then keeps the bytes, a quarter of the f32 rows, and decodes,
    /// normalises and augments each batch as it gathers it ([`DeviceDataset::upload`]).
    pub pixels: Option<Pixels>,
}

/// Image bytes and what each byte stands for in each channel: every input value
/// `x[r, i] = table[c(i) · 256 + bytes[r, i]]`, with c(i) the channel of feature i. The table
/// starts as p / 255 (the f32 the host decodes to) and follows each per-channel transform of
/// `x` ([`cifar::normalize_channels`], [`Dataset::scale`]); a per-feature transform
/// ([`Dataset::normalize`]) drops it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pixels {
    /// `[rows, features]` bytes, row-major (channel-major within a row).
    pub bytes: Vec<u8>,
    /// `[channels, 256]`.
    pub table: Vec<f32>,
}

impl Pixels {
    /// Channels of the table.
    pub fn channels(&self) -> usize {
        self.table.len() / 256
    }

    /// Whether `x` (rows of `features`) is exactly what the bytes decode to, so the GPU may
    /// gather from the bytes instead (a caller may have changed `x` by hand).
    pub fn decodes_to(&self, x: &[f32], features: usize) -> bool {
        let c = self.channels();
        if c == 0 || self.bytes.len() != x.len() || !features.is_multiple_of(c) {
            return false;
        }
        let plane = features / c;
        self.bytes.iter().zip(x).enumerate().all(|(i, (&p, &v))| {
            let ch = (i % features) / plane;
            self.table[ch * 256 + p as usize].to_bits() == v.to_bits()
        })
    }

    fn select(&self, rows: &[usize], features: usize) -> Pixels {
        let bytes = rows.iter().flat_map(|&r| self.bytes[r * features..(r + 1) * features].iter().copied()).collect();
        Pixels { bytes, table: self.table.clone() }
    }
}

impl Dataset {
    /// Builds a data set, checking sizes, finiteness and label ranges.
    pub fn new(x: Vec<f32>, features: usize, targets: Targets) -> Result<Dataset> {
        if features == 0 {
            return Err(Error::Data("a data set needs at least one feature column".into()));
        }
        if !x.len().is_multiple_of(features) {
            return Err(Error::Data(format!("{} values do not make whole rows of {features} features", x.len())));
        }
        let rows = x.len() / features;
        if rows == 0 {
            return Err(Error::Data("the data set has no rows".into()));
        }
        if targets.rows() != rows || (targets.width() > 0 && !targets.as_f32().len().is_multiple_of(targets.width())) {
            return Err(Error::Data(format!("{rows} input rows but {} target rows", targets.rows())));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Data(format!(
                "row {}, column {} is {} (NaN/Inf); clean or impute the data first",
                i / features,
                i % features,
                x[i]
            )));
        }
        match &targets {
            Targets::Classes { labels, classes } => {
                if let Some((r, l)) = labels.iter().enumerate().find(|(_, l)| **l as usize >= *classes) {
                    return Err(Error::Data(format!("row {r} has label {l}, outside 0..{classes}")));
                }
            }
            Targets::Values { values, width } => {
                if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                    return Err(Error::Data(format!("target of row {} is NaN/Inf", i / width)));
                }
            }
        }
        Ok(Dataset {
            x,
            features,
            targets,
            shape: vec![features],
            class_names: Vec::new(),
            augment: None,
            pixels: None,
        })
    }

    /// Images of `shape` `[C, H, W]` from their bytes (channel-major rows), x = p / 255, keeping
    /// the bytes ([`Dataset::pixels`]).
    pub fn from_pixels(bytes: Vec<u8>, shape: [usize; 3], targets: Targets) -> Result<Dataset> {
        let table: Vec<f32> = (0..shape[0]).flat_map(|_| (0..256).map(|p| p as f32 / 255.0)).collect();
        let x = bytes.iter().map(|&p| p as f32 / 255.0).collect();
        let ds = Dataset::new(x, shape.iter().product(), targets)?.with_shape(shape.to_vec())?;
        Ok(Dataset { pixels: Some(Pixels { bytes, table }), ..ds })
    }

    /// The same data with each row viewed as `shape` (its product must be the feature count).
    pub fn with_shape(mut self, shape: Vec<usize>) -> Result<Dataset> {
        if shape.iter().product::<usize>() != self.features {
            return Err(Error::Data(format!("shape {shape:?} does not hold the {} features of a row", self.features)));
        }
        self.shape = shape;
        Ok(self)
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.x.len() / self.features
    }

    /// Number of classes (0 for regression).
    pub fn classes(&self) -> usize {
        match &self.targets {
            Targets::Classes { classes, .. } => *classes,
            Targets::Values { .. } => 0,
        }
    }

    /// The rows at these indices, in this order.
    pub fn subset(&self, rows: &[usize]) -> Dataset {
        let f = self.features;
        Dataset {
            x: rows.iter().flat_map(|&r| self.x[r * f..(r + 1) * f].iter().copied()).collect(),
            features: f,
            targets: self.targets.select(rows),
            shape: self.shape.clone(),
            class_names: self.class_names.clone(),
            augment: self.augment.clone(),
            pixels: self.pixels.as_ref().map(|p| p.select(rows, f)),
        }
    }

    /// A copy with a `fraction` of the class labels replaced, each chosen row's label by a
    /// uniformly random OTHER class (so exactly the chosen rows are wrong): symmetric label noise,
    /// seeded. Inputs and the rows are unchanged; regression targets are refused.
    pub fn with_label_noise(&self, fraction: f64, seed: u64) -> Result<Dataset> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::Config(format!("label noise {fraction} must be in [0, 1]")));
        }
        let Targets::Classes { labels, classes } = &self.targets else {
            return Err(Error::Config("label noise needs class labels, not real-valued targets".into()));
        };
        if *classes < 2 {
            return Err(Error::Config("label noise needs at least 2 classes".into()));
        }
        let mut rng = SplitMix64::new(seed ^ 0x0015_E1AB);
        let mut order: Vec<u32> = (0..labels.len() as u32).collect();
        rng.shuffle(&mut order);
        let wrong = (fraction * labels.len() as f64).round() as usize;
        let mut noisy = labels.clone();
        for &row in &order[..wrong] {
            let old = noisy[row as usize] as usize;
            noisy[row as usize] = ((old + 1 + rng.below(classes - 1)) % classes) as u32;
        }
        Ok(Dataset { targets: Targets::Classes { labels: noisy, classes: *classes }, ..self.clone() })
    }

    /// A seeded shuffle split into (train, test) with `round(rows * test_fraction)` test rows.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&test_fraction) {
            return Err(Error::Config(format!("test fraction {test_fraction} must be in [0, 1)")));
        }
        let mut order: Vec<usize> = (0..self.rows()).collect();
        SplitMix64::new(seed).shuffle(&mut order);
        let n_test = (self.rows() as f64 * test_fraction).round() as usize;
        let (test, train) = order.split_at(n_test);
        Ok((self.subset(train), self.subset(test)))
    }

    /// Per-feature mean and standard deviation (std 1 where a feature is constant).
    pub fn feature_stats(&self) -> (Vec<f32>, Vec<f32>) {
        let f = self.features;
        let n = self.rows() as f64;
        let mut mean = vec![0f64; f];
        let mut var = vec![0f64; f];
        for row in self.x.chunks(f) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64 / n;
            }
        }
        for row in self.x.chunks(f) {
            for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (*v as f64 - m).powi(2) / n;
            }
        }
        let std = var.iter().map(|v| if *v > 1e-12 { v.sqrt() as f32 } else { 1.0 }).collect();
        (mean.iter().map(|m| *m as f32).collect(), std)
    }

    /// x ← (x − mean) / std, feature-wise.
    pub fn normalize(&mut self, mean: &[f32], std: &[f32]) {
        // a per-feature map is no per-channel table of byte values
        self.pixels = None;
        let f = self.features;
        for row in self.x.chunks_mut(f) {
            for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
                *v = (*v - m) / s;
            }
        }
    }

    /// x ← x * factor.
    pub fn scale(&mut self, factor: f32) {
        self.x.iter_mut().for_each(|v| *v *= factor);
        if let Some(p) = &mut self.pixels {
            p.table.iter_mut().for_each(|v| *v *= factor);
        }
    }
}

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits8x8.csv.gz");

/// The UCI optical-recognition digits (1797 rows, 64 pixels in 0..=16, 10 classes), embedded in
/// the library (CC BY 4.0, see data/README.md). Pixels are scaled to [0, 1].
pub fn digits() -> Result<Dataset> {
    let text = gunzip_text(DIGITS_CSV_GZ, "embedded digits8x8.csv.gz")?;
    let mut ds = parse_labelled_csv(&text, "digits8x8.csv", 10)?;
    ds.scale(1.0 / 16.0);
    ds.with_shape(vec![1, 8, 8])
}

#[cfg(not(target_arch = "wasm32"))]
const MNIST10K_IMAGES_GZ: &[u8] = include_bytes!("../../data/mnist10k-images-idx3-ubyte.gz");
#[cfg(not(target_arch = "wasm32"))]
const MNIST10K_LABELS_GZ: &[u8] = include_bytes!("../../data/mnist10k-labels-idx1-ubyte.gz");

/// 10,000 MNIST digits (`[1, 28, 28]` pixels scaled to [0, 1], 10 classes), embedded in the native
/// library (1.6 MB; CC BY-SA 3.0, see data/README.md) so an installed binary needs no source tree.
/// Not in the wasm build, where it would triple the download.
#[cfg(not(target_arch = "wasm32"))]
pub fn mnist10k() -> Result<Dataset> {
    idx::dataset(MNIST10K_IMAGES_GZ, MNIST10K_LABELS_GZ, "embedded mnist10k images", "embedded mnist10k labels")
}

/// The most bytes a compressed input file may inflate to (a gzip "bomb" of 1 MB can claim
/// gigabytes): 1 GiB, six times the full CIFAR-10 training set and twenty times full MNIST (whose
/// pixels then take 4 GiB as f32).
pub const MAX_INFLATED_BYTES: u64 = 1 << 30;

/// Decompresses gzip bytes, refusing output beyond `MAX_INFLATED_BYTES` before it is allocated.
pub fn gunzip_bounded(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    gunzip_at_most(bytes, what, MAX_INFLATED_BYTES)
}

/// Decompresses gzip bytes, refusing to inflate beyond `limit` bytes (reading stops there).
pub fn gunzip_at_most(bytes: &[u8], what: &str, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Data(format!("{what}: corrupt gzip data ({e})")))?;
    if out.len() as u64 > limit {
        return Err(Error::Data(format!(
            "{what}: inflates to more than {limit} bytes ({} compressed bytes), the most a data file may hold here; decompress it yourself and check that it is the file you meant",
            bytes.len()
        )));
    }
    Ok(out)
}

/// Decompresses gzip bytes to text.
pub fn gunzip_text(bytes: &[u8], what: &str) -> Result<String> {
    let out = gunzip_bounded(bytes, what)?;
    String::from_utf8(out).map_err(|e| Error::Data(format!("{what}: not valid gzip-compressed text ({e})")))
}

/// Parses a CSV with a header row whose last column is an integer class label in `0..classes`.
pub fn parse_labelled_csv(text: &str, what: &str, classes: usize) -> Result<Dataset> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| Error::Data(format!("{what}: the file is empty")))?;
    let columns = header.split(',').count();
    if columns < 2 {
        return Err(Error::Data(format!("{what}: the header has {columns} column(s); need features and a label")));
    }
    let features = columns - 1;
    let mut x = Vec::new();
    let mut labels = Vec::new();
    for (line_no, line) in lines {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != columns {
            return Err(Error::Data(format!(
                "{what}, line {}: {} cells, but the header has {columns}",
                line_no + 1,
                cells.len()
            )));
        }
        for (c, cell) in cells[..features].iter().enumerate() {
            let v: f32 = cell.trim().parse().map_err(|_| {
                Error::Data(format!("{what}, line {}, column {}: '{cell}' is not a number", line_no + 1, c + 1))
            })?;
            x.push(v);
        }
        let label = cells[features].trim();
        let l: u32 = label.parse().map_err(|_| {
            Error::Data(format!("{what}, line {}: label '{label}' is not a non-negative integer", line_no + 1))
        })?;
        labels.push(l);
    }
    Dataset::new(x, features, Targets::Classes { labels, classes })
}

/// What a resumed run must see again: the rows and features of both splits and an FNV-1a hash
/// of every input and target (a relative path read from another directory may name another file).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Fingerprint {
    /// Training rows.
    pub train_rows: usize,
    /// Test rows (0: none).
    pub test_rows: usize,
    /// Features per row.
    pub features: usize,
    /// FNV-1a of every input and target, hex.
    pub hash: String,
}

impl Fingerprint {
    /// Of a training split and an optional test split.
    pub fn of(train: &Dataset, test: Option<&Dataset>) -> Fingerprint {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        for ds in std::iter::once(train).chain(test) {
            eat(bytemuck::cast_slice(&ds.x));
            eat(bytemuck::cast_slice(&ds.targets.as_f32()));
        }
        Fingerprint {
            train_rows: train.rows(),
            test_rows: test.map_or(0, |t| t.rows()),
            features: train.features,
            hash: format!("{h:016x}"),
        }
    }
}
