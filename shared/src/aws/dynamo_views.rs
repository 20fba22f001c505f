//! The read-model store on DynamoDB: one item per view, two global secondary indexes.
//!
//! Table layout (see [`DynamoViewStore::create_table`]): key `pk` (S) =
//! `<collection>#<key>` (collections never hold `#`), attributes `coll`, `key`, `rev`
//! (N), `body` (S, JSON text) and, when the view is in an index, `i1p`/`i1s` (index
//! `index1`) and `i2p`/`i2s` (index `index2`). Indexes are sparse: a view without an
//! entry has no such attributes and is not in the index.
//!
//! Every put is one `UpdateItem` with `ADD rev :one`, so the revision counts correctly
//! even for unconditional puts racing each other.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::dynamo::{self, Item, TableSpec, get_n, get_s, n, s};
use super::sdk::sdk_error;
use crate::error::{StoreError, StoreResult};
use crate::readmodel::{Index, IndexEntry, Page, Query, View, ViewStore, validate_name};

/// Views in DynamoDB. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoViewStore {
    client: Client,
    table: String,
}

/// The index name and its partition and sort attributes.
fn index_attributes(index: Index) -> (&'static str, &'static str, &'static str) {
    match index {
        Index::First => ("index1", "i1p", "i1s"),
        Index::Second => ("index2", "i2p", "i2s"),
    }
}

impl DynamoViewStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoViewStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the views table (on-demand, both indexes) for tests and local emulators
    /// and waits until it is active. An existing table is left as it is.
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        dynamo::create_table(
            client,
            table,
            TableSpec {
                attributes: &[
                    ("pk", ScalarAttributeType::S),
                    ("i1p", ScalarAttributeType::S),
                    ("i1s", ScalarAttributeType::S),
                    ("i2p", ScalarAttributeType::S),
                    ("i2s", ScalarAttributeType::S),
                ],
                hash: "pk",
                range: None,
                indexes: &[("index1", "i1p", "i1s"), ("index2", "i2p", "i2s")],
                stream: false,
            },
        )
        .await
    }

    fn what(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    fn view_what(&self, collection: &str, key: &str) -> String {
        format!("view {collection}/{key} in table {}", self.table)
    }

    /// The stored revision of a view, 0 when there is none.
    async fn revision(&self, collection: &str, key: &str) -> StoreResult<u64> {
        Ok(self.get(collection, key).await?.map_or(0, |v| v.revision))
    }

    fn view(&self, item: &Item) -> StoreResult<View> {
        let corrupt = |detail: String| StoreError::Corrupt {
            what: format!(
                "view {} in table {}",
                get_s(item, "pk").unwrap_or("?"),
                self.table
            ),
            detail,
        };
        let string = |name: &str| {
            get_s(item, name)
                .map(str::to_owned)
                .ok_or_else(|| corrupt(format!("attribute {name} missing or not a string")))
        };
        let entry = |p: &str, sv: &str| match (get_s(item, p), get_s(item, sv)) {
            (Some(p), Some(sv)) => Some(IndexEntry::new(p, sv)),
            _ => None,
        };
        let body = serde_json::from_str(&string("body")?)
            .map_err(|e| corrupt(format!("body is not JSON: {e}")))?;
        Ok(View {
            collection: string("coll")?,
            key: string("key")?,
            revision: get_n(item, "rev")
                .ok_or_else(|| corrupt("attribute rev missing or not a number".into()))?,
            body,
            index1: entry("i1p", "i1s"),
            index2: entry("i2p", "i2s"),
        })
    }
}

/// `<collection>#<key>`.
fn pk(collection: &str, key: &str) -> AttributeValue {
    s(format!("{collection}#{key}"))
}

fn validate_id(collection: &str, key: &str) -> StoreResult<()> {
    validate_name("collection", collection)?;
    if key.is_empty() || key.len() > 512 {
        return Err(StoreError::invalid("key", "must be 1 to 512 characters"));
    }
    Ok(())
}

