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
//! Errors name the parameter, never the value: a failed put's detail has the value
//! masked, in case the service echoed it.

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ssm::types::ParameterType;

use super::sdk::{backend, error_code, sdk_error};
use crate::error::{StoreError, StoreResult};
use crate::secrets::{SecretStore, SecretString, validate_name, validate_put};

/// [`SecretStore`] on SSM parameters under one path prefix. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SsmSecretStore {
    client: Client,
    prefix: String,
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
        SsmSecretStore { client, prefix }
    }

    /// The path every parameter name starts with; it starts and ends with `/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The SSM parameter that holds secret `name`.
    pub fn parameter_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
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
        let parameter = self.parameter_name(name);
        let what = format!("SSM parameter {parameter}");
        let out = match self
            .client
            .get_parameter()
            .name(&parameter)
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
            Err(e) => return Err(throttled_or(&what, e)),
        };
        let value = out
            .parameter()
            .and_then(|p| p.value())
            .ok_or_else(|| backend(&what, "GetParameter returned no value", false))?;
        Ok(Some(SecretString::new(value.to_owned())))
    }

    async fn delete(&self, name: &str) -> StoreResult<()> {
        validate_name(name)?;
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
