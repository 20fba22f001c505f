//! The secret store on SSM Parameter Store: one SecureString parameter per secret,
//! named `<prefix><name>` (`/parley/prod/tenant/<uuid>/twilio-auth-token`), encrypted
//! with the account's default `aws/ssm` KMS key.
//!
//! A put is `PutParameter` with `Overwrite` (credentials rotate; SSM keeps the last 100
//! versions), a get `GetParameter` with decryption, a delete `DeleteParameter`. The
//! functions' role needs `ssm:PutParameter`, `ssm:GetParameter` and
//! `ssm:DeleteParameter` on `arn:aws:ssm:<region>:<account>:parameter<prefix>*`, and
//! `kms:Decrypt`/`kms:Encrypt` on the key.
//!
//! **Platform secrets in Secrets Manager.** A name given to
//! [`SsmSecretStore::with_reference`] (the stream token key, the admin key) is not a
//! parameter of ours: the deployment template creates and rotates it in AWS Secrets
//! Manager, and `get` reads it through SSM's reserved path
//! `/aws/reference/secretsmanager/<secret-id>` (`GetParameter` with decryption), so no
//! Secrets Manager SDK is needed. Such a name is read-only here: `put` and `delete` are
//! refused with [`StoreError::Invalid`] before any request is made, and a referenced
//! secret that does not exist is [`StoreError::Missing`] naming the secret id, not
//! `None`, because the template provisions it and its absence is a deployment fault
//! (no caller may then make one of its own). Every `get` reads the secret afresh, so a
//! rotation is seen by the next read. Reading one needs, besides the above,
//! `ssm:GetParameter` on
//! `arn:aws:ssm:<region>:<account>:parameter/aws/reference/secretsmanager/*` and
//! `secretsmanager:GetSecretValue` on the secret's ARN (and `kms:Decrypt` on its key if
//! that is a customer-managed one).
//!
//! Errors name the parameter or secret id, never the value: a failed put's detail has
//! the value masked, in case the service echoed it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::ParameterType;

use super::sdk::{backend, error_code, sdk_error};
use crate::error::{StoreError, StoreResult};
use crate::secrets::{SecretStore, SecretString, validate_name, validate_put};

/// SSM's reserved path through which `GetParameter` reads a Secrets Manager secret.
pub const SECRETS_MANAGER_REFERENCE_PATH: &str = "/aws/reference/secretsmanager/";

/// [`SecretStore`] on SSM parameters under one path prefix, with some names read from
/// Secrets Manager instead. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SsmSecretStore {
    client: Client,
    prefix: String,
    /// Secret name → Secrets Manager secret id (name or ARN). Ids are not secret.
    references: BTreeMap<String, String>,
}

impl SsmSecretStore {
    /// Secrets under `prefix`, a path such as `/parley/prod/`. A missing leading or
    /// trailing `/` is added.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        let mut prefix = prefix.into();
        if !prefix.starts_with('/') {
            prefix.insert(0, '/');
        }
        if !prefix.ends_with('/') {
            prefix.push('/');
        }
        SsmSecretStore {
            client,
            prefix,
            references: BTreeMap::new(),
        }
    }

    /// Reads secret `name` from the Secrets Manager secret `secret_id` (its name or ARN)
    /// through SSM's reference path, and refuses to write or delete it: the deployment
    /// owns it. A second reference for the same name replaces the first.
    pub fn with_reference(mut self, name: &str, secret_id: &str) -> Self {
        self.references
            .insert(name.to_owned(), secret_id.to_owned());
        self
    }

    /// The Secrets Manager secret id `name` is read from, if it is a referenced name.
    pub fn reference(&self, name: &str) -> Option<&str> {
        self.references.get(name).map(String::as_str)
    }

    /// The path every parameter name starts with; it starts and ends with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The SSM parameter that holds secret `name`.
    pub fn parameter_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The refusal of a write to `name`, if it is kept in Secrets Manager.
    fn refuse_referenced(&self, name: &str, action: &str) -> StoreResult<()> {
        match self.reference(name) {
            None => Ok(()),
            Some(secret_id) => Err(StoreError::invalid(
                "name",
                format!(
                    "secret {name} is kept in AWS Secrets Manager (secret {secret_id}), where \
                     the deployment creates and rotates it; Parley does not {action} it"
                ),
            )),
        }
    }

    /// `GetParameter` with decryption; `None` when SSM says there is no such parameter.
    async fn read(&self, parameter: &str, what: &str) -> StoreResult<Option<String>> {
        let out = match self
            .client
            .get_parameter()
            .name(parameter)
            .with_decryption(true)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(throttled_or(what, e)),
        };
        let value = out
            .parameter()
            .and_then(|p| p.value())
            .ok_or_else(|| backend(what, "GetParameter returned no value", false))?;
        Ok(Some(value.to_owned()))
    }
}

