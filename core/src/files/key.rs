//! The node's storage key: wraps every file key and seals the metadata boxes.
//!
//! It lives in `<data_dir>/storage.key` (mode 0600, written durably), either in the clear
//! (protected by the file's permissions) or wrapped by a key-encryption key derived from
//! a passphrase with Argon2id, in which case the data dir is useless without the
//! passphrase. The wrap is an AEAD box, so a wrong passphrase fails its authentication
//! and is reported as `Unauthorized`. Byte layout: `docs/storage-format.md`.

use std::path::Path;

use ring::aead::LessSafeKey;

use super::crypt::{aead_key, open_box, random, seal_box, KEY_LEN, NONCE_LEN, TAG};
use super::error::FilesError;

/// The key file's name inside the data dir.
pub const KEY_FILE: &str = "storage.key";
/// The first bytes of the key file.
pub const KEY_MAGIC: &[u8; 8] = b"memmeshK";
/// The key-file format version.
pub const KEY_VERSION: u8 = 1;
/// Key-file kind: the key in the clear.
const KIND_PLAIN: u8 = 0;
/// Key-file kind: the key wrapped by an Argon2id-derived key.
const KIND_PASSPHRASE: u8 = 1;
/// Argon2id memory cost for new key files, in KiB (64 MiB).
pub const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes for new key files.
pub const ARGON2_ITERATIONS: u32 = 3;
/// Argon2id lanes for new key files.
pub const ARGON2_LANES: u32 = 1;
/// Largest memory cost a key file may ask for (1 GiB): a damaged or hostile file must not
/// make the node allocate without bound.
const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;
/// Bytes of the Argon2id salt.
const SALT_LEN: usize = 16;
/// Bytes before the kind-specific part: magic, version, kind.
const PREAMBLE: usize = 8 + 1 + 1;
/// Bytes of a plain key file.
const PLAIN_LEN: usize = PREAMBLE + KEY_LEN;
/// Bytes of the passphrase key file's authenticated prefix (preamble, params, salt).
const PASS_AAD_LEN: usize = PREAMBLE + 12 + SALT_LEN;
/// Bytes of a passphrase key file.
const PASS_LEN: usize = PASS_AAD_LEN + NONCE_LEN + KEY_LEN + TAG;

/// The storage key, ready to seal and open.
pub struct StorageKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

impl StorageKey {
    /// The AEAD key.
    pub(crate) fn aead(&self) -> &LessSafeKey {
        &self.key
    }

    /// A key from raw bytes (tests and tools).
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<StorageKey, FilesError> {
        Ok(StorageKey {
            key: aead_key(bytes)?,
        })
    }

    /// Loads `<dir>/storage.key`, or creates it (with `passphrase`, wrapped) when it does
    /// not exist and `may_create`. A key file made with a passphrase needs it, and one made
    /// without refuses one.
    pub fn load_or_create(
        dir: &Path,
        passphrase: Option<&str>,
        may_create: bool,
    ) -> Result<StorageKey, FilesError> {
        let path = dir.join(KEY_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => {
                return create(&path, passphrase);
            }
            Err(e) => return Err(FilesError::io("reading", &path)(e)),
        };
        let bad = || FilesError::corrupted(format!("storage key {}", path.display()));
        if bytes.len() < PREAMBLE || &bytes[..8] != KEY_MAGIC || bytes[8] != KEY_VERSION {
            return Err(bad());
        }
        match (bytes[9], passphrase) {
            (KIND_PLAIN, None) => {
                let raw: [u8; KEY_LEN] = bytes[PREAMBLE..].try_into().map_err(|_| bad())?;
                StorageKey::from_bytes(&raw)
            }
            (KIND_PLAIN, Some(_)) => Err(FilesError::PassphraseUnexpected { path }),
            (KIND_PASSPHRASE, None) => Err(FilesError::PassphraseRequired { path }),
            (KIND_PASSPHRASE, Some(pass)) => {
                if bytes.len() != PASS_LEN {
                    return Err(bad());
                }
                let word = |at: usize| {
                    let mut w = [0u8; 4];
                    w.copy_from_slice(&bytes[at..at + 4]);
                    u32::from_le_bytes(w)
                };
                let (m, t, p) = (word(PREAMBLE), word(PREAMBLE + 4), word(PREAMBLE + 8));
                if m > ARGON2_MAX_MEMORY_KIB || t > 64 || p > 16 {
                    return Err(bad());
                }
                let salt = &bytes[PREAMBLE + 12..PASS_AAD_LEN];
                let kek = derive(pass, salt, m, t, p).map_err(|_| bad())?;
                let (aad, wrapped) = bytes.split_at(PASS_AAD_LEN);
                let raw = open_box(&kek, aad, wrapped)
                    .ok_or(FilesError::WrongPassphrase { path: path.clone() })?;
                let raw: [u8; KEY_LEN] = raw.try_into().map_err(|_| bad())?;
                StorageKey::from_bytes(&raw)
            }
            _ => Err(bad()),
        }
    }
}

