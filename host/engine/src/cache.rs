//! The sandbox's [`ArtifactCache`] backed by the store's verified precompiled tree.

use weft_sandbox::ArtifactCache;
use weft_store::{Digest, PluginStore};

pub(crate) struct StoreArtifacts<'a>(pub &'a PluginStore);

impl ArtifactCache for StoreArtifacts<'_> {
    fn load(&self, digest: &blake3::Hash, fingerprint: &str) -> Option<Vec<u8>> {
        let d = Digest::from_hash(*digest);
        match self.0.precompiled(&d, fingerprint) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(%d, "precompiled artifact refused, recompiling: {e}");
                None
            }
        }
    }

    fn save(&self, digest: &blake3::Hash, fingerprint: &str, artifact: &[u8]) {
        let d = Digest::from_hash(*digest);
        if let Err(e) = self.0.put_precompiled(&d, fingerprint, artifact) {
            tracing::warn!(%d, "cannot cache the precompiled artifact: {e}");
        }
    }
}
