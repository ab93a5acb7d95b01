//! The documents store seals its log records with the files store's storage key: the API
//! layer (which may name both services) lends it as a [`Sealer`], so neither service
//! imports the other.

use std::sync::Arc;

use crate::docs::{DocsError, KeyOpener, Sealer};
use crate::files::crypt::{open_box, seal_box};
use crate::files::key::StorageKey;
use crate::node::config::NodeConfig;

/// The storage key as a [`Sealer`].
struct KeySealer(StorageKey);

impl Sealer for KeySealer {
    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, String> {
        seal_box(self.0.aead(), aad, plain).map_err(|e| e.to_string())
    }

    fn open(&self, aad: &[u8], boxed: &[u8]) -> Option<Vec<u8>> {
        open_box(self.0.aead(), aad, boxed)
    }
}

/// Opens the data dir's storage key for the documents store, or `None` without a data
/// dir. The files store (opened first, at start) created the key: this never makes one.
pub(crate) fn opener(config: &NodeConfig) -> Option<KeyOpener> {
    let dir = config.data_dir.clone()?;
    let pass = config.storage_passphrase.clone();
    Some(Arc::new(move || {
        let key = StorageKey::load_or_create(&dir, pass.as_deref(), false).map_err(|e| {
            DocsError::Corrupted {
                what: format!("the storage key: {e}"),
            }
        })?;
        Ok(Arc::new(KeySealer(key)) as Arc<dyn Sealer>)
    }))
}
