//! Configuration from environment variables into one typed value. Every variable is
//! optional in the embedded mode; the AWS mode names each one it needs. An error always
//! names the variable (never its value, which may be a secret).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::secrets::SecretString;

/// The shortest admin key accepted, from `PARLEY_ADMIN_KEY` or from Secrets Manager: a
/// short one can be guessed.
pub const MIN_ADMIN_KEY_LEN: usize = 20;

/// The secret store's name for the admin key. On AWS it is read from the Secrets Manager
/// secret `PARLEY_ADMIN_KEY_SECRET_ID` names (see [`crate::backend::admin_key`]).
pub const ADMIN_KEY_SECRET: &str = "admin-key";

/// SSM allows 15 levels of parameter hierarchy; a secret's name may take up to
/// [`crate::secrets::MAX_NAME_SEGMENTS`] of them.
const MAX_PREFIX_SEGMENTS: usize = 15 - crate::secrets::MAX_NAME_SEGMENTS;

/// Where the ports live.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one value per process, read once at start; boxing buys nothing"
)]
pub enum BackendConfig {
    /// SQLite and files under one data directory.
    Embedded { data_dir: PathBuf },
    /// DynamoDB, SQS and S3; endpoints and credentials come from the standard `AWS_*`
    /// variables (`AWS_ENDPOINT_URL` points them at an emulator).
    Aws {
        events_table: String,
        views_table: String,
        dial_queue_url: String,
        dial_dead_letter_url: String,
        /// Messages to leads (confirmations) for the sender to deliver.
        message_queue_url: String,
        message_dead_letter_url: String,
        bucket: String,
        /// `PARLEY_SECRETS_PREFIX`: the SSM path the secrets live under, starting and
        /// ending with `/` (default `/parley/`).
        secrets_prefix: String,
        /// `PARLEY_STREAM_SECRET_ID`: the Secrets Manager secret (name or ARN) that holds
        /// the stream token key, created and rotated by the deployment template. Unset:
        /// the key is an SSM parameter under the prefix like any other secret.
        stream_secret_id: Option<String>,
        /// `PARLEY_ADMIN_KEY_SECRET_ID`: the Secrets Manager secret (name or ARN) that
        /// holds the admin key, read at start when `PARLEY_ADMIN_KEY` is unset.
        admin_key_secret_id: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub backend: BackendConfig,
    /// `PARLEY_LISTEN`: where the local stack serves every route.
    pub listen: SocketAddr,
    /// `PARLEY_PUBLIC_URL`: how carriers and browsers reach us; used in TwiML, in
    /// signature checks and in download URLs. Defaults to `http://<listen>`.
    pub public_url: String,
    /// `PARLEY_QUEUE_MAX_RECEIVES`: deliveries before a job goes to the dead-letter queue.
    pub queue_max_receives: u32,
    /// `PARLEY_LOG_FORMAT`: `text` (default) or `json` (what CloudWatch wants).
    pub log_format: LogFormat,
    /// `PARLEY_ADMIN_KEY`: the key of the admin, who manages tenants. Unset: on AWS the
    /// API reads it at start from `PARLEY_ADMIN_KEY_SECRET_ID`'s secret (see
    /// [`crate::backend::admin_key`]); without that either, there is no admin.
    pub admin_key: Option<SecretString>,
    /// `PARLEY_MEDIA_URL`: the `ws://` or `wss://` base the carriers stream audio to (the
    /// media task). Defaults to the public URL with its scheme turned into a WebSocket's.
    pub media_url: String,
    /// `PARLEY_TWILIO_API_URL`: Twilio's REST API (default `https://api.twilio.com`);
    /// tests and the local stack's simulated carrier point it elsewhere.
    pub twilio_api_url: String,
    /// `PARLEY_EXOTEL_API_URL`: when set, Exotel's REST API is reached here instead of
    /// each tenant's own regional host (tests, the local stack).
    pub exotel_api_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {variable} is malformed: {reason}")]
    Malformed {
        variable: &'static str,
        reason: String,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let require = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let backend = match get("PARLEY_BACKEND").as_deref() {
            None | Some("embedded") => BackendConfig::Embedded {
                data_dir: PathBuf::from(
                    get("PARLEY_DATA_DIR").unwrap_or_else(|| "./.parley".into()),
                ),
            },
            Some("aws") => BackendConfig::Aws {
                events_table: require("PARLEY_EVENTS_TABLE")?,
                views_table: require("PARLEY_VIEWS_TABLE")?,
                dial_queue_url: url("PARLEY_DIAL_QUEUE_URL", require("PARLEY_DIAL_QUEUE_URL")?)?,
                dial_dead_letter_url: url(
                    "PARLEY_DIAL_DEAD_LETTER_URL",
                    require("PARLEY_DIAL_DEAD_LETTER_URL")?,
                )?,
                message_queue_url: url(
                    "PARLEY_MESSAGE_QUEUE_URL",
                    require("PARLEY_MESSAGE_QUEUE_URL")?,
                )?,
                message_dead_letter_url: url(
                    "PARLEY_MESSAGE_DEAD_LETTER_URL",
                    require("PARLEY_MESSAGE_DEAD_LETTER_URL")?,
                )?,
                bucket: require("PARLEY_BUCKET")?,
                secrets_prefix: secrets_prefix(get("PARLEY_SECRETS_PREFIX"))?,
                stream_secret_id: get("PARLEY_STREAM_SECRET_ID")
                    .map(|v| secret_id("PARLEY_STREAM_SECRET_ID", v))
                    .transpose()?,
                admin_key_secret_id: get("PARLEY_ADMIN_KEY_SECRET_ID")
                    .map(|v| secret_id("PARLEY_ADMIN_KEY_SECRET_ID", v))
                    .transpose()?,
            },
            Some(other) => {
                return Err(ConfigError::Malformed {
                    variable: "PARLEY_BACKEND",
                    reason: format!("{other:?} is neither \"embedded\" nor \"aws\""),
                });
            }
        };

        let listen = match get("PARLEY_LISTEN") {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(value) => value.parse().map_err(|_| ConfigError::Malformed {
                variable: "PARLEY_LISTEN",
                reason: format!("{value:?} is not an address such as 127.0.0.1:8080"),
            })?,
        };

        let public_url = match get("PARLEY_PUBLIC_URL") {
            None => format!("http://{listen}"),
            Some(value) => url("PARLEY_PUBLIC_URL", value)?
                .trim_end_matches('/')
                .to_owned(),
        };

        let queue_max_receives = match get("PARLEY_QUEUE_MAX_RECEIVES") {
            None => 5,
            Some(value) => value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError::Malformed {
                    variable: "PARLEY_QUEUE_MAX_RECEIVES",
                    reason: format!("{value:?} is not a whole number from 1 to 1000"),
                })?,
        };

        let log_format = match get("PARLEY_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Malformed {
                    variable: "PARLEY_LOG_FORMAT",
                    reason: format!("{other:?} is neither \"text\" nor \"json\""),
                });
            }
        };

        let admin_key = match get("PARLEY_ADMIN_KEY") {
            None => None,
            // A short admin key can be guessed; the message never repeats the value.
            Some(key) if key.len() < MIN_ADMIN_KEY_LEN => {
                return Err(ConfigError::Malformed {
                    variable: "PARLEY_ADMIN_KEY",
                    reason: format!("must be at least {MIN_ADMIN_KEY_LEN} characters"),
                });
            }
            Some(key) => Some(SecretString::new(key)),
        };

        let media_url = match get("PARLEY_MEDIA_URL") {
            None => public_url
                .replacen("https://", "wss://", 1)
                .replacen("http://", "ws://", 1),
            Some(value) => {
                let ok = (value.starts_with("wss://") || value.starts_with("ws://"))
                    && !value.contains(char::is_whitespace);
                if !ok {
                    return Err(ConfigError::Malformed {
                        variable: "PARLEY_MEDIA_URL",
                        reason: "must be a ws:// or wss:// URL".into(),
                    });
                }
                value.trim_end_matches('/').to_owned()
            }
        };

        let twilio_api_url = match get("PARLEY_TWILIO_API_URL") {
            None => "https://api.twilio.com".to_owned(),
            Some(value) => url("PARLEY_TWILIO_API_URL", value)?
                .trim_end_matches('/')
                .to_owned(),
        };

        let exotel_api_url = get("PARLEY_EXOTEL_API_URL")
            .map(|value| {
                url("PARLEY_EXOTEL_API_URL", value).map(|u| u.trim_end_matches('/').to_owned())
            })
            .transpose()?;

        Ok(Config {
            backend,
            listen,
            public_url,
            queue_max_receives,
            log_format,
            admin_key,
            media_url,
            twilio_api_url,
            exotel_api_url,
        })
    }
}

