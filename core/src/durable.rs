//! Durable small files: write a temp file, fsync it, rename it over the target, fsync the
//! directory, so a crash at any point leaves either the old or the new contents.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_kind, Classify, ErrorKind, Result};

/// Writing a file durably failed (the I/O error is the source).
#[derive(Debug, thiserror::Error)]
#[error("writing {}: {source}", .path.display())]
pub struct WriteFailed {
    /// The file being written.
    pub path: PathBuf,
    /// The cause.
    pub source: std::io::Error,
}

impl Classify for WriteFailed {
    fn kind(&self) -> ErrorKind {
        io_kind(&self.source)
    }
}

/// Writes `bytes` to `path` atomically and durably. With `private`, the file is readable
/// by its owner only (0600 on Unix).
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let ctx = |source| WriteFailed {
        path: path.to_path_buf(),
        source,
    };
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = path.with_file_name(name);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp).map_err(ctx)?;
    f.write_all(bytes).map_err(ctx)?;
    f.sync_all().map_err(ctx)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(ctx)?;
    sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(ctx)?;
    Ok(())
}

/// Makes a rename or creation in `dir` durable (a no-op where directories cannot be
/// opened, as on Windows).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(test)]
    DIR_SYNCS.with(|n| n.set(n.get() + 1));
    #[cfg(unix)]
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Creates `dir` and its missing parents, and makes each new entry durable (the parent
/// of every directory created is synced).
pub fn create_dir_all(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_all(parent)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => sync_dir(dir.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
thread_local! {
    static DIR_SYNCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times [`sync_dir`] ran on this thread (tests check that a rename is followed
/// by one).
#[cfg(test)]
pub(crate) fn dir_syncs_on_this_thread() -> u64 {
    DIR_SYNCS.with(|n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_contents_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("memmesh-durable-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        write_atomic(&path, b"one", true).unwrap();
        write_atomic(&path, b"two", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Issue 12, defect 14: a rename (the identity key, a generation, a transfer's state)
    /// was not followed by a directory fsync, so a crash could lose the new name.
    #[test]
    fn a_rename_is_followed_by_a_directory_sync_and_a_private_file_stays_private() {
        let dir = std::env::temp_dir().join(format!("memmesh-durable-sync-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("identity.key");
        for contents in [&b"one"[..], b"two"] {
            let before = dir_syncs_on_this_thread();
            write_atomic(&path, contents, true).unwrap();
            assert_eq!(
                dir_syncs_on_this_thread() - before,
                1,
                "one sync per rename"
            );
            assert_eq!(std::fs::read(&path).unwrap(), contents);
        }
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("identity.key")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn creates_missing_directories_and_syncs_their_parents() {
        let dir = std::env::temp_dir().join(format!("memmesh-mkdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let deep = dir.join("a").join("b");
        let before = dir_syncs_on_this_thread();
        create_dir_all(&deep).unwrap();
        assert!(deep.is_dir());
        assert_eq!(dir_syncs_on_this_thread() - before, 3);
        create_dir_all(&deep).unwrap();
        assert_eq!(dir_syncs_on_this_thread() - before, 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_keeps_its_path_and_cause() {
        let path = std::env::temp_dir()
            .join(format!("memmesh-durable-missing-{}", std::process::id()))
            .join("f");
        let e = write_atomic(&path, b"x", false).unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::NotFound);
        assert!(
            e.message()
                .starts_with(&format!("writing {}: ", path.display())),
            "{e}"
        );
        assert!(std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<std::io::Error>())
            .is_some());
    }
}
