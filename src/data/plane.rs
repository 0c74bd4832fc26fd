//! Points in the plane for the browser playground: a synthetic set or the reader's own CSV file
//! (x, y and a class label per row, read by the library's CSV loader), split into train and
//! test, with the window that frames them and the grid a decision boundary is drawn on.

use super::csv::{self, Header, Options, Task};
use super::synthetic::Synthetic;
use super::{Dataset, Targets};
use crate::error::{Error, Result};

/// A 2-D classification set, split, with the window it is drawn in.
#[derive(Clone, Debug)]
pub struct PlaneData {
    /// Every point (train then test rows are drawn from it).
    pub all: Dataset,
    /// The training split.
    pub train: Dataset,
    /// The test split (may be empty).
    pub test: Dataset,
    /// `[x0, x1, y0, y1]`: the drawn window.
    pub bounds: [f32; 4],
    /// The class names, in label order (`0`, `1`, … for a synthetic set).
    pub class_names: Vec<String>,
}

/// Where the points come from.
pub enum PlaneSource<'a> {
    /// A synthetic set by name (`circle`, `spiral3`, …) with its noise and size.
    Synthetic {
        /// The set's name.
        name: &'a str,
        /// Gaussian noise added to each coordinate.
        noise: f64,
        /// How many points.
        samples: usize,
    },
    /// The text of a CSV file: two numeric columns and a class label (the last column, or a
    /// header's `label`/`class`/`y`/`target` column; any labels, mapped in sorted order).
    Csv {
        /// The file's text.
        text: &'a str,
        /// How the page names it in errors.
        name: &'a str,
    },
}

/// The synthetic sets' window.
const SYNTHETIC_EXTENT: f32 = 6.0;

impl PlaneData {
    /// Loads the points and splits them (`test_fraction` of the rows, seeded).
    pub fn load(source: PlaneSource<'_>, test_fraction: f64, seed: u64) -> Result<PlaneData> {
        let (all, bounds) = match source {
            PlaneSource::Synthetic { name, noise, samples } => {
                let kind = Synthetic::parse(name).ok_or_else(|| {
                    let names: Vec<&str> = Synthetic::ALL.iter().map(|s| s.name()).collect();
                    Error::Config(format!("unknown data set '{name}': use {} or a CSV file", names.join(", ")))
                })?;
                let e = SYNTHETIC_EXTENT;
                (kind.generate(samples, noise, seed)?, [-e, e, -e, e])
            }
            PlaneSource::Csv { text, name } => {
                let all = csv_points(text, name)?;
                let bounds = frame(&all.x);
                (all, bounds)
            }
        };
        if all.classes() > 16 {
            return Err(Error::Data(format!(
                "{} classes: the playground colours at most 16; merge classes or use the command line",
                all.classes()
            )));
        }
        let (train, test) = all.split(test_fraction, seed)?;
        if train.rows() < 2 {
            return Err(Error::Data(format!(
                "{} points leave {} for training: give at least 2 (lower the test fraction or add rows)",
                all.rows(),
                train.rows()
            )));
        }
        let class_names = if all.class_names.len() == all.classes() {
            all.class_names.clone()
        } else {
            (0..all.classes()).map(|c| c.to_string()).collect()
        };
        Ok(PlaneData { all, train, test, bounds, class_names })
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.all.classes()
    }

    /// The model text of an MLP from the plane to the classes: `hidden` is `8-8` (or empty for a
    /// linear model), `activation` a name the model parser knows.
    pub fn mlp_text(&self, hidden: &str, activation: &str) -> String {
        let hidden: Vec<&str> = hidden.split('-').map(str::trim).filter(|w| !w.is_empty()).collect();
        let mut widths = vec!["2".to_string()];
        widths.extend(hidden.iter().map(|w| w.to_string()));
        widths.push(self.classes().to_string());
        format!("mlp:{}:{activation}", widths.join("-"))
    }

    /// The playground's network: with `depth` 0 the MLP of `hidden` widths (`mlp_text`);
    /// otherwise `linear(w)` and `activation` into `depth` blocks of `linear(w)`, the
    /// normalisation (`none`, `batchnorm`, `layernorm`) and `activation`, each summed with its
    /// input when `residual`, then the classifier; w is the first hidden width. A plain and a
    /// residual network of one depth have the same tensors (their first steps start alike).
    pub fn network_text(
        &self,
        hidden: &str,
        activation: &str,
        depth: usize,
        residual: bool,
        norm: &str,
    ) -> Result<String> {
        let norm_layer = match norm {
            "none" | "" => None,
            "batchnorm" => Some("batchnorm1d"),
            "layernorm" => Some("layernorm"),
            other => return Err(Error::Config(format!("normalisation '{other}': use none, batchnorm or layernorm"))),
        };
        if depth == 0 && !residual && norm_layer.is_none() {
            return Ok(self.mlp_text(hidden, activation));
        }
        if depth == 0 {
            return Err(Error::Config("residual blocks and normalisation need a depth of at least 1 block".into()));
        }
        if depth > MAX_DEPTH {
            return Err(Error::Config(format!("depth {depth}: at most {MAX_DEPTH} blocks")));
        }
        let width = hidden.split('-').map(str::trim).find(|w| !w.is_empty()).unwrap_or("8");
        let block = format!("linear({width}); {}{activation}", norm_layer.map_or(String::new(), |n| format!("{n}; ")));
        let mut text = format!("input 2; linear({width}); {activation}");
        for _ in 0..depth {
            if residual {
                text.push_str(&format!("; residual {{ {block} }}"));
            } else {
                text.push_str(&format!("; {block}"));
            }
        }
        text.push_str(&format!("; linear({})", self.classes()));
        Ok(text)
    }