/// An SSM parameter path: `/`, or up to [`MAX_PREFIX_SEGMENTS`] `/`-separated segments of
/// `A-Z a-z 0-9 _ . -` between a leading and a trailing `/`.
fn secrets_prefix(value: Option<String>) -> Result<String, ConfigError> {
    let Some(value) = value else {
        return Ok("/parley/".into());
    };
    let segment_ok = |segment: &str| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    let ok = value == "/"
        || (value.len() > 1
            && value.starts_with('/')
            && value.ends_with('/')
            && value[1..value.len() - 1].split('/').all(segment_ok)
            && value[1..value.len() - 1].split('/').count() <= MAX_PREFIX_SEGMENTS);
    if ok {
        Ok(value)
    } else {
        Err(ConfigError::Malformed {
            variable: "PARLEY_SECRETS_PREFIX",
            reason: format!(
                "must be a path that starts and ends with / (such as /parley/prod/), of at \
                 most {MAX_PREFIX_SEGMENTS} segments of A-Z a-z 0-9 _ . -"
            ),
        })
    }
}

/// The longest secret id: SSM's 2048 characters for a parameter name, less the
/// reference path it is read through.
const MAX_SECRET_ID_CHARS: usize = 2048 - crate::aws::SECRETS_MANAGER_REFERENCE_PATH.len();

