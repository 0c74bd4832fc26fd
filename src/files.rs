//! Files written whole or not at all. Every file of a run (metrics, summary, plots, model text,
//! checkpoints) goes to a hidden temporary sibling first and is renamed over its name only once it
//! is complete and flushed, so a `kill -9`, a crash or a full disk leaves the old file or the new
//! one, never an empty or cut one; an error names the file that could not be written.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `<dir>/.tmp-<pid>-<name>`: in the same directory (a rename across file systems is not atomic)
/// and keeping the extension (the plot backends choose their format by it).
pub fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace_with(path, |tmp| {
        let mut f = std::fs::File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
    .map_err(|source| Error::Io { path: path.display().to_string(), source })
}

/// Lets `write` produce the file at a temporary path, then renames it over `path`; on any error
/// the temporary file is removed and `path` is as it was.
pub fn replace_with<E>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<(), E>,
) -> std::result::Result<(), E>
where
    E: From<std::io::Error>,
{
    let tmp = temporary_sibling(path);
    let result = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(E::from));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
