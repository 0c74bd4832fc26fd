//! Loading a user's CSV file: an optional header row, one target column (by name or 0-based
//! index, the last by default), numeric features; classification or regression.

use super::{Dataset, Targets};
use crate::error::{Error, Result};

/// What the target column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Class labels: the indices 0..k themselves, or any other labels (strings, negative or sparse
    /// integers) mapped to 0..k in sorted order, numbers numerically; missing labels and real
    /// values are refused.
    Classify,
    /// Real values.
    Regress,
}

/// Whether the first row names the columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// A header when some column is not a number in the first row but is in the second: feature
    /// names over numbers. A label column of strings alone does not make a header, so a
    /// headerless file whose labels are words keeps its first row.
    Auto,
    /// The first row is a header.
    Yes,
    /// Every row is data.
    No,
}

/// Parses CSV text (`what` names it in errors), detecting a header row ([`Header::Auto`]).
pub fn parse(text: &str, what: &str, target: Option<&str>, task: Task) -> Result<Dataset> {
    Ok(parse_with(text, what, target, task, Header::Auto)?.0)
}

/// [`parse`] with an explicit header rule; also returns whether the first row was a header.
pub fn parse_with(text: &str, what: &str, target: Option<&str>, task: Task, header: Header) -> Result<(Dataset, bool)> {
    parse_options(text, what, &Options { target, task, header, delimiter: None }).map(|p| (p.dataset, p.has_header))
}

/// How to read a CSV file.
#[derive(Clone, Copy, Debug)]
pub struct Options<'a> {
    /// The target column by header name or 0-based index (None: the last).
    pub target: Option<&'a str>,
    /// Class labels or real values.
    pub task: Task,
    /// Whether the first row is a header.
    pub header: Header,
    /// The field delimiter (None: detected from the first line among `,`, `;` and tab).
    pub delimiter: Option<u8>,
}

/// A parsed file and what was decided about it.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The rows.
    pub dataset: Dataset,
    /// Whether the first row was a header.
    pub has_header: bool,
    /// The delimiter used.
    pub delimiter: u8,
}

/// The delimiter of the first non-empty line: the most frequent of `,`, `;` and tab outside
/// quotes (`,` when none occurs).
fn detect_delimiter(text: &str) -> u8 {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in line.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            for c in counts.iter_mut().filter(|c| c.0 == b) {
                c.1 += 1;
            }
        }
    }
    counts.iter().max_by_key(|c| c.1).filter(|c| c.1 > 0).map_or(b',', |c| c.0)
}

