//! Per-client stream limits: how many SSE streams and WebSockets one API key (or, when the
//! API is open, one client IP) may hold at once, so one consumer cannot take every
//! connection the gateway has. A stream holds a [`StreamPermit`] for as long as it is open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::error::ApiError;

/// Open streams per client, against one maximum.
#[derive(Debug)]
pub struct StreamLimits {
    max_per_client: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream of a client; dropping it frees the slot.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    client: String,
}

impl StreamLimits {
    pub fn new(max_per_client: usize) -> Arc<Self> {
        Arc::new(Self {
            max_per_client,
            open: Mutex::default(),
        })
    }

    /// A slot for one more stream of `client`, or 429 when it holds the maximum already.
    pub fn acquire(self: &Arc<Self>, client: &str) -> Result<StreamPermit, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(client.to_string()).or_default();
        if *count >= self.max_per_client {
            crate::metrics::stream_refused("per_client");
            return Err(ApiError::TooManyStreams(self.max_per_client));
        }
        *count += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            client: client.to_string(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_holds_at_most_the_maximum_and_slots_come_back() {
        let limits = StreamLimits::new(2);
        let a = limits.acquire("key:a").unwrap();
        let _b = limits.acquire("key:a").unwrap();
        assert!(matches!(
            limits.acquire("key:a"),
            Err(ApiError::TooManyStreams(2))
        ));
        let _other = limits.acquire("key:b").unwrap();
        drop(a);
        assert!(limits.acquire("key:a").is_ok());
    }
}
