//! Wires the ports to the adapters the configuration names: what every binary does
//! at start.

use std::sync::Arc;

use crate::aws::{DynamoEventStore, DynamoViewStore, S3BlobStore, SqsQueue, SsmSecretStore};
use crate::blob::BlobStore;
use crate::clock::{Clock, SystemClock};
use crate::config::{ADMIN_KEY_SECRET, BackendConfig, Config, MIN_ADMIN_KEY_LEN};
use crate::embedded::Embedded;
use crate::error::{StoreError, StoreResult};
use crate::eventstore::EventStore;
use crate::queue::Queue;
use crate::readmodel::ViewStore;
use crate::secrets::{SecretStore, SecretString};

/// The ports a function, the media task or the local stack works with.
#[derive(Clone)]
pub struct Ports {
    pub events: Arc<dyn EventStore>,
    pub views: Arc<dyn ViewStore>,
    pub dial_queue: Arc<dyn Queue>,
    /// Messages to leads (confirmations) waiting for the sender.
    pub message_queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    /// Carrier credentials and vendor keys.
    pub secrets: Arc<dyn SecretStore>,
    pub clock: Arc<dyn Clock>,
    /// Set in the embedded mode: the local stack serves its blob URLs from it.
    pub embedded: Option<Arc<Embedded>>,
}

impl Ports {
    /// Opens the adapters `config` names, on the system clock.
    pub async fn connect(config: &Config) -> StoreResult<Ports> {
        match &config.backend {
            BackendConfig::Embedded { data_dir } => {
                let embedded = Embedded::open(
                    data_dir,
                    Arc::new(SystemClock),
                    config.public_url.clone(),
                    config.queue_max_receives,
                )?;
                Ok(Ports::embedded(embedded))
            }
            BackendConfig::Aws {
                events_table,
                views_table,
                dial_queue_url,
                dial_dead_letter_url,
                message_queue_url,
                message_dead_letter_url,
                bucket,
                secrets_prefix,
                stream_secret_id,
                admin_key_secret_id,
            } => {
                let sdk = crate::aws::sdk_config().await;
                let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
                Ok(Ports {
                    events: Arc::new(DynamoEventStore::new(
                        dynamodb.clone(),
                        events_table.clone(),
                    )),
                    views: Arc::new(DynamoViewStore::new(dynamodb, views_table.clone())),
                    dial_queue: Arc::new(SqsQueue::new(
                        aws_sdk_sqs::Client::new(&sdk),
                        dial_queue_url.clone(),
                        dial_dead_letter_url.clone(),
                    )),
                    message_queue: Arc::new(SqsQueue::new(
                        aws_sdk_sqs::Client::new(&sdk),
                        message_queue_url.clone(),
                        message_dead_letter_url.clone(),
                    )),
                    blobs: Arc::new(S3BlobStore::new(
                        crate::aws::s3_client(&sdk),
                        bucket.clone(),
                    )),
                    secrets: Arc::new(ssm_secret_store(
                        aws_sdk_ssm::Client::new(&sdk),
                        secrets_prefix,
                        stream_secret_id.as_deref(),
                        admin_key_secret_id.as_deref(),
                    )),
                    clock: Arc::new(SystemClock),
                    embedded: None,
                })
            }
        }
    }

    /// The ports of an opened embedded data directory.
    pub fn embedded(embedded: Embedded) -> Ports {
        let embedded = Arc::new(embedded);
        Ports {
            events: Arc::new(embedded.events.clone()),
            views: Arc::new(embedded.views.clone()),
            dial_queue: Arc::new(embedded.dial_queue.clone()),
            message_queue: Arc::new(embedded.message_queue.clone()),
            blobs: Arc::new(embedded.blobs.clone()),
            secrets: Arc::new(embedded.secrets.clone()),
            clock: embedded.db.clock(),
            embedded: Some(embedded),
        }
    }

    /// "embedded" or "aws", for health checks and logs.
    pub fn kind(&self) -> &'static str {
        if self.embedded.is_some() {
            "embedded"
        } else {
            "aws"
        }
    }
}

/// The AWS backend's secret store: per-tenant secrets are SSM parameters under
/// `secrets_prefix`; the platform secrets whose Secrets Manager ids are given (the
/// stream token key, the admin key) are read from there, and refused to writers.
pub fn ssm_secret_store(
    client: aws_sdk_ssm::Client,
    secrets_prefix: &str,
    stream_secret_id: Option<&str>,
    admin_key_secret_id: Option<&str>,
) -> SsmSecretStore {
    let mut store = SsmSecretStore::new(client, secrets_prefix);
    if let Some(id) = stream_secret_id {
        store = store.with_reference(crate::streamtoken::SECRET_NAME, id);
    }
    if let Some(id) = admin_key_secret_id {
        store = store.with_reference(ADMIN_KEY_SECRET, id);
    }
    store
}

/// Why the admin key could not be had at start.
#[derive(Debug, thiserror::Error)]
pub enum AdminKeyError {
    #[error("reading the admin key: {0}")]
    Store(#[from] StoreError),
    /// Never shows the key, only where it came from.
    #[error(
        "the admin key in Secrets Manager secret {secret_id} is shorter than \
         {MIN_ADMIN_KEY_LEN} characters"
    )]
    Short { secret_id: String },
}

/// The admin key the API runs with: `PARLEY_ADMIN_KEY` when set; otherwise, on AWS with
/// `PARLEY_ADMIN_KEY_SECRET_ID`, the value of that Secrets Manager secret, read once
/// through `secrets` (the store [`Ports::connect`] made, which references it); otherwise
/// none (no admin). A secret that is missing or shorter than [`MIN_ADMIN_KEY_LEN`] is
/// an error, so the function does not start half-configured.
pub async fn admin_key(
    config: &Config,
    secrets: &dyn SecretStore,
) -> Result<Option<SecretString>, AdminKeyError> {
    if let Some(key) = &config.admin_key {
        return Ok(Some(key.clone()));
    }
    let BackendConfig::Aws {
        admin_key_secret_id: Some(secret_id),
        ..
    } = &config.backend
    else {
        return Ok(None);
    };
    // A referencing store never answers None; any other one might.
    let key = secrets
        .get(ADMIN_KEY_SECRET)
        .await?
        .ok_or_else(|| StoreError::Missing {
            what: format!("Secrets Manager secret {secret_id} (for {ADMIN_KEY_SECRET})"),
        })?;
    if key.expose().len() < MIN_ADMIN_KEY_LEN {
        return Err(AdminKeyError::Short {
            secret_id: secret_id.clone(),
        });
    }
    tracing::info!(secret_id = %secret_id, "admin key read from Secrets Manager");
    Ok(Some(key))
}
