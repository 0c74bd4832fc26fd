//! The MNIST IDX format (LeCun et al.): big-endian magic 2051 for images (`u8 [n, rows, cols]`)
//! and 2049 for labels (`u8 [n]`), optionally gzip-compressed. Works for the bundled 10k MNIST
//! files and for the full MNIST / Fashion-MNIST files a user downloads.

use super::{Dataset, Targets};
use crate::error::{Error, Result};

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number first (so swapped files are named as such), then the header length.
fn check_header(bytes: &[u8], what: &str, want: u32, header: usize) -> Result<()> {
    let kind = if want == IMAGES_MAGIC { "images" } else { "labels" };
    if bytes.len() >= 4 {
        let magic = be_u32(bytes, 0);
        if magic != want {
            let swapped = if want == IMAGES_MAGIC { LABELS_MAGIC } else { IMAGES_MAGIC };
            let hint = if magic == swapped { " (the image and label files look swapped)" } else { "" };
            return Err(Error::Data(format!("{what}: magic number {magic}, expected {want} for IDX {kind}{hint}")));
        }
    }
    if bytes.len() < header {
        return Err(Error::Data(format!(
            "{what}: {} bytes is too short for an IDX {kind} header ({header} bytes)",
            bytes.len()
        )));
    }
    Ok(())
}

/// Decompresses when the bytes start with the gzip magic, else returns them as they are.
pub fn maybe_gunzip(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        super::gunzip_bounded(bytes, what)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parses an IDX image file: returns (count, rows, cols, pixels).
pub fn parse_images(bytes: &[u8], what: &str) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = maybe_gunzip(bytes, what)?;
    check_header(&bytes, what, IMAGES_MAGIC, 16)?;
    let (n, rows, cols) = (be_u32(&bytes, 4) as usize, be_u32(&bytes, 8) as usize, be_u32(&bytes, 12) as usize);
    // the three sizes come from the file: their product may overflow (a damaged header)
    let need = n.checked_mul(rows).and_then(|v| v.checked_mul(cols)).ok_or_else(|| {
        Error::Data(format!("{what}: the header promises {n} images of {rows}x{cols}, more bytes than can exist"))
    })?;
    if bytes.len() - 16 < need {
        return Err(Error::Data(format!(
            "{what}: truncated: the header promises {n} images of {rows}x{cols} ({need} bytes) but {} bytes follow",
            bytes.len() - 16
        )));
    }
    Ok((n, rows, cols, bytes[16..16 + need].to_vec()))
}

/// Parses an IDX label file.
pub fn parse_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    let bytes = maybe_gunzip(bytes, what)?;
    check_header(&bytes, what, LABELS_MAGIC, 8)?;
    let n = be_u32(&bytes, 4) as usize;
    if bytes.len() - 8 < n {
        return Err(Error::Data(format!(
            "{what}: truncated: the header promises {n} labels but {} bytes follow",
            bytes.len() - 8
        )));
    }
    Ok(bytes[8..8 + n].to_vec())
}

/// Images and labels as a data set of `[1, rows, cols]` inputs scaled to [0, 1] and 10 classes
/// (or more if a label says so).
pub fn dataset(images: &[u8], labels: &[u8], images_what: &str, labels_what: &str) -> Result<Dataset> {
    let (n, rows, cols, pixels) = parse_images(images, images_what)?;
    let labels = parse_labels(labels, labels_what)?;
    if labels.len() != n {
        return Err(Error::Data(format!("{images_what} has {n} images but {labels_what} has {} labels", labels.len())));
    }
    let classes = (labels.iter().copied().max().unwrap_or(0) as usize + 1).max(10);
    let labels = Targets::Classes { labels: labels.iter().map(|&l| l as u32).collect(), classes };
    Dataset::from_pixels(pixels, [1, rows, cols], labels)
}

/// Reads an IDX image file and label file from disk.
pub fn load(images_path: &std::path::Path, labels_path: &std::path::Path) -> Result<Dataset> {
    let read =
        |p: &std::path::Path| std::fs::read(p).map_err(|source| Error::Io { path: p.display().to_string(), source });
    dataset(
        &read(images_path)?,
        &read(labels_path)?,
        &images_path.display().to_string(),
        &labels_path.display().to_string(),
    )
}
