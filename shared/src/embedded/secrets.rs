//! The embedded secret store: one row per secret in the `secrets` table of the shared
//! SQLite database.
//!
//! The values are kept as they are, unencrypted, in `parley.db`: this is the local
//! stack's store, as safe as the data directory it lives in. On AWS, secrets go to SSM
//! as SecureString parameters.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::sqlite::SqliteDb;
use crate::error::{StoreError, StoreResult};
use crate::secrets::{SecretStore, SecretString, validate_name, validate_put};

/// [`SecretStore`] on a [`SqliteDb`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqliteSecretStore {
    db: SqliteDb,
}

impl SqliteSecretStore {
    pub fn new(db: SqliteDb) -> Self {
        SqliteSecretStore { db }
    }
}

/// Names the secret in a database failure (which names the file), so an operator knows
/// which secret could not be read or written.
fn naming(name: &str) -> impl FnOnce(StoreError) -> StoreError + '_ {
    move |e| match e {
        StoreError::Backend {
            what,
            detail,
            retryable,
        } => StoreError::Backend {
            what: format!("secret {name} in {what}"),
            detail,
            retryable,
        },
        StoreError::Corrupt { what, detail } => StoreError::Corrupt {
            what: format!("secret {name} in {what}"),
            detail,
        },
        other => other,
    }
}

#[async_trait]
impl SecretStore for SqliteSecretStore {
    async fn put(&self, name: &str, value: &SecretString) -> StoreResult<()> {
        validate_put(name, value)?;
        let key = name.to_owned();
        let value = value.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO secrets (name, value) VALUES (?1, ?2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    params![key, value.expose()],
                )?;
                Ok(())
            })
            .await
            .map_err(naming(name))
    }

    async fn get(&self, name: &str) -> StoreResult<Option<SecretString>> {
        validate_name(name)?;
        let key = name.to_owned();
        let value = self
            .db
            .read(move |conn| {
                Ok(conn
                    .query_row(
                        "SELECT value FROM secrets WHERE name = ?1",
                        params![key],
                        |row| row.get::<_, String>(0),
                    )
                    .optional()?)
            })
            .await
            .map_err(naming(name))?;
        Ok(value.map(SecretString::new))
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        validate_name(name)?;
        let key = name.to_owned();
        self.db
            .write(move |tx| {
                tx.execute("DELETE FROM secrets WHERE name = ?1", params![key])?;
                Ok(())
            })
            .await
            .map_err(naming(name))
    }
}