#[async_trait]
impl ViewStore for DynamoViewStore {
    async fn get(&self, collection: &str, key: &str) -> StoreResult<Option<View>> {
        validate_id(collection, key)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(collection, key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.what(), e))?;
        out.item().map(|item| self.view(item)).transpose()
    }

    async fn put(&self, view: &View, expected_revision: Option<u64>) -> StoreResult<u64> {
        view.validate()?;
        let body = serde_json::to_string(&view.body)
            .map_err(|e| StoreError::invalid("body", format!("does not serialise: {e}")))?;
        // Every attribute goes through a name placeholder: `key` is a reserved word.
        let mut names = HashMap::from([
            ("#coll".to_owned(), "coll".to_owned()),
            ("#key".to_owned(), "key".to_owned()),
            ("#body".to_owned(), "body".to_owned()),
            ("#rev".to_owned(), "rev".to_owned()),
        ]);
        let mut values = HashMap::from([
            (":coll".to_owned(), s(&view.collection)),
            (":key".to_owned(), s(&view.key)),
            (":body".to_owned(), AttributeValue::S(body)),
            (":one".to_owned(), n(1)),
        ]);
        let mut set: Vec<String> = ["#coll = :coll", "#key = :key", "#body = :body"]
            .map(String::from)
            .to_vec();
        let mut remove = Vec::new();
        for (entry, p, sv) in [(&view.index1, "i1p", "i1s"), (&view.index2, "i2p", "i2s")] {
            names.insert(format!("#{p}"), p.to_owned());
            names.insert(format!("#{sv}"), sv.to_owned());
            match entry {
                Some(entry) => {
                    values.insert(format!(":{p}"), s(&entry.partition));
                    values.insert(format!(":{sv}"), s(&entry.sort));
                    set.push(format!("#{p} = :{p}"));
                    set.push(format!("#{sv} = :{sv}"));
                }
                None => remove.extend([format!("#{p}"), format!("#{sv}")]),
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        update.push_str(" ADD #rev :one");
        let condition = match expected_revision {
            None => None,
            Some(0) => Some("attribute_not_exists(pk)".to_owned()),
            Some(revision) => {
                values.insert(":expected".to_owned(), n(revision));
                Some("#rev = :expected".to_owned())
            }
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", pk(&view.collection, &view.key))
            .update_expression(update)
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes()
                .and_then(|a| get_n(a, "rev"))
                .ok_or_else(|| StoreError::Corrupt {
                    what: self.view_what(&view.collection, &view.key),
                    detail: "the update returned no revision".into(),
                }),
            Err(err) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(failed)) =
                    err.as_service_error()
                else {
                    return Err(sdk_error(&self.what(), err));
                };
                // The old item comes with the error on AWS; if an emulator leaves it
                // out, read it.
                let actual = match failed.item() {
                    Some(item) => get_n(item, "rev").unwrap_or(0),
                    None => self.revision(&view.collection, &view.key).await?,
                };
                Err(StoreError::Conflict {
                    what: self.view_what(&view.collection, &view.key),
                    expected: expected_revision.unwrap_or(0),
                    actual,
                })
            }
        }
    }

    async fn delete(&self, collection: &str, key: &str) -> StoreResult<()> {
        validate_id(collection, key)?;
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk(collection, key))
            .send()
            .await
            .map_err(|e| sdk_error(&self.what(), e))?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> StoreResult<Page> {
        query.validate()?;
        let (index, p, sv) = index_attributes(query.index);
        let start = query
            .cursor
            .as_deref()
            .map(|c| decode_cursor(c, p, sv, &query.partition))
            .transpose()?;
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .expression_attribute_names("#p", p)
            .expression_attribute_values(":p", s(&query.partition))
            .scan_index_forward(!query.descending)
            .limit(i32::try_from(query.limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start);
        request = if let Some((low, high)) = &query.sort_between
            && low.is_empty()
        {
            // DynamoDB refuses an empty string in a key condition: "up to" it is.
            request
                .key_condition_expression("#p = :p AND #s <= :hi")
                .expression_attribute_names("#s", sv)
                .expression_attribute_values(":hi", s(high))
        } else if let Some((low, high)) = &query.sort_between {
            request
                .key_condition_expression("#p = :p AND #s BETWEEN :lo AND :hi")
                .expression_attribute_names("#s", sv)
                .expression_attribute_values(":lo", s(low))
                .expression_attribute_values(":hi", s(high))
        } else if query.sort_prefix.is_empty() {
            request.key_condition_expression("#p = :p")
        } else {
            request
                .key_condition_expression("#p = :p AND begins_with(#s, :s)")
                .expression_attribute_names("#s", sv)
                .expression_attribute_values(":s", s(&query.sort_prefix))
        };
        let out = request
            .send()
            .await
            .map_err(|e| sdk_error(&self.what(), e))?;
        let views = out
            .items()
            .iter()
            .map(|item| self.view(item))
            .collect::<StoreResult<Vec<_>>>()?;
        // DynamoDB may stop short of the limit and still have more: `next` is set
        // whenever it says so, even if the next page turns out empty.
        let next = out.last_evaluated_key().map(encode_cursor).transpose()?;
        Ok(Page { views, next })
    }
}

/// A cursor is DynamoDB's `LastEvaluatedKey` (string attributes only in these tables) as
/// JSON, in URL-safe base64.
fn encode_cursor(key: &Item) -> StoreResult<String> {
    let mut map = serde_json::Map::new();
    for (name, value) in key {
        let AttributeValue::S(value) = value else {
            return Err(StoreError::Corrupt {
                what: "query cursor".into(),
                detail: format!("key attribute {name} is not a string"),
            });
        };
        map.insert(name.clone(), serde_json::Value::String(value.clone()));
    }
    let json = serde_json::Value::Object(map).to_string();
    Ok(URL_SAFE_NO_PAD.encode(json))
}

/// Reads a cursor back, refusing one that does not belong to this index and partition
/// (DynamoDB would fail it with a less helpful message).
fn decode_cursor(cursor: &str, p: &str, sv: &str, partition: &str) -> StoreResult<Item> {
    let bad = |reason: &str| StoreError::invalid("cursor", reason);
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| bad("not a cursor of this store"))?;
    let map: HashMap<String, String> =
        serde_json::from_slice(&bytes).map_err(|_| bad("not a cursor of this store"))?;
    let mut names: Vec<&str> = map.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = vec!["pk", p, sv];
    expected.sort_unstable();
    if names != expected {
        return Err(bad("belongs to another index"));
    }
    if map.get(p).map(String::as_str) != Some(partition) {
        return Err(bad("belongs to another partition"));
    }
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, AttributeValue::S(v)))
        .collect())
}
