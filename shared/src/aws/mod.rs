//! The AWS adapters of the ports: DynamoDB for events and views, SQS for the queue and
//! S3 for blobs, all through the AWS SDK over rustls with the ring provider.
//!
//! - [`sdk_config`] loads the shared SDK configuration (region, credentials, endpoint
//!   overrides such as `AWS_ENDPOINT_URL` from the environment) with an explicit HTTPS
//!   client and the retry policy every adapter relies on.
//! - [`DynamoEventStore`], [`DynamoViewStore`], [`SqsQueue`], [`S3BlobStore`] implement
//!   the ports; each has a `create_*` function for tests and local emulators (production
//!   tables, queues and buckets come from infrastructure code).
//! - Every SDK failure goes through one mapping (`sdk::sdk_error`) into
//!   [`crate::StoreError`], so throttling, missing resources and transient failures look
//!   the same whichever service produced them.

mod dynamo;
mod dynamo_events;
mod dynamo_views;
mod s3;
mod sdk;
mod sqs;
mod ssm;

pub use dynamo_events::DynamoEventStore;
pub use dynamo_views::DynamoViewStore;
pub use s3::S3BlobStore;
pub use sdk::{config_loader, http_client, retry_config, s3_client, sdk_config};
pub use sqs::SqsQueue;
pub use ssm::{SECRETS_MANAGER_REFERENCE_PATH, SsmSecretStore};
