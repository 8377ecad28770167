//! The consumer's position: the sequence number of the last event it
//! handled, as decimal text in a file of its own.
//!
//! The file is replaced, never edited in place: the new number goes to a
//! temporary file next to it, which is flushed to disk and renamed over the
//! old one, and the directory is flushed too. A crash at any point leaves
//! either the old number or the new one, never a torn or empty file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why the position could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read the state file {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the state file {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "the state file {} holds {content:?}, not a sequence number; fix or delete it (deleting starts again from the oldest stored event)",
        path.display()
    )]
    Corrupt { path: PathBuf, content: String },
}

/// The saved position, or `None` when the consumer never handled an event.
pub fn load(path: &Path) -> Result<Option<u64>, StateError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    text.trim()
        .parse()
        .map(Some)
        .map_err(|_| StateError::Corrupt {
            path: path.to_owned(),
            content: text,
        })
}

/// Durably replaces the saved position with `sequence`.
pub fn save(path: &Path, sequence: u64) -> Result<(), StateError> {
    replace(path, sequence).map_err(|source| StateError::Write {
        path: path.to_owned(),
        source,
    })
}

fn replace(path: &Path, sequence: u64) -> io::Result<()> {
    // Beside the target, so the rename stays within one file system.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = File::create(&temporary)?;
    writeln!(file, "{sequence}")?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    // The rename is a change of the directory: flush it, or a power loss
    // may bring the old name back.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("deprovision-watcher-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("scratch directory");
        dir.join("state")
    }

    #[test]
    fn a_missing_file_is_no_position() {
        let path = scratch("missing");
        assert_eq!(load(&path).expect("load"), None);
    }

    #[test]
    fn a_saved_position_is_read_back_and_replaced() {
        let path = scratch("saved");
        save(&path, 41).expect("save");
        save(&path, 42).expect("save again");
        assert_eq!(load(&path).expect("load"), Some(42));
        assert_eq!(fs::read_to_string(&path).expect("read"), "42\n");
        let mut leftover = path.as_os_str().to_owned();
        leftover.push(".tmp");
        assert!(
            !PathBuf::from(leftover).exists(),
            "the temporary file stays"
        );
    }

    #[test]
    fn a_file_without_a_number_is_refused() {
        let path = scratch("corrupt");
        fs::write(&path, "forty-two\n").expect("write");
        assert!(matches!(load(&path), Err(StateError::Corrupt { .. })));
    }
}
