//! What `parley dev` sets up so that a new user has something to talk to: an admin
//! key when none is given, and on the first start a demo tenant (with its API key), an
//! appointment-reception agent speaking its shipped flow, and a phone number on the
//! simulated carrier. Everything is made through the API's own routes, with the same
//! checks as any client's requests, and kept in the data directory, so a second start
//! finds the same tenant and prints the same keys.
//!
//! The keys are kept in files only the user can read: this is one developer's machine,
//! and the point is to find them again.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use parley_shared::secrets::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower::ServiceExt as _;

/// The demo tenant's file in the data directory.
const DEMO_FILE: &str = "demo.json";
/// The generated admin key's file in the data directory.
const ADMIN_KEY_FILE: &str = "admin-key";
/// The demo agent's number: a US number reserved for fiction (555-01xx).
pub const DEMO_NUMBER: &str = "+12025550123";

/// Why the demo could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a demo file Parley wrote ({reason}); move it away to start afresh")]
    Unreadable { path: PathBuf, reason: String },
    #[error("the API refused {what}: {status} {body}")]
    Refused {
        what: &'static str,
        status: StatusCode,
        body: String,
    },
}

/// The demo tenant, as the first start made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demo {
    pub tenant_id: String,
    pub api_key: String,
    pub agent_id: String,
    pub number: String,
}

/// The admin key: `given` when set, else the one kept in the data directory, else a
/// new one kept there; whether it was made now.
pub fn admin_key(
    data_dir: &Path,
    given: Option<&SecretString>,
) -> Result<(SecretString, bool), DemoError> {
    if let Some(key) = given {
        return Ok((key.clone(), false));
    }
    let path = data_dir.join(ADMIN_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= 20 => {
            return Ok((SecretString::new(key.trim().into()), false));
        }
        Ok(_) => {
            return Err(DemoError::Unreadable {
                path,
                reason: "too short for an admin key".into(),
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(DemoError::File { path, source }),
    }
    let key = parley_shared::domain::access::new_key();
    write_private(&path, key.as_bytes())?;
    Ok((SecretString::new(key), true))
}

/// The demo tenant: the one the data directory keeps, else a new one made through
/// `api` with `admin_key`; whether it was made now.
pub async fn ensure(
    api: Router,
    data_dir: &Path,
    admin_key: &SecretString,
) -> Result<(Demo, bool), DemoError> {
    let path = data_dir.join(DEMO_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let demo = serde_json::from_slice(&bytes).map_err(|e| DemoError::Unreadable {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            return Ok((demo, false));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(DemoError::File { path, source }),
    }
    let client = Client { api };
    let admin = admin_key.expose();
    let tenant = client
        .send(
            "the demo tenant",
            admin,
            "POST",
            "/v1/tenants",
            json!({"name": "Parley Demo Dental", "time_zone": "America/New_York"}),
        )
        .await?;
    // The tenant's first key comes with it.
    let tenant_id = text(&tenant, "id");
    let api_key = text(&tenant, "api_key");
    let agent = client
        .send(
            "the demo agent",
            &api_key,
            "POST",
            "/v1/agents",
            json!({
                "name": "Riley",
                "status": "active",
                "industry": "appointments",
                "business_hours": {
                    "time_zone": "America/New_York",
                    "week": {
                        "monday": [{"open": "09:00", "close": "17:00"}],
                        "tuesday": [{"open": "09:00", "close": "17:00"}],
                        "wednesday": [{"open": "09:00", "close": "17:00"}],
                        "thursday": [{"open": "09:00", "close": "17:00"}],
                        "friday": [{"open": "09:00", "close": "17:00"}],
                    },
                },
            }),
        )
        .await?;
    let agent_id = text(&agent, "id");
    client
        .send(
            "the demo number",
            &api_key,
            "POST",
            "/v1/phone-numbers",
            json!({"number": DEMO_NUMBER, "agent_id": agent_id, "carrier": "simulated"}),
        )
        .await?;
    let demo = Demo {
        tenant_id,
        api_key,
        agent_id,
        number: DEMO_NUMBER.into(),
    };
    let bytes = serde_json::to_vec_pretty(&demo).unwrap_or_default();
    write_private(&path, &bytes)?;
    Ok((demo, true))
}

/// The API's router, asked in process.
struct Client {
    api: Router,
}

impl Client {
    async fn send(
        &self,
        what: &'static str,
        key: &str,
        method: &str,
        path: &str,
        body: Value,
    ) -> Result<Value, DemoError> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()));
        let refused = |status, body: String| DemoError::Refused { what, status, body };
        let request = request.map_err(|e| refused(StatusCode::BAD_REQUEST, e.to_string()))?;
        let response = match self.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .map_err(|e| refused(status, e.to_string()))?;
        if !status.is_success() {
            return Err(refused(status, String::from_utf8_lossy(&bytes).into()));
        }
        serde_json::from_slice(&bytes).map_err(|e| refused(status, e.to_string()))
    }
}

fn text(value: &Value, field: &str) -> String {
    value[field].as_str().unwrap_or_default().to_owned()
}

/// Writes `bytes` to `path` readable by its owner only, whole or not at all.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), DemoError> {
    use std::io::Write as _;
    let err = |source| DemoError::File {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}
