//! What every handler shares: the account registry, the gateway's epoch and the shutdown
//! signal that ends open streams.

use std::sync::Arc;

use tokio::sync::watch;

use crate::account::{Account, Registry};

use super::error::ApiError;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    pub fn account(&self, public_id: &str) -> Result<Arc<Account>, ApiError> {
        self.registry
            .get(public_id)
            .cloned()
            .ok_or(ApiError::UnknownAccount)
    }
}
