//! Stretching the cluster secret: Argon2id with fixed, versioned parameters, remembered
//! per process; and what makes a secret weak or strong.

use std::sync::Mutex;

use ring::digest;

use super::AuthError;
use crate::error::Result;

/// KDF salt: fixed and public (its job is to make precomputed tables for other
/// applications useless, and to version the derivation). Changing it, or any KDF
/// parameter, changes every cluster key: it is a protocol change.
pub const KDF_SALT: &[u8] = b"memmesh cluster key v2 argon2id";
/// Argon2id memory cost in KiB: 32 MiB (above OWASP's 19 MiB minimum for two passes).
/// Derived once per node start: measured 70-170 ms on one core of this 2-core CI machine
/// (idle to loaded), debug and release alike since dependencies are optimised in debug
/// builds; 64 MiB took 300-370 ms when loaded, too close to the 0.5 s start budget.
pub const KDF_MEMORY_KIB: u32 = 32 * 1024;
/// Argon2id passes over the memory.
pub const KDF_ITERATIONS: u32 = 2;
/// Argon2id lanes (1: the node derives its key once, on one thread).
pub const KDF_LANES: u32 = 1;
/// Length of a cluster secret, in bytes, above which it is refused.
pub const MAX_SECRET_LEN: usize = 1024;
/// A secret shorter than this (in bytes) is reported as weak.
pub const WEAK_SECRET_MIN_LEN: usize = 16;
/// Length of the secrets `memmesh secret new` prints, in random bytes.
pub const GENERATED_SECRET_BYTES: usize = 32;

/// How many derived keys a process keeps (a process that starts several nodes with one
/// secret, or tests, pay for the KDF once).
const KDF_MEMO: usize = 8;

/// Argon2id of `secret` with the fixed parameters above.
pub fn kdf(secret: &[u8]) -> Result<[u8; 32]> {
    if secret.len() > MAX_SECRET_LEN {
        return Err(AuthError::SecretTooLong { len: secret.len() }.into());
    }
    let params = argon2::Params::new(KDF_MEMORY_KIB, KDF_ITERATIONS, KDF_LANES, Some(32))
        .map_err(AuthError::KdfParams)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    argon
        .hash_password_into(secret, KDF_SALT, &mut out)
        .map_err(AuthError::Kdf)?;
    Ok(out)
}

/// [`kdf`], remembered for the last few secrets of this process (by their SHA-256).
pub(super) fn derive_memo(secret: &[u8]) -> Result<[u8; 32]> {
    static MEMO: Mutex<Vec<([u8; 32], [u8; 32])>> = Mutex::new(Vec::new());
    let mut id = [0u8; 32];
    id.copy_from_slice(digest::digest(&digest::SHA256, secret).as_ref());
    let found = MEMO
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .find(|(k, _)| *k == id)
        .map(|(_, v)| *v);
    if let Some(v) = found {
        return Ok(v);
    }
    let derived = kdf(secret)?;
    let mut memo = MEMO.lock().unwrap_or_else(|p| p.into_inner());
    if memo.len() >= KDF_MEMO {
        memo.remove(0);
    }
    memo.push((id, derived));
    Ok(derived)
}

/// Why `secret` is weak, if it looks so (a heuristic: it cannot see that a long
/// passphrase is a famous quote). Weak: shorter than [`WEAK_SECRET_MIN_LEN`] bytes, fewer
/// than 8 distinct bytes, or a short pattern repeated.
pub fn weakness(secret: &[u8]) -> Option<String> {
    if secret.is_empty() {
        return None;
    }
    if secret.len() < WEAK_SECRET_MIN_LEN {
        return Some(format!(
            "it is {} bytes long (fewer than {WEAK_SECRET_MIN_LEN})",
            secret.len()
        ));
    }
    let mut seen = [false; 256];
    for b in secret {
        seen[usize::from(*b)] = true;
    }
    let distinct = seen.iter().filter(|s| **s).count();
    if distinct < 8 {
        return Some(format!("it has only {distinct} distinct characters"));
    }
    if let Some(p) = (1..=secret.len() / 2).find(|&p| {
        secret
            .iter()
            .enumerate()
            .skip(p)
            .all(|(i, b)| secret.get(i - p) == Some(b))
    }) {
        return Some(format!("it repeats a {p}-character pattern"));
    }
    None
}

/// A new high-entropy secret: [`GENERATED_SECRET_BYTES`] random bytes in lowercase hex.
pub fn generate_secret() -> Result<String> {
    let mut bytes = [0u8; GENERATED_SECRET_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(AuthError::Random)?;
    Ok(data_encoding::HEXLOWER.encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::transport::auth::ClusterKey;

    #[test]
    fn kdf_parameters_are_the_documented_ones() {
        assert_eq!(KDF_SALT, b"memmesh cluster key v2 argon2id");
        assert_eq!(
            (KDF_MEMORY_KIB, KDF_ITERATIONS, KDF_LANES),
            (32 * 1024, 2, 1)
        );
        // A known answer: any change of parameters or salt shows here (and is a
        // protocol change: every cluster key changes).
        let k = kdf(b"correct horse battery staple").unwrap();
        assert_eq!(
            data_encoding::HEXLOWER.encode(&k),
            KNOWN_ANSWER,
            "the KDF output changed: a protocol change"
        );
        assert_ne!(kdf(b"correct horse battery stapler").unwrap(), k);
        assert!(kdf(&vec![b'x'; MAX_SECRET_LEN + 1]).is_err());
        assert!(ClusterKey::derive(Some(&vec![b'x'; MAX_SECRET_LEN + 1])).is_err());
    }

    /// Argon2id(secret, KDF_SALT, m = 32 MiB, t = 2, p = 1), checked against the reference
    /// implementation (argon2-cffi `hash_secret_raw`).
    const KNOWN_ANSWER: &str = "07cbb41827c410f43534aea9f99a4e4505033ede2eb0a3bf80b9eda27575aab7";

    #[test]
    fn weak_secrets_are_recognised() {
        assert!(weakness(b"").is_none());
        assert!(weakness(b"s3cret").unwrap().contains("fewer than 16"));
        assert!(weakness(b"aaaaaaaaaaaaaaaaaaaaaaaa")
            .unwrap()
            .contains("distinct"));
        assert!(weakness(b"passwordpassword").is_some());
        assert!(weakness(b"abcdefgh12abcdefgh12")
            .unwrap()
            .contains("repeats"));
        assert!(weakness(b"correct horse battery staple").is_none());
        let generated = generate_secret().unwrap();
        assert_eq!(generated.len(), 2 * GENERATED_SECRET_BYTES);
        assert!(weakness(generated.as_bytes()).is_none());
        assert_ne!(generate_secret().unwrap(), generated);
    }

    #[test]
    fn a_long_secret_is_refused_with_a_typed_error() {
        let e = kdf(&vec![b'x'; MAX_SECRET_LEN + 1]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            e.message(),
            format!(
                "the cluster secret is {} bytes long, at most {MAX_SECRET_LEN}",
                MAX_SECRET_LEN + 1
            )
        );
        assert!(matches!(
            e.downcast_ref::<AuthError>(),
            Some(AuthError::SecretTooLong { .. })
        ));
    }
}