/// Parses CSV text with RFC 4180 quoting (`"Smith, John"`, `""` for a quote), CRLF or LF line
/// ends and a UTF-8 byte-order mark, through the `csv` crate.
pub fn parse_options(text: &str, what: &str, options: &Options<'_>) -> Result<Parsed> {
    let (target, task, header) = (options.target, options.task, options.header);
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = options.delimiter.unwrap_or_else(|| detect_delimiter(text));
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut records: Vec<(usize, Vec<String>)> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            Error::Data(format!("{what}, line {line}: not valid CSV ({e})"))
        })?;
        let line = record.position().map_or(0, |p| p.line()) as usize;
        if record.iter().all(|c| c.is_empty()) {
            continue;
        }
        records.push((line, record.iter().map(String::from).collect()));
    }
    let rows: Vec<(usize, Vec<&str>)> =
        records.iter().map(|(line, cells)| (*line, cells.iter().map(String::as_str).collect())).collect();
    let Some((_, first)) = rows.first() else {
        return Err(Error::Data(format!("{what}: the file is empty")));
    };
    let columns = first.len();
    if columns < 2 {
        let hint = if delimiter == b',' && text.contains(['\t', ';']) {
            " (is it separated by ';' or tabs? give --delimiter)"
        } else {
            ""
        };
        return Err(Error::Data(format!(
            "{what}: {columns} column with the delimiter '{}'; need at least one feature and a target{hint}",
            (delimiter as char).escape_default()
        )));
    }
    let number = |c: &&str| c.parse::<f64>().is_ok();
    let has_header = match header {
        Header::Yes => true,
        Header::No => false,
        Header::Auto => match rows.get(1) {
            Some((_, second)) => first.iter().zip(second).any(|(a, b)| !number(a) && number(b)),
            None => first.iter().any(|c| !number(c)),
        },
    };
    let header: Vec<String> = if has_header {
        first.iter().map(|c| c.to_string()).collect()
    } else {
        (0..columns).map(|i| i.to_string()).collect()
    };
    let target_col = match target {
        None => columns - 1,
        Some(t) => match header.iter().position(|h| h == t) {
            Some(i) => {
                // never a silent choice between two readings of --target
                let named: Vec<usize> = header.iter().enumerate().filter(|(_, h)| *h == t).map(|(j, _)| j).collect();
                if has_header && named.len() > 1 {
                    return Err(Error::Data(format!(
                        "{what}: --target {} is ambiguous: the header names columns {} '{}'; rename one of them",
                        shown(t),
                        named.iter().map(usize::to_string).collect::<Vec<_>>().join(" and "),
                        shown(t)
                    )));
                }
                if let Ok(j) = t.parse::<usize>() {
                    if has_header && j < columns && j != i {
                        return Err(Error::Data(format!(
                            "{what}: --target {t} is ambiguous: column {i} is named '{t}' and {t} is also the 0-based index of column '{}'; rename the header",
                            shown(&header[j])
                        )));
                    }
                }
                i
            }
            None => match t.parse::<usize>() {
                Ok(i) if i < columns => i,
                _ => {
                    return Err(Error::Data(format!(
                        "{what}: no target column '{t}'; columns are {} (or give a 0-based index below {columns})",
                        shown(&header.join(", "))
                    )))
                }
            },
        },
    };
    let body = if has_header { &rows[1..] } else { &rows[..] };
    if body.is_empty() {
        return Err(Error::Data(format!("{what}: no data rows after the header")));
    }
    let features = columns - 1;
    let mut x = Vec::with_capacity(body.len() * features);
    let mut raw_targets = Vec::with_capacity(body.len());
    for (line, cells) in body {
        if cells.len() != columns {
            return Err(Error::Data(format!("{what}, line {line}: {} cells, expected {columns}", cells.len())));
        }
        for (c, cell) in cells.iter().enumerate() {
            if c == target_col {
                raw_targets.push((*line, *cell));
                continue;
            }
            let v: f64 = cell.parse().map_err(|_| {
                Error::Data(format!(
                    "{what}, line {line}, column '{}': '{}' is not a number",
                    shown(&header[c]),
                    shown(cell)
                ))
            })?;
            if !v.is_finite() {
                return Err(Error::Data(format!(
                    "{what}, line {line}, column '{}': {cell} is not finite; remove or impute it",
                    header[c]
                )));
            }
            if v.abs() > f32::MAX as f64 {
                return Err(Error::Data(format!(
                    "{what}, line {line}, column '{}': {cell} is beyond the f32 range (±3.4e38) the GPU computes in; rescale the column",
                    header[c]
                )));
            }
            x.push(v as f32);
        }
    }
    let targets = match task {
        Task::Regress => {
            let mut values = Vec::with_capacity(raw_targets.len());
            for (line, cell) in &raw_targets {
                let v: f64 = cell.parse().map_err(|_| {
                    Error::Data(format!(
                        "{what}, line {line}: target '{}' is not a number (use --task classify for labels)",
                        shown(cell)
                    ))
                })?;
                if !v.is_finite() {
                    return Err(Error::Data(format!("{what}, line {line}: target {cell} is not finite")));
                }
                if v.abs() > f32::MAX as f64 {
                    return Err(Error::Data(format!(
                        "{what}, line {line}: target {cell} is beyond the f32 range (±3.4e38); rescale the column"
                    )));
                }
                // (output − target)² must stay finite in f32: |target| ≤ √f32::MAX ≈ 1.8e19
                if v.abs() > 1e19 {
                    return Err(Error::Data(format!(
                        "{what}, line {line}: target {cell} squares beyond the f32 range in the MSE loss (|target| must stay below 1e19); rescale the column, e.g. to standard units"
                    )));
                }
                values.push(v as f32);
            }
            Targets::Values { values, width: 1 }
        }
        Task::Classify => {
            let (labels, classes, names) = class_labels(&raw_targets, what)?;
            let ds = Dataset::new(x, features, Targets::Classes { labels, classes })?;
            return Ok(Parsed { dataset: Dataset { class_names: names, ..ds }, has_header, delimiter });
        }
    };
    Ok(Parsed { dataset: Dataset::new(x, features, targets)?, has_header, delimiter })
}

/// A cell or header as an error message shows it: at most 60 characters (a damaged file can hold
/// a 50 MB field, which must not be echoed whole).
fn shown(text: &str) -> String {
    const MAX: usize = 60;
    // a quoted field may hold line breaks: an error stays on one line
    let one_line = |t: &str| -> String {
        t.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
    };
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}… ({} bytes)", one_line(&text[..at]), text.len()),
        None => one_line(text),
    }
}

