//! The state every handler shares: cheap to clone.

use std::sync::Arc;

use crate::hardening::HttpSettings;

use guild_store::PgPool;
use sha2::{Digest, Sha256};
use tokio::sync::watch;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub keys: Arc<ApiKeys>,
    /// Bumped when work happens in this process (task settled), so event streams look at
    /// once instead of waiting for their next poll.
    pub activity: watch::Receiver<u64>,
    /// Attempts per task for new projects, unless their options say otherwise.
    pub default_max_attempts: i32,
    /// Budgets of new projects whose options set none.
    pub default_max_tokens: Option<u64>,
    pub default_max_cost_usd: Option<f64>,
    /// Projects planned from a template get the verification stage (this deployment's
    /// workers verify); without it they are planned without.
    pub verification: bool,
    /// Deadline, CORS and rate limit.
    pub http: HttpSettings,
}

/// The accepted API keys, kept only as SHA-256 digests.
#[derive(Default)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
}

impl ApiKeys {
    /// Keys from a comma-separated list; blanks are ignored. No keys: the API is open.
    pub fn from_list(list: &str) -> Self {
        Self {
            digests: list
                .split(',')
                .map(str::trim)
                .filter(|key| !key.is_empty())
                .map(|key| Sha256::digest(key.as_bytes()).into())
                .collect(),
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.digests.is_empty()
    }

    /// Whether `presented` is one of the keys. Compares digests of equal length byte by
    /// byte over every key, so the time taken does not reveal where a guess went wrong.
    pub fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.digests.iter().fold(false, |found, key| {
            let difference = key
                .iter()
                .zip(digest.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (difference == 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_matched_exactly() {
        let keys = ApiKeys::from_list(" alpha , beta,,");
        assert!(keys.is_enabled());
        assert!(keys.accepts("alpha"));
        assert!(keys.accepts("beta"));
        assert!(!keys.accepts("alph"));
        assert!(!keys.accepts(""));
        assert!(!ApiKeys::from_list("").is_enabled());
    }
}