    /// An `n × n` grid over the window, rows from the top (label 0 everywhere: only predicted).
    pub fn grid(&self, n: usize) -> Result<Dataset> {
        let [x0, x1, y0, y1] = self.bounds;
        let step = |lo: f32, hi: f32, i: usize| lo + (hi - lo) * i as f32 / (n - 1).max(1) as f32;
        let mut g = Vec::with_capacity(2 * n * n);
        for j in 0..n {
            for i in 0..n {
                g.push(step(x0, x1, i));
                g.push(step(y1, y0, j));
            }
        }
        Dataset::new(g, 2, Targets::Classes { labels: vec![0; n * n], classes: self.classes().max(2) })
    }

    /// `[x, y, label, is_test]` per point, train rows first, for drawing.
    pub fn points(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(4 * self.all.rows());
        for (set, flag) in [(&self.train, 0.0), (&self.test, 1.0)] {
            let labels = set.targets.as_f32();
            for (p, l) in set.x.chunks(2).zip(labels) {
                out.extend([p[0], p[1], l, flag]);
            }
        }
        out
    }
}

/// A CSV of points: exactly two feature columns and a class column.
fn csv_points(text: &str, name: &str) -> Result<Dataset> {
    let what = format!("the file {name}");
    let target = label_column(text);
    let options = Options { target: target.as_deref(), task: Task::Classify, header: Header::Auto, delimiter: None };
    let parsed = csv::parse_options(text, &what, &options)?;
    let ds = parsed.dataset;
    if ds.features != 2 {
        return Err(Error::Data(format!(
            "{what}: {} feature columns; the playground draws points in the plane, so give x, y and a class \
             label on each row (e.g. `0.5,-1.2,red`)",
            ds.features
        )));
    }
    // (a single class is refused by the CSV reader itself)
    Ok(ds)
}

/// The deepest playground network, in blocks.
pub const MAX_DEPTH: usize = 32;

/// A header's label column by its usual names (`label`, `class`, `y`, `target`), else the last.
fn label_column(text: &str) -> Option<String> {
    let first = text.trim_start_matches('\u{feff}').lines().find(|l| !l.trim().is_empty())?;
    first
        .split([',', ';', '\t'])
        .map(|c| c.trim().trim_matches('"'))
        .find(|c| ["label", "class", "target"].contains(&c.to_ascii_lowercase().as_str()))
        .map(str::to_string)
}

/// A window around the points: their bounding box, 10% wider on each side, and at least 1 wide.
fn frame(x: &[f32]) -> [f32; 4] {
    let (mut b, mut lo, mut hi) = ([0f32; 4], [f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
    for p in x.chunks(2) {
        for k in 0..2 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    for k in 0..2 {
        let pad = ((hi[k] - lo[k]) * 0.1).max(0.5);
        b[2 * k] = lo[k] - pad;
        b[2 * k + 1] = hi[k] + pad;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_of_points_with_word_labels_loads_split_and_framed() {
        let text = "x,y,label\n0,0,red\n1,0,blue\n0,1,red\n1,1,green\n2,2,blue\n-1,3,green\n";
        let d = PlaneData::load(PlaneSource::Csv { text, name: "pts.csv" }, 0.34, 1).unwrap();
        assert_eq!(d.classes(), 3);
        assert_eq!(d.class_names, vec!["blue", "green", "red"]);
        assert_eq!((d.train.rows(), d.test.rows()), (4, 2));
        let [x0, x1, y0, y1] = d.bounds;
        assert!(x0 < -1.0 && x1 > 2.0 && y0 < 0.0 && y1 > 3.0, "{:?}", d.bounds);
        assert_eq!(d.mlp_text("8-8", "tanh"), "mlp:2-8-8-3:tanh");
        assert_eq!(d.mlp_text("", "relu"), "mlp:2-3:relu");
        assert_eq!(d.points().len(), 4 * 6);
        let g = d.grid(5).unwrap();
        assert_eq!(g.rows(), 25);
        assert_eq!((g.x[0], g.x[1]), (x0, y1), "the grid starts at the top left");
    }

    #[test]
    fn bad_point_files_say_what_is_wrong() {
        let err =
            |text: &str| PlaneData::load(PlaneSource::Csv { text, name: "p.csv" }, 0.2, 0).unwrap_err().to_string();
        assert!(err("1,2,3,a\n4,5,6,b\n").contains("3 feature columns"), "{}", err("1,2,3,a\n4,5,6,b\n"));
        assert!(err("1,2,a\n3,4,a\n5,6,a\n").contains("one class"));
        assert!(err("").contains("empty"));
        let bad = err("1,2,a\n3,x,b\n4,5,a\n");
        assert!(bad.contains("line 2") || bad.contains("row 1"), "{bad}");
        let e = PlaneData::load(PlaneSource::Synthetic { name: "spirals", noise: 0.1, samples: 10 }, 0.2, 0);
        assert!(e.unwrap_err().to_string().contains("spiral3"));
    }

    #[test]
    fn synthetic_sets_keep_their_classes_and_window() {
        let d = PlaneData::load(PlaneSource::Synthetic { name: "blobs4", noise: 0.2, samples: 200 }, 0.25, 3).unwrap();
        assert_eq!(d.classes(), 4);
        assert_eq!(d.bounds, [-6.0, 6.0, -6.0, 6.0]);
        assert_eq!(d.train.rows() + d.test.rows(), 200);
        assert_eq!(d.mlp_text("16", "relu"), "mlp:2-16-4:relu");
    }
}