/// A Secrets Manager secret's name or ARN (`arn:aws:secretsmanager:…:secret:name-AbCdEf`):
/// 1 to [`MAX_SECRET_ID_CHARS`] characters of `A-Z a-z 0-9 / _ + = . @ - :`, so no
/// whitespace.
fn secret_id(variable: &'static str, value: String) -> Result<String, ConfigError> {
    const MAX: usize = MAX_SECRET_ID_CHARS;
    let ok = !value.is_empty()
        && value.len() <= MAX
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-:".contains(c));
    if ok {
        Ok(value)
    } else {
        Err(ConfigError::Malformed {
            variable,
            reason: format!(
                "must be a Secrets Manager secret name or ARN: 1 to {MAX} characters of \
                 A-Z a-z 0-9 / _ + = . @ - : (no whitespace)"
            ),
        })
    }
}

fn url(variable: &'static str, value: String) -> Result<String, ConfigError> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    match rest {
        Some(host)
            if !host.is_empty()
                && !host.starts_with('/')
                && !value.contains(char::is_whitespace) =>
        {
            Ok(value)
        }
        _ => Err(ConfigError::Malformed {
            variable,
            reason: "must be an http:// or https:// URL".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_embedded_mode_needs_no_variables() {
        let config = config(&[]).unwrap();
        assert_eq!(
            config.backend,
            BackendConfig::Embedded {
                data_dir: "./.parley".into()
            }
        );
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.public_url, "http://127.0.0.1:8080");
        assert_eq!(config.queue_max_receives, 5);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.admin_key, None);
        assert_eq!(config.media_url, "ws://127.0.0.1:8080");
    }

    #[test]
    fn the_admin_key_is_read_but_never_shown() {
        let key = "admin-key-of-enough-length-0123";
        let config = config(&[("PARLEY_ADMIN_KEY", key)]).unwrap();
        assert_eq!(config.admin_key.as_ref().map(|k| k.expose()), Some(key));
        assert!(!format!("{config:?}").contains(key));
        match super::Config::from_lookup(|n| {
            (n == "PARLEY_ADMIN_KEY").then(|| "short-secret".to_owned())
        }) {
            Err(e) => {
                assert!(e.to_string().contains("PARLEY_ADMIN_KEY"));
                assert!(!e.to_string().contains("short-secret"));
            }
            Ok(_) => panic!("a short admin key was accepted"),
        }
    }

    #[test]
    fn the_aws_mode_names_each_missing_variable() {
        let mut vars = vec![("PARLEY_BACKEND", "aws")];
        let needed = [
            ("PARLEY_EVENTS_TABLE", "events"),
            ("PARLEY_VIEWS_TABLE", "views"),
            (
                "PARLEY_DIAL_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/1/dial",
            ),
            (
                "PARLEY_DIAL_DEAD_LETTER_URL",
                "https://sqs.eu-west-1.amazonaws.com/1/dial-dlq",
            ),
            (
                "PARLEY_MESSAGE_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/1/messages",
            ),
            (
                "PARLEY_MESSAGE_DEAD_LETTER_URL",
                "https://sqs.eu-west-1.amazonaws.com/1/messages-dlq",
            ),
            ("PARLEY_BUCKET", "parley-media"),
        ];
        for (name, value) in needed {
            assert_eq!(config(&vars), Err(ConfigError::Missing(name)));
            vars.push((name, value));
        }
        assert_eq!(
            config(&vars).unwrap().backend,
            BackendConfig::Aws {
                events_table: "events".into(),
                views_table: "views".into(),
                dial_queue_url: "https://sqs.eu-west-1.amazonaws.com/1/dial".into(),
                dial_dead_letter_url: "https://sqs.eu-west-1.amazonaws.com/1/dial-dlq".into(),
                message_queue_url: "https://sqs.eu-west-1.amazonaws.com/1/messages".into(),
                message_dead_letter_url: "https://sqs.eu-west-1.amazonaws.com/1/messages-dlq"
                    .into(),
                bucket: "parley-media".into(),
                secrets_prefix: "/parley/".into(),
                stream_secret_id: None,
                admin_key_secret_id: None,
            }
        );
    }

    fn aws_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("PARLEY_BACKEND", "aws"),
            ("PARLEY_EVENTS_TABLE", "events"),
            ("PARLEY_VIEWS_TABLE", "views"),
            ("PARLEY_DIAL_QUEUE_URL", "https://sqs.example/1/dial"),
            (
                "PARLEY_DIAL_DEAD_LETTER_URL",
                "https://sqs.example/1/dial-dlq",
            ),
            ("PARLEY_MESSAGE_QUEUE_URL", "https://sqs.example/1/messages"),
            (
                "PARLEY_MESSAGE_DEAD_LETTER_URL",
                "https://sqs.example/1/messages-dlq",
            ),
            ("PARLEY_BUCKET", "parley-media"),
        ]
    }

    #[test]
    fn platform_secret_ids_are_names_or_arns() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:parley/prod/stream-AbC123";
        let mut vars = aws_vars();
        vars.push(("PARLEY_STREAM_SECRET_ID", arn));
        vars.push(("PARLEY_ADMIN_KEY_SECRET_ID", "parley/prod/admin-key"));
        match config(&vars).unwrap().backend {
            BackendConfig::Aws {
                stream_secret_id,
                admin_key_secret_id,
                ..
            } => {
                assert_eq!(stream_secret_id.as_deref(), Some(arn));
                assert_eq!(
                    admin_key_secret_id.as_deref(),
                    Some("parley/prod/admin-key")
                );
            }
            other => panic!("{other:?}"),
        }
        for variable in ["PARLEY_STREAM_SECRET_ID", "PARLEY_ADMIN_KEY_SECRET_ID"] {
            for bad in [
                "parley prod",
                "parley/prod\tkey",
                "parley/prod/key\n",
                "key#1",
            ] {
                let mut vars = aws_vars();
                vars.push((variable, bad));
                match config(&vars) {
                    Err(ConfigError::Malformed {
                        variable: named,
                        reason,
                    }) => {
                        assert_eq!(named, variable, "{bad:?}");
                        assert!(!reason.contains(bad), "{reason}");
                    }
                    other => panic!("{variable}={bad:?}: {other:?}"),
                }
            }
            let longest = "a".repeat(MAX_SECRET_ID_CHARS);
            let mut vars = aws_vars();
            vars.push((variable, longest.as_str()));
            assert!(config(&vars).is_ok());
            let too_long = "a".repeat(MAX_SECRET_ID_CHARS + 1);
            let mut vars = aws_vars();
            vars.push((variable, too_long.as_str()));
            assert!(matches!(
                config(&vars),
                Err(ConfigError::Malformed { variable: named, .. }) if named == variable
            ));
        }
    }

    #[test]
    fn the_secrets_prefix_is_an_ssm_path() {
        let prefix = |value: &str| {
            let mut vars = aws_vars();
            vars.push(("PARLEY_SECRETS_PREFIX", value));
            match config(&vars)?.backend {
                BackendConfig::Aws { secrets_prefix, .. } => Ok(secrets_prefix),
                other => panic!("{other:?}"),
            }
        };
        for good in [
            "/parley/prod/",
            "/",
            "/p/",
            "/a/b/c/d/e/",
            "/parley-test_1.x/",
        ] {
            assert_eq!(prefix(good).as_deref(), Ok(good));
        }
        for bad in [
            "parley/",
            "/parley",
            "parley",
            "//",
            "/parley//prod/",
            "/parley/../",
            "/parley/./",
            "/par ley/",
            "/parley:prod/",
            "/a/b/c/d/e/f/",
        ] {
            match prefix(bad) {
                Err(ConfigError::Malformed { variable, .. }) => {
                    assert_eq!(variable, "PARLEY_SECRETS_PREFIX", "{bad}")
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_values_name_their_variable() {
        let cases = [
            ("PARLEY_BACKEND", "cloud"),
            ("PARLEY_LISTEN", "localhost"),
            ("PARLEY_PUBLIC_URL", "example.com"),
            ("PARLEY_QUEUE_MAX_RECEIVES", "0"),
            ("PARLEY_QUEUE_MAX_RECEIVES", "many"),
            ("PARLEY_LOG_FORMAT", "xml"),
            ("PARLEY_MEDIA_URL", "https://media.example.com"),
            ("PARLEY_TWILIO_API_URL", "api.twilio.com"),
            ("PARLEY_EXOTEL_API_URL", "ftp://exotel"),
        ];
        for (name, value) in cases {
            match config(&[(name, value)]) {
                Err(ConfigError::Malformed { variable, .. }) => assert_eq!(variable, name),
                other => panic!("{name}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn settings_are_read() {
        let config = config(&[
            ("PARLEY_DATA_DIR", "/var/lib/parley"),
            ("PARLEY_LISTEN", "0.0.0.0:9000"),
            ("PARLEY_PUBLIC_URL", "https://parley.example.com/"),
            ("PARLEY_LOG_FORMAT", "json"),
        ])
        .unwrap();
        assert_eq!(
            config.backend,
            BackendConfig::Embedded {
                data_dir: "/var/lib/parley".into()
            }
        );
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.public_url, "https://parley.example.com");
        assert_eq!(config.media_url, "wss://parley.example.com");
        assert_eq!(config.log_format, LogFormat::Json);
    }
}
