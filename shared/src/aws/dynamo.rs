//! Helpers shared by the two DynamoDB adapters: reading typed attributes out of items and
//! creating tables (for tests and local emulators).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TableStatus,
};

use super::sdk::{backend, sdk_error};
use crate::error::StoreResult;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A string attribute, or `None` when it is absent or of another type.
pub(crate) fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

/// A non-negative integer attribute, or `None` when it is absent, of another type or not
/// such a number.
pub(crate) fn get_n(item: &Item, name: &str) -> Option<u64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A table's shape: its key and its global secondary indexes (projection ALL).
pub(crate) struct TableSpec<'a> {
    /// Every key attribute of the table and its indexes, with its type.
    pub attributes: &'a [(&'a str, ScalarAttributeType)],
    pub hash: &'a str,
    pub range: Option<&'a str>,
    /// (index name, hash attribute, range attribute)
    pub indexes: &'a [(&'a str, &'a str, &'a str)],
    /// Whether to turn on the table's stream (new images).
    pub stream: bool,
}

fn key(name: &str, key_type: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| backend("DynamoDB key schema", e.to_string(), false))
}

/// Creates an on-demand table and waits until it and its indexes are active. A table
/// that already exists is left as it is.
pub(crate) async fn create_table(
    client: &Client,
    table: &str,
    spec: TableSpec<'_>,
) -> StoreResult<()> {
    let what = format!("DynamoDB table {table}");
    let build = |e: aws_sdk_dynamodb::error::BuildError| backend(&what, e.to_string(), false);
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(spec.hash, KeyType::Hash)?);
    if let Some(range) = spec.range {
        request = request.key_schema(key(range, KeyType::Range)?);
    }
    for (name, kind) in spec.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(*name)
                .attribute_type(kind.clone())
                .build()
                .map_err(build)?,
        );
    }
    for (index, hash, range) in spec.indexes {
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(*index)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(build)?,
        );
    }
    if spec.stream {
        request = request.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()
                .map_err(build)?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CreateTableError::ResourceInUseException(_))
            ) => {}
        Err(e) => return Err(sdk_error(&what, e)),
    }
    wait_active(client, table, &what).await
}

/// Polls until the table and all its indexes are active (at once on emulators, a few
/// seconds to minutes on AWS).
async fn wait_active(client: &Client, table: &str, what: &str) -> StoreResult<()> {
    for _ in 0..300 {
        let out = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(what, e))?;
        if let Some(desc) = out.table() {
            let table_active = desc.table_status() == Some(&TableStatus::Active);
            let indexes_active = desc
                .global_secondary_indexes()
                .iter()
                .all(|i| i.index_status().is_none_or(|s| *s == IndexStatus::Active));
            if table_active && indexes_active {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(backend(
        what,
        "did not become active within 5 minutes",
        true,
    ))
}