/// Argon2id(passphrase, salt) as a ChaCha20-Poly1305 key.
fn derive(pass: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<LessSafeKey, FilesError> {
    let params = argon2::Params::new(m, t, p, Some(KEY_LEN))
        .map_err(|_| FilesError::Crypto("Argon2id parameters"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut kek = [0u8; KEY_LEN];
    argon
        .hash_password_into(pass.as_bytes(), salt, &mut kek)
        .map_err(|_| FilesError::Crypto("Argon2id"))?;
    aead_key(&kek)
}

/// Draws a new storage key and writes its file durably (0600).
fn create(path: &Path, passphrase: Option<&str>) -> Result<StorageKey, FilesError> {
    let raw: [u8; KEY_LEN] = random()?;
    let mut file = Vec::with_capacity(PASS_LEN);
    file.extend_from_slice(KEY_MAGIC);
    file.push(KEY_VERSION);
    match passphrase {
        None => {
            file.push(KIND_PLAIN);
            file.extend_from_slice(&raw);
            debug_assert_eq!(file.len(), PLAIN_LEN);
        }
        Some(pass) => {
            file.push(KIND_PASSPHRASE);
            for w in [ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_LANES] {
                file.extend_from_slice(&w.to_le_bytes());
            }
            let salt: [u8; SALT_LEN] = random()?;
            file.extend_from_slice(&salt);
            let kek = derive(
                pass,
                &salt,
                ARGON2_MEMORY_KIB,
                ARGON2_ITERATIONS,
                ARGON2_LANES,
            )?;
            let wrapped = seal_box(&kek, &file, &raw)?;
            file.extend_from_slice(&wrapped);
            debug_assert_eq!(file.len(), PASS_LEN);
        }
    }
    crate::durable::write_atomic(path, &file, true).map_err(|e| FilesError::Io {
        what: "writing",
        path: path.to_path_buf(),
        source: std::io::Error::other(e.message().to_string()),
    })?;
    StorageKey::from_bytes(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::crypt::{open_box, seal_box};

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("memmesh-key-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn same(a: &StorageKey, b: &StorageKey) -> bool {
        let boxed = seal_box(a.aead(), b"x", b"probe").unwrap();
        open_box(b.aead(), b"x", &boxed).is_some()
    }

    #[test]
    fn a_plain_key_is_created_private_and_loaded_again() {
        let d = dir("plain");
        let k1 = StorageKey::load_or_create(&d, None, true).unwrap();
        let k2 = StorageKey::load_or_create(&d, None, false).unwrap();
        assert!(same(&k1, &k2));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let e = StorageKey::load_or_create(&d, Some("pw"), false).unwrap_err();
        assert!(matches!(e, FilesError::PassphraseUnexpected { .. }), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_passphrase_key_needs_the_right_passphrase() {
        let d = dir("pass");
        let k1 = StorageKey::load_or_create(&d, Some("correct horse"), true).unwrap();
        let k2 = StorageKey::load_or_create(&d, Some("correct horse"), false).unwrap();
        assert!(same(&k1, &k2));
        let raw = std::fs::read(d.join(KEY_FILE)).unwrap();
        assert_eq!(raw.len(), PASS_LEN);
        let e = StorageKey::load_or_create(&d, Some("wrong"), false).unwrap_err();
        assert!(matches!(e, FilesError::WrongPassphrase { .. }), "{e}");
        assert_eq!(
            crate::error::Classify::kind(&e),
            crate::ErrorKind::Unauthorized
        );
        let e = StorageKey::load_or_create(&d, None, false).unwrap_err();
        assert!(matches!(e, FilesError::PassphraseRequired { .. }), "{e}");
        assert_eq!(
            crate::error::Classify::kind(&e),
            crate::ErrorKind::Unauthorized
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_damaged_key_file_is_corrupted_and_a_missing_one_is_not_invented() {
        let d = dir("damaged");
        let e = StorageKey::load_or_create(&d, None, false).unwrap_err();
        assert!(matches!(e, FilesError::Io { .. }), "{e}");
        std::fs::write(d.join(KEY_FILE), b"memmeshK\x01\x00short").unwrap();
        let e = StorageKey::load_or_create(&d, None, false).unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e}");
        let mut huge = Vec::from(&KEY_MAGIC[..]);
        huge.extend_from_slice(&[KEY_VERSION, KIND_PASSPHRASE]);
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.resize(PASS_LEN, 0);
        std::fs::write(d.join(KEY_FILE), &huge).unwrap();
        let e = StorageKey::load_or_create(&d, Some("pw"), false).unwrap_err();
        assert!(matches!(e, FilesError::Corrupted { .. }), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
