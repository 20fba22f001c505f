//! The carrier webhooks function. Its routes are an axum [`Router`], served by
//! `lambda_http` on AWS and mounted as-is into the local stack.
//!
//! Every Twilio request's `X-Twilio-Signature` is checked against the owning tenant's
//! auth token before anything is written; a bad or missing signature is 403 and changes
//! nothing. Exotel signs nothing, so its URLs carry a per-tenant secret in the path,
//! checked in constant time before the body is read. Carriers redeliver and reorder
//! callbacks: every write carries an idempotency key and the call's own rules ignore
//! what is late.

mod common;
mod exotel;
mod handover;
mod twilio;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use parley_shared::StoreError;
use parley_shared::backend::Ports;
use parley_shared::config::Config;
use parley_shared::secrets::SecretString;
use parley_shared::twilio::rest::TwilioClient;

/// The secret store name of the key that signs media stream tokens.
pub use parley_shared::streamtoken::SECRET_NAME as STREAM_SECRET;

/// What the webhook handlers can reach.
#[derive(Clone)]
pub struct WebhookState {
    pub ports: Ports,
    /// The public base URL Twilio calls, for rebuilding the URL it signed.
    pub public_url: String,
    /// The media task's WebSocket base.
    pub media_url: String,
    /// Signs the token a media stream must present.
    pub stream_secret: Arc<SecretString>,
    /// Twilio's REST API, for taking over a live call (a campaign's voicemail).
    pub twilio: TwilioClient,
    /// The local stack's simulated carrier, which speaks Twilio's REST API.
    pub simulated: Option<TwilioClient>,
}

impl WebhookState {
    /// Reads the stream token secret; with `create_if_missing` (the local stack) makes
    /// one on first start.
    pub async fn new(
        ports: Ports,
        config: &Config,
        create_if_missing: bool,
    ) -> Result<Self, StoreError> {
        let stream_secret = stream_secret(&*ports.secrets, create_if_missing).await?;
        // A webhook waits for Twilio's answer, and Twilio gives up on a webhook after 15 s.
        let timeout = Duration::from_secs(10);
        let twilio = TwilioClient::new(config.twilio_api_url.clone(), timeout).map_err(|e| {
            StoreError::Invalid {
                field: "PARLEY_TWILIO_API_URL".into(),
                reason: e.to_string(),
            }
        })?;
        Ok(WebhookState {
            ports,
            public_url: config.public_url.clone(),
            media_url: config.media_url.clone(),
            stream_secret: Arc::new(stream_secret),
            twilio,
            simulated: None,
        })
    }
}

pub use parley_shared::streamtoken::load_secret as stream_secret;

/// The webhook routes.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/webhooks/twilio/voice", post(twilio::voice))
        .route("/webhooks/twilio/status", post(twilio::status))
        .route("/webhooks/twilio/recording", post(twilio::recording))
        .route("/webhooks/twilio/amd", post(twilio::amd))
        .route("/webhooks/twilio/connected", post(handover::connected))
        .route("/webhooks/twilio/transfer", post(handover::transfer))
        .route("/webhooks/twilio/whisper", post(handover::whisper))
        .route(
            "/webhooks/exotel/{tenant_id}/{secret}/status",
            post(exotel::status),
        )
        .route(
            "/webhooks/exotel/{tenant_id}/{secret}/stream",
            get(exotel::stream).post(exotel::stream),
        )
        .route(
            "/webhooks/exotel/{tenant_id}/{secret}/transfer",
            get(exotel::transfer).post(exotel::transfer),
        )
        .with_state(state)
}
