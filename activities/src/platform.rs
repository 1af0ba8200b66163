//! The external data platform: one POST per completed order, keyed by the order id.
use domain::Order;

use crate::error::PlatformError;

const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
pub struct PlatformClient {
    pub http: reqwest::Client,
    pub url: String,
}

impl PlatformClient {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            http: reqwest::Client::new(),
            url: url.into(),
        }
    }

    /// POSTs the order as JSON with `Idempotency-Key: <order id>` (10 s timeout). Any 2xx is
    /// success; any other answer or a network error is a [`PlatformError`], retried.
    pub async fn send(&self, order: &Order) -> Result<(), PlatformError> {
        let response = self
            .http
            .post(&self.url)
            .header("Idempotency-Key", order.id.as_str())
            .timeout(SEND_TIMEOUT)
            .json(order)
            .send()
            .await
            .map_err(|e| PlatformError(format!("POST {}: {e}", self.url)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let excerpt: String = body.chars().take(200).collect();
        Err(PlatformError(format!(
            "POST {} answered {status}: {excerpt}",
            self.url
        )))
    }
}
