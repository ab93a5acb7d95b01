//! The data directory's lock: one node per data dir.
//!
//! Two nodes on one data dir would share one identity and overwrite each other's files
//! (the persisted generation, partial transfers, and the stores to come). A node takes an
//! exclusive advisory lock on `<data_dir>/LOCK` before reading anything there and holds it
//! until it has shut down; a second node on the same dir fails to start with a clear
//! error. The lock is the operating system's (`flock` on Unix), so it is released when the
//! process dies, however it dies: a node restarted after a SIGKILL never finds a stale lock.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{io_kind, Classify, ErrorKind, Result};

/// The lock file's name inside the data dir.
pub const LOCK_FILE: &str = "LOCK";

/// What goes wrong taking a data dir.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataDirError {
    /// The directory could not be created.
    #[error("creating data dir {}: {source}", .dir.display())]
    Create {
        /// The directory.
        dir: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The lock file could not be opened.
    #[error("opening {}: {source}", .path.display())]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Another node holds the lock.
    #[error(
        "data dir {} is in use by another memmesh node (it holds {}); give each node its \
         own data_dir",
        .dir.display(),
        .lock.display()
    )]
    InUse {
        /// The directory.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// Locking failed for another reason.
    #[error("locking {}: {source}", .path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl Classify for DataDirError {
    fn kind(&self) -> ErrorKind {
        match self {
            DataDirError::InUse { .. } => ErrorKind::InvalidInput,
            DataDirError::Create { source, .. }
            | DataDirError::Open { source, .. }
            | DataDirError::Lock { source, .. } => io_kind(source),
        }
    }
}

/// An exclusive hold on a data dir; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Creates `dir` if needed and locks it, or fails with `InvalidInput` if another node
    /// (in this process or another one) holds it.
    pub fn acquire(dir: &Path) -> Result<Self> {
        crate::durable::create_dir_all(dir).map_err(|source| DataDirError::Create {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| DataDirError::Open {
                path: path.clone(),
                source,
            })?;
        match try_lock(&file) {
            Ok(true) => Ok(Self { _file: file, path }),
            Ok(false) => Err(DataDirError::InUse {
                dir: dir.to_path_buf(),
                lock: path,
            }
            .into()),
            Err(source) => Err(DataDirError::Lock { path, source }.into()),
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes an exclusive lock on `file` without waiting: `Ok(false)` when another open file
/// description holds it. (`File::try_lock` is newer than our minimum Rust version.)
#[cfg(unix)]
fn try_lock(file: &File) -> std::io::Result<bool> {
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Elsewhere the data dir is not locked (memmesh targets Unix-likes first).
#[cfg(not(unix))]
fn try_lock(_file: &File) -> std::io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_dir_fails_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("memmesh-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = DataDirLock::acquire(&dir).unwrap();
        assert!(first.path().ends_with(LOCK_FILE));
        let e = DataDirLock::acquire(&dir).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.message().contains("in use"), "{e}");
        drop(first);
        let again = DataDirLock::acquire(&dir).unwrap();
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 12, defect 14: a data dir created at start is made durable (its parent is
    /// synced), so the identity written into it cannot vanish with it in a crash.
    #[test]
    fn a_new_data_dir_is_made_durable() {
        let base = std::env::temp_dir().join(format!("memmesh-lock-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let before = crate::durable::dir_syncs_on_this_thread();
        let lock = DataDirLock::acquire(&base.join("data")).unwrap();
        assert_eq!(crate::durable::dir_syncs_on_this_thread() - before, 2);
        drop(lock);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn an_io_failure_keeps_its_cause() {
        let file = std::env::temp_dir().join(format!("memmesh-lock-file-{}", std::process::id()));
        std::fs::write(&file, b"not a dir").unwrap();
        let e = DataDirLock::acquire(&file.join("sub")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Io);
        assert!(e.message().starts_with("creating data dir "), "{e}");
        let cause = std::error::Error::source(&e).and_then(|c| c.downcast_ref::<std::io::Error>());
        assert!(cause.is_some(), "the io::Error is kept");
        assert!(matches!(
            e.downcast_ref::<DataDirError>(),
            Some(DataDirError::Create { .. })
        ));
        std::fs::remove_file(&file).unwrap();
    }
}
