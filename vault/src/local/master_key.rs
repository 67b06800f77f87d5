//! The local master key file: 32 random bytes at `<data_dir>/master.key`, readable only by its
//! owner.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};

use crate::cipher::{random_key, KEY_LEN};
use crate::VaultError;

/// File name of the master key inside the data directory.
pub(crate) const MASTER_KEY_FILE: &str = "master.key";

/// Reads the master key of `data_dir`, creating the directory and a new random key if there is
/// none yet. A key file of any size other than 32 bytes is refused: guessing what such a file
/// means could silently make every stored value unreadable.
pub(crate) fn load_or_create(data_dir: &Path) -> Result<[u8; KEY_LEN], VaultError> {
    fs::create_dir_all(data_dir)
        .map_err(|e| VaultError::Unavailable(format!("cannot create data dir {}: {e}", data_dir.display())))?;
    let path = data_dir.join(MASTER_KEY_FILE);
    match read_key(&path) {
        Err(ReadError::Missing) => {}
        Err(ReadError::Failed(error)) => return Err(error),
        Ok(key) => return Ok(key),
    }
    create(data_dir, &path)?;
    read_key(&path).map_err(|error| match error {
        ReadError::Missing => {
            VaultError::Unavailable(format!("master key {} vanished right after it was created", path.display()))
        }
        ReadError::Failed(error) => error,
    })
}

enum ReadError {
    Missing,
    Failed(VaultError),
}

fn read_key(path: &Path) -> Result<[u8; KEY_LEN], ReadError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            return Err(ReadError::Failed(VaultError::Unavailable(format!(
                "cannot read master key {}: {e}",
                path.display()
            ))))
        }
    };
    warn_if_readable_by_others(path);
    let len = bytes.len();
    bytes.try_into().map_err(|_| {
        ReadError::Failed(VaultError::Unavailable(format!(
            "master key {} holds {len} bytes, expected exactly {KEY_LEN}; \
             refusing to use it (restore the original file)",
            path.display()
        )))
    })
}

/// Writes a new key under a temporary name and links it into place, so a concurrent opener
/// never sees a half-written key and exactly one of several racing creators wins.
fn create(data_dir: &Path, path: &Path) -> Result<(), VaultError> {
    let unavailable = |what: &str, e: std::io::Error| {
        VaultError::Unavailable(format!("cannot {what} master key {}: {e}", path.display()))
    };
    let temp = temp_path(data_dir);
    let result = (|| {
        let mut file = owner_only_options().open(&temp).map_err(|e| unavailable("create", e))?;
        file.write_all(&random_key()).map_err(|e| unavailable("write", e))?;
        file.sync_all().map_err(|e| unavailable("sync", e))?;
        match fs::hard_link(&temp, path) {
            Ok(()) => {
                sync_dir(data_dir);
                tracing::info!(path = %path.display(), "created a new master key");
                Ok(())
            }
            // Another process created the key first: use theirs.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(unavailable("install", e)),
        }
    })();
    // The temporary name is only a staging step; failing to remove it loses nothing.
    let _ = fs::remove_file(&temp);
    result
}

fn temp_path(data_dir: &Path) -> PathBuf {
    let suffix: u64 = rand::random();
    data_dir.join(format!(".{MASTER_KEY_FILE}.{suffix:016x}.tmp"))
}

#[cfg(unix)]
fn owner_only_options() -> OpenOptions {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true).mode(0o600);
    options
}

#[cfg(not(unix))]
fn owner_only_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    options
}

/// Makes the new directory entry durable; best effort, as not every platform can sync a
/// directory.
fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{mode:o}"),
                "master key file is accessible to other users; restrict it to mode 600"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reads_the_same_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = dir.path().join("nested").join("data");
        let first = load_or_create(&data_dir).expect("creates");
        let second = load_or_create(&data_dir).expect("reads");
        assert_eq!(first, second);
        assert_ne!(first, [0u8; KEY_LEN]);
        let leftovers: Vec<_> =
            fs::read_dir(&data_dir).expect("lists").map(|entry| entry.expect("entry").file_name()).collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from(MASTER_KEY_FILE)]);
    }

    #[cfg(unix)]
    #[test]
    fn new_key_file_is_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("temp dir");
        load_or_create(dir.path()).expect("creates");
        let mode = fs::metadata(dir.path().join(MASTER_KEY_FILE)).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn wrong_size_key_is_refused_and_left_untouched() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(MASTER_KEY_FILE);
        for len in [0usize, 16, 31, 33, 64] {
            fs::write(&path, vec![9u8; len]).expect("writes");
            let error = load_or_create(dir.path()).expect_err("refused");
            let VaultError::Unavailable(message) = error else {
                panic!("unexpected error {error:?}");
            };
            assert!(message.contains(&format!("holds {len} bytes")), "{message}");
            assert_eq!(fs::read(&path).expect("reads").len(), len, "file kept as is");
        }
    }
}