/// `TooManyUpdates` (concurrent puts of one parameter) is SSM's way to say "slow down".
fn throttled_or<E>(what: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if error_code(&err) == Some("TooManyUpdates") {
        return StoreError::Throttled {
            what: what.to_owned(),
            detail: "TooManyUpdates: concurrent updates of the parameter".into(),
        };
    }
    sdk_error(what, err)
}

/// Masks `value` wherever it appears in an error's text.
fn masked(err: StoreError, value: &str) -> StoreError {
    let mask = |s: String| s.replace(value, "***");
    match err {
        StoreError::Backend {
            what,
            detail,
            retryable,
        } => StoreError::Backend {
            what,
            detail: mask(detail),
            retryable,
        },
        StoreError::Throttled { what, detail } => StoreError::Throttled {
            what,
            detail: mask(detail),
        },
        StoreError::Corrupt { what, detail } => StoreError::Corrupt {
            what,
            detail: mask(detail),
        },
        StoreError::Invalid { field, reason } => StoreError::Invalid {
            field,
            reason: mask(reason),
        },
        other @ (StoreError::Conflict { .. } | StoreError::Missing { .. }) => other,
    }
}

#[async_trait]
impl SecretStore for SsmSecretStore {
    async fn put(&self, name: &str, value: &SecretString) -> StoreResult<()> {
        validate_put(name, value)?;
        self.refuse_referenced(name, "write")?;
        let parameter = self.parameter_name(name);
        let what = format!("SSM parameter {parameter}");
        self.client
            .put_parameter()
            .name(&parameter)
            .value(value.expose())
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| masked(throttled_or(&what, e), value.expose()))?;
        Ok(())
    }

    async fn get(&self, name: &str) -> StoreResult<Option<SecretString>> {
        validate_name(name)?;
        if let Some(secret_id) = self.reference(name) {
            let parameter = format!("{SECRETS_MANAGER_REFERENCE_PATH}{secret_id}");
            let what = format!("Secrets Manager secret {secret_id} (for {name})");
            // Provisioned by the template: missing is a deployment fault, not "unset".
            return match self.read(&parameter, &what).await? {
                Some(value) => Ok(Some(SecretString::new(value))),
                None => Err(StoreError::Missing { what }),
            };
        }
        let parameter = self.parameter_name(name);
        let what = format!("SSM parameter {parameter}");
        Ok(self.read(&parameter, &what).await?.map(SecretString::new))
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        validate_name(name)?;
        self.refuse_referenced(name, "delete")?;
        let parameter = self.parameter_name(name);
        let what = format!("SSM parameter {parameter}");
        match self.client.delete_parameter().name(&parameter).send().await {
            Ok(_) => Ok(()),
            // The port's contract: deleting what is not there succeeds.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_parameter_not_found()) =>
            {
                Ok(())
            }
            Err(e) => Err(throttled_or(&what, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        let conf = aws_sdk_ssm::Config::builder()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .build();
        Client::from_conf(conf)
    }

    #[test]
    fn the_prefix_is_a_path() {
        for (given, kept) in [
            ("/parley/prod/", "/parley/prod/"),
            ("/parley/prod", "/parley/prod/"),
            ("parley/", "/parley/"),
            ("/", "/"),
        ] {
            let store = SsmSecretStore::new(client(), given);
            assert_eq!(store.prefix(), kept);
        }
        let store = SsmSecretStore::new(client(), "/parley/dev/");
        assert_eq!(
            store.parameter_name("tenant/t1/twilio-auth-token"),
            "/parley/dev/tenant/t1/twilio-auth-token"
        );
    }

    /// The client has no region or endpoint: had a request been attempted, the error
    /// would be a backend one, not a refusal.
    #[tokio::test]
    async fn referenced_names_are_read_only_and_never_reach_aws() {
        let store = SsmSecretStore::new(client(), "/parley/")
            .with_reference("admin-key", "parley/prod/admin-key");
        assert_eq!(store.reference("admin-key"), Some("parley/prod/admin-key"));
        assert_eq!(store.reference("other"), None);
        let value = SecretString::new("a-value-that-must-not-show".into());
        for err in [
            store.put("admin-key", &value).await.unwrap_err(),
            store.delete("admin-key").await.unwrap_err(),
        ] {
            let shown = err.to_string();
            assert!(matches!(err, StoreError::Invalid { .. }), "{shown}");
            assert!(
                shown.contains("Secrets Manager") && shown.contains("parley/prod/admin-key"),
                "{shown}"
            );
            assert!(!shown.contains("a-value-that-must-not-show"), "{shown}");
        }
    }

    #[test]
    fn a_failed_put_never_shows_the_value() {
        let err = masked(
            backend(
                "SSM parameter /p/x",
                "ValidationException: Value 's3cr3t' at 'value' failed",
                false,
            ),
            "s3cr3t",
        );
        let shown = err.to_string();
        assert!(
            shown.contains("/p/x") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
