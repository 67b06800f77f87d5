//! Secret keys kept as files under the data directory (token signing, download
//! links). Created once with random bytes, readable by the owner only, and
//! the same after a restart.

use std::path::Path;

use rand::RngCore;

use crate::error::AppError;

/// Reads the 32-byte key at `path`, creating it on first use.
pub fn load_or_create(path: &Path) -> Result<[u8; 32], AppError> {
    match std::fs::read(path) {
        Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| AppError::internal(format!("{} must hold exactly 32 bytes", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            write_private(path, &key)?;
            Ok(key)
        }
        Err(e) => Err(AppError::internal(format!("{}: {e}", path.display()))),
    }
}

/// Creates `path` with owner-only permissions; fails if it exists, so two
/// processes starting at once cannot both write a different key.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path).map_err(|e| AppError::internal(format!("{}: {e}", path.display())))?;
    f.write_all(bytes).map_err(AppError::internal)?;
    f.sync_all().map_err(AppError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let first = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap(), first);
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create(&path).is_err(), "a truncated key is an error, not silently replaced");
    }
}
