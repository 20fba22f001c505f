//! The tenant's do-not-call list: numbers none of its campaigns or calls may dial,
//! blocked and unblocked one at a time, each with its own stream so both stay in the
//! history.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use parley_shared::aggregate::load;
use parley_shared::domain::donotcall::{self, DoNotCall, DoNotCallCommand, DoNotCallError};
use parley_shared::domain::{PhoneNumber, TenantId};
use parley_shared::readmodel::{View, project};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::body::parse;
use crate::error::{ApiError, RuleError};
use crate::tenants::active;
use crate::{AppState, Page, PageParams, owned_by, owned_view, run};

/// The views' collection.
const COLLECTION: &str = "do_not_call";

/// The reason recorded when a request gives none.
const DEFAULT_REASON: &str = "added through the API";

impl RuleError for DoNotCallError {
    fn to_api(&self) -> ApiError {
        match self {
            DoNotCallError::Invalid(e) => e.clone().into(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    reason: Option<String>,
}

/// The number in the path, written any common way with its country code, as E.164.
fn number(raw: &str) -> Result<PhoneNumber, ApiError> {
    PhoneNumber::normalise(raw, None).map_err(|e| ApiError::invalid("number", e.reason))
}

fn repr(number: &PhoneNumber, entry: &DoNotCall) -> Value {
    json!({
        "number": number,
        "blocked": entry.blocked,
        "reason": entry.reason,
    })
}

/// Keeps the number's view in step with its stream. The view's key carries the tenant:
/// two tenants may block the same number, and each stream has its own versions.
async fn save_view(
    state: &AppState,
    tenant: &TenantId,
    number: &PhoneNumber,
    entry: &DoNotCall,
    version: u64,
) -> Result<(), ApiError> {
    let key = format!("{tenant}:{}", number.as_str());
    let view = if entry.blocked {
        let mut view = owned_view(COLLECTION, number.as_str(), tenant, repr(number, entry));
        view.key = key;
        view
    } else {
        // An unblocked number keeps its view, without index entries, so it leaves the
        // lists while the view's version still only ever goes up.
        View::new(COLLECTION, key, repr(number, entry))
    };
    Ok(project(&*state.ports.views, view, version).await?)
}

/// `PUT /v1/do-not-call/{number}`: blocks the number (blocking it again keeps the first
/// reason).
pub async fn block(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    let number = number(&raw)?;
    // The body is optional: an empty one blocks with the default reason.
    let request: BlockRequest = if body.iter().all(u8::is_ascii_whitespace) {
        BlockRequest::default()
    } else {
        parse(&body)?
    };
    let reason = request.reason.unwrap_or_else(|| DEFAULT_REASON.into());
    let stream = donotcall::stream(&tenant, &number);
    let command = DoNotCallCommand::Block {
        number: number.clone(),
        reason,
    };
    let done = run::<DoNotCall>(&state, &stream, &tenant, command).await?;
    save_view(&state, &tenant, &number, &done.state, done.version).await?;
    tracing::info!(tenant_id = %tenant, number = ?number, "number blocked");
    Ok(Json(repr(&number, &done.state)))
}

/// `DELETE /v1/do-not-call/{number}`: unblocks the number; a number never blocked is
/// already in the state asked for.
pub async fn unblock(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let tenant = caller.tenant()?.clone();
    active(&state, &tenant).await?;
    let number = number(&raw)?;
    let stream = donotcall::stream(&tenant, &number);
    let done = run::<DoNotCall>(&state, &stream, &tenant, DoNotCallCommand::Unblock).await?;
    // A number with no history has nothing to show, so it gets no view.
    if done.version > 0 {
        save_view(&state, &tenant, &number, &done.state, done.version).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/do-not-call/{number}`: the entry, read from its stream; 404 unless blocked.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.tenant()?;
    let number = number(&raw)?;
    let stream = donotcall::stream(tenant, &number);
    let loaded = load::<DoNotCall>(&*state.ports.events, &stream, &tenant.to_string()).await?;
    if !loaded.state.blocked {
        return Err(ApiError::not_found("do-not-call entry"));
    }
    Ok(Json(repr(&number, &loaded.state)))
}

/// `GET /v1/do-not-call`: the caller's blocked numbers, in number order.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page>, ApiError> {
    let tenant = caller.tenant()?;
    let query = page.query(owned_by(COLLECTION, tenant))?;
    Ok(Json(Page::from(state.ports.views.query(&query).await?)))
}
