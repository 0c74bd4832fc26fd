//! Loading a user's CSV file: an optional header row, one target column (by name or 0-based
//! index, the last by default), numeric features; classification or regression.

use super::{Dataset, Targets};
use crate::error::{Error, Result};

/// What the target column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Class labels: non-negative integers, or any strings (mapped to 0..k in sorted order).
    Classify,
    /// Real values.
    Regress,
}

/// Parses CSV text (`what` names it in errors).
pub fn parse(text: &str, what: &str, target: Option<&str>, task: Task) -> Result<Dataset> {
    let rows: Vec<(usize, Vec<&str>)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split(',').map(str::trim).collect()))
        .collect();
    let Some((_, first)) = rows.first() else {
        return Err(Error::Data(format!("{what}: the file is empty")));
    };
    let columns = first.len();
    if columns < 2 {
        return Err(Error::Data(format!("{what}: {columns} column; need at least one feature and a target")));
    }
    let has_header = first.iter().any(|c| c.parse::<f64>().is_err());
    let header: Vec<String> = if has_header {
        first.iter().map(|c| c.to_string()).collect()
    } else {
        (0..columns).map(|i| i.to_string()).collect()
    };
    let target_col = match target {
        None => columns - 1,
        Some(t) => match header.iter().position(|h| h == t) {
            Some(i) => i,
            None => match t.parse::<usize>() {
                Ok(i) if i < columns => i,
                _ => {
                    return Err(Error::Data(format!(
                        "{what}: no target column '{t}'; columns are {} (or give a 0-based index below {columns})",
                        header.join(", ")
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
            let v: f32 = cell.parse().map_err(|_| {
                Error::Data(format!("{what}, line {line}, column '{}': '{cell}' is not a number", header[c]))
            })?;
            if !v.is_finite() {
                return Err(Error::Data(format!(
                    "{what}, line {line}, column '{}': {cell} is not finite; remove or impute it",
                    header[c]
                )));
            }
            x.push(v);
        }
    }
    let targets = match task {
        Task::Regress => {
            let mut values = Vec::with_capacity(raw_targets.len());
            for (line, cell) in &raw_targets {
                let v: f32 = cell.parse().map_err(|_| {
                    Error::Data(format!(
                        "{what}, line {line}: target '{cell}' is not a number (use --task classify for labels)"
                    ))
                })?;
                if !v.is_finite() {
                    return Err(Error::Data(format!("{what}, line {line}: target {cell} is not finite")));
                }
                values.push(v);
            }
            Targets::Values { values, width: 1 }
        }
        Task::Classify => {
            let ints: Option<Vec<u32>> = raw_targets.iter().map(|(_, c)| c.parse::<u32>().ok()).collect();
            match ints {
                Some(labels) => {
                    let classes = labels.iter().copied().max().unwrap_or(0) as usize + 1;
                    Targets::Classes { labels, classes: classes.max(2) }
                }
                None => {
                    let mut names: Vec<&str> = raw_targets.iter().map(|(_, c)| *c).collect();
                    names.sort_unstable();
                    names.dedup();
                    let labels = raw_targets
                        .iter()
                        .map(|(_, c)| names.binary_search(c).map(|i| i as u32).unwrap_or(0))
                        .collect();
                    Targets::Classes { labels, classes: names.len().max(2) }
                }
            }
        }
    };
    Dataset::new(x, features, targets)
}

/// Reads and parses a CSV file.
pub fn load(path: &std::path::Path, target: Option<&str>, task: Task) -> Result<Dataset> {
    let text =
        std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.display().to_string(), source })?;
    parse(&text, &path.display().to_string(), target, task)
}
