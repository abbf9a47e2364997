//! Idempotency records, for the HTTP layer that claims keys (`http/idempotency.rs`): the
//! store's operations, in the service's errors. Expired records are purged by the indexer's
//! housekeeping (`indexing.rs`).

use super::{Result, Service};
use crate::idempotency::{ClaimId, Reply};
use crate::store::{ClaimOutcome, NewClaim};

impl Service {
    /// Claims a key for a request, or returns the record that holds it.
    pub async fn claim_key(&self, claim: &NewClaim<'_>) -> Result<ClaimOutcome> {
        Ok(self.store.claim_key(claim).await?)
    }

    /// Records the answer of a request whose effect did not record it; false when the claim
    /// is no longer the record's.
    pub async fn complete_key(
        &self,
        id: &ClaimId,
        reply: &Reply,
        fingerprint: Option<&str>,
    ) -> Result<bool> {
        Ok(self.store.complete_key(id, reply, fingerprint).await?)
    }

    /// Ends a claim whose answer is recorded.
    pub fn finish_key(&self, id: &ClaimId) {
        self.store.finish_key(id);
    }

    /// Gives a running claim up, so that a retry runs again.
    pub async fn release_key(&self, id: &ClaimId) -> Result<()> {
        Ok(self.store.release_key(id).await?)
    }

    /// Extends a running claim's lease by `lease` from now.
    pub async fn renew_key(&self, id: &ClaimId, lease: std::time::Duration) -> Result<()> {
        Ok(self.store.renew_key(id, lease).await?)
    }
}
