//! Wires the ports to the adapters the configuration names: what every binary does
//! at start.

use std::sync::Arc;

use crate::aws::{DynamoEventStore, DynamoViewStore, S3BlobStore, SqsQueue, SsmSecretStore};
use crate::blob::BlobStore;
use crate::clock::{Clock, SystemClock};
use crate::config::{BackendConfig, Config};
use crate::embedded::Embedded;
use crate::error::StoreResult;
use crate::eventstore::EventStore;
use crate::queue::Queue;
use crate::readmodel::ViewStore;
use crate::secrets::SecretStore;

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
                    secrets: Arc::new(SsmSecretStore::new(
                        aws_sdk_ssm::Client::new(&sdk),
                        secrets_prefix.clone(),
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