/// The most classes a label column may hold (a column with more distinct values is almost surely
/// a real-valued target or an identifier).
pub const MAX_CLASSES: usize = 1024;

/// Class indices from a label column, never guessing: missing labels and real values are errors;
/// integer labels that are already 0..k (k ≤ MAX_CLASSES) are the indices themselves; any other
/// labels (strings, negative or sparse integers) map to 0..k in sorted order (numbers
/// numerically), and their names are returned so the mapping can be written down.
fn class_labels(raw: &[(usize, &str)], what: &str) -> Result<(Vec<u32>, usize, Vec<String>)> {
    for (line, cell) in raw {
        if cell.is_empty() || ["na", "nan", "null", "none", "?"].contains(&cell.to_ascii_lowercase().as_str()) {
            return Err(Error::Data(format!(
                "{what}, line {line}: the label is '{cell}' (missing); remove the row or fill in its class"
            )));
        }
    }
    // integers, also written as integral floats ("3.0")
    let integer = |c: &str| -> Option<i64> {
        c.parse::<i64>()
            .ok()
            .or_else(|| c.parse::<f64>().ok().filter(|v| v.fract() == 0.0 && v.abs() < 9e15).map(|v| v as i64))
    };
    let too_many = |k: usize| {
        Error::Data(format!(
            "{what}: the target column has {k} distinct labels (at most {MAX_CLASSES} classes); if it holds real values use \
             --task regress, otherwise pick the label column with --target"
        ))
    };
    if let Some(ints) = raw.iter().map(|(_, c)| integer(c)).collect::<Option<Vec<i64>>>() {
        let mut distinct = ints.clone();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() > MAX_CLASSES {
            return Err(too_many(distinct.len()));
        }
        one_class_is_refused(&distinct.iter().map(i64::to_string).collect::<Vec<_>>(), what)?;
        let (lo, hi) = (distinct[0], distinct[distinct.len() - 1]);
        if lo == 0 && hi as usize == distinct.len() - 1 {
            // exactly the indices 0..k, every one present
            return Ok((ints.iter().map(|&v| v as u32).collect(), distinct.len(), Vec::new()));
        }
        // anything else ({0, 5}, {1, 2}, {-1, 1}) maps in numeric order, written down by the caller
        let labels = ints.iter().map(|v| distinct.binary_search(v).unwrap_or(0) as u32).collect();
        return Ok((labels, distinct.len(), distinct.iter().map(i64::to_string).collect()));
    }
    if let Some((line, cell)) =
        raw.iter().find(|(_, c)| c.parse::<f64>().is_ok_and(|v| v.is_finite() && v.fract() != 0.0))
    {
        if raw.iter().all(|(_, c)| c.parse::<f64>().is_ok()) {
            return Err(Error::Data(format!(
                "{what}: the target column holds real values ('{cell}' on line {line}); use --task regress, or give class labels"
            )));
        }
    }
    // names: numbers first in numeric order, then the rest in byte order
    let number = |c: &str| c.parse::<f64>().ok().filter(|v| v.is_finite());
    let mut names: Vec<&str> = raw.iter().map(|(_, c)| *c).collect();
    names.sort_unstable_by(|a, b| match (number(a), number(b)) {
        (Some(x), Some(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    });
    names.dedup();
    if names.len() > MAX_CLASSES {
        return Err(too_many(names.len()));
    }
    let index: std::collections::HashMap<&str, u32> = names.iter().enumerate().map(|(i, n)| (*n, i as u32)).collect();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    one_class_is_refused(&names, what)?;
    let labels = raw.iter().map(|(_, c)| index[c]).collect();
    Ok((labels, names.len(), names))
}

/// A classifier needs two classes: a label column with one value is a wrong `--target` or a
/// regression target, never a model to train.
fn one_class_is_refused(distinct: &[String], what: &str) -> Result<()> {
    if distinct.len() < 2 {
        return Err(Error::Data(format!(
            "{what}: every row has the label '{}', one class; classification needs at least 2 (pick another column with --target, or use --task regress)",
            shown(distinct.first().map_or("", String::as_str))
        )));
    }
    Ok(())
}

/// Reads and parses a CSV file, detecting a header row.
pub fn load(path: &std::path::Path, target: Option<&str>, task: Task) -> Result<Dataset> {
    Ok(load_options(path, &Options { target, task, header: Header::Auto, delimiter: None })?.dataset)
}

/// [`load`] with explicit options; also says what was decided (header, delimiter).
pub fn load_options(path: &std::path::Path, options: &Options<'_>) -> Result<Parsed> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    parse_options(&text, &path.display().to_string(), options)
}
