//! The REST API function. Its routes are an axum [`Router`], served by `lambda_http` on
//! AWS (see `main.rs`) and mounted as-is into the local stack (`parley dev`), so both run
//! the same code.
//!
//! Every route but `/health` and `/openapi.json` needs `Authorization: Bearer <key>`:
//! the admin key, or a tenant's key. A tenant never sees another tenant's data: other
//! tenants' ids are 404.

mod agents;
mod appointments;
pub mod auth;
mod body;
mod calls;
mod campaignreports;
mod campaigns;
mod donotcall;
pub mod error;
mod numbers;
mod openapi;
mod rules;
pub mod tenants;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use parley_shared::aggregate::{Aggregate, Context, Executed, execute};
use parley_shared::backend::Ports;
use parley_shared::config::Config;
use parley_shared::domain::TenantId;
use parley_shared::event::StreamId;
use parley_shared::outbound::Dialing;
use parley_shared::readmodel::{self, Index, IndexEntry, Query, View};
use serde::{Deserialize, Serialize};

pub use auth::AdminKey;
use auth::Caller;
use error::{ApiError, RuleError};

/// What every handler of the API can reach.
#[derive(Clone)]
pub struct AppState {
    pub ports: Ports,
    pub admin_key: AdminKey,
    /// How carriers reach our webhooks (the URLs given to them when placing calls).
    pub public_url: String,
    pub dialing: Dialing,
}

impl AppState {
    /// The API's state for `config`.
    pub fn new(ports: Ports, config: &Config) -> Result<AppState, String> {
        Ok(AppState {
            ports,
            admin_key: AdminKey::new(config.admin_key.as_ref().map(|k| k.expose())),
            public_url: config.public_url.clone(),
            dialing: Dialing::new(config, CARRIER_TIMEOUT)?,
        })
    }
}

/// How long a carrier API call may take: the API answers its own caller well within
/// API Gateway's 30 s.
const CARRIER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/tenants", post(tenants::create).get(tenants::list))
        .route("/v1/tenants/{id}", get(tenants::get).patch(tenants::update))
        .route("/v1/tenants/{id}/api-keys", post(tenants::create_key))
        .route("/v1/tenants/{id}/carriers/twilio", put(tenants::set_twilio))
        .route("/v1/tenants/{id}/carriers/exotel", put(tenants::set_exotel))
        .route(
            "/v1/tenants/{id}/dialing-limits",
            put(tenants::set_dialing_limits),
        )
        .route(
            "/v1/tenants/{id}/qualification",
            put(tenants::set_qualification),
        )
        .route(
            "/v1/tenants/{id}/vendor-keys/{name}",
            put(tenants::set_vendor_key).delete(tenants::remove_vendor_key),
        )
        .route("/v1/agents", post(agents::create).get(agents::list))
        .route(
            "/v1/agents/{id}",
            get(agents::get)
                .patch(agents::update)
                .delete(agents::delete),
        )
        .route("/v1/agents/{id}/flow", put(agents::set_flow))
        .route("/v1/calls", post(calls::create).get(calls::list))
        .route(
            "/v1/campaigns",
            post(campaigns::create).get(campaigns::list),
        )
        .route(
            "/v1/campaigns/{id}",
            get(campaigns::get).patch(campaigns::update),
        )
        .route("/v1/campaigns/{id}/start", post(campaigns::start))
        .route("/v1/campaigns/{id}/pause", post(campaigns::pause))
        .route("/v1/campaigns/{id}/resume", post(campaigns::resume))
        .route(
            "/v1/campaigns/{id}/leads",
            // Lead lists are larger than axum's 2 MB default; the importer enforces its
            // own limit and names it in a 413.
            post(campaigns::import_leads).layer(DefaultBodyLimit::max(campaigns::MAX_UPLOAD_BYTES)),
        )
        .route("/v1/campaigns/{id}/leads", get(campaignreports::leads))
        .route(
            "/v1/campaigns/{id}/analytics",
            get(campaignreports::analytics),
        )
        .route("/v1/campaigns/{id}/export", get(campaignreports::export))
        .route("/v1/calls/{id}", get(calls::get))
        .route("/v1/appointments", get(appointments::list))
        .route("/v1/appointments/{id}", get(appointments::get))
        .route("/v1/appointments/{id}/cancel", post(appointments::cancel))
        .route("/v1/do-not-call", get(donotcall::list))
        .route(
            "/v1/do-not-call/{number}",
            get(donotcall::get)
                .put(donotcall::block)
                .delete(donotcall::unblock),
        )
        .route(
            "/v1/phone-numbers",
            post(numbers::create).get(numbers::list),
        )
        .route(
            "/v1/phone-numbers/{number}",
            get(numbers::get)
                .patch(numbers::update)
                .delete(numbers::delete),
        )
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    backend: &'static str,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        backend: state.ports.kind(),
    })
}

/// Runs a command on `stream` for `tenant`.
pub(crate) async fn run<A: Aggregate>(
    state: &AppState,
    stream: &StreamId,
    tenant: &TenantId,
    command: A::Command,
) -> Result<Executed<A>, ApiError>
where
    A::Error: RuleError,
{
    let ctx = Context {
        tenant_id: tenant.to_string(),
        correlation_id: stream.to_string(),
        idempotency_key: None,
    };
    Ok(execute::<A>(
        &*state.ports.events,
        &*state.ports.clock,
        stream,
        &ctx,
        command,
    )
    .await?)
}

/// A view of something a tenant owns (`key` in `collection`): listed per tenant on index
/// 1, sorted by `key`, and across tenants, for the admin, on index 2.
pub(crate) fn owned_view(
    collection: &str,
    key: &str,
    tenant: &TenantId,
    body: serde_json::Value,
) -> View {
    View::new(collection, key, body)
        .with_index1(IndexEntry::new(format!("{collection}#{tenant}"), key))
        .with_index2(IndexEntry::new(collection, format!("{tenant}#{key}")))
}

/// The query over [`owned_view`]s of `tenant`.
pub(crate) fn owned_by(collection: &str, tenant: &TenantId) -> Query {
    Query::new(Index::First, format!("{collection}#{tenant}"))
}

/// A page of `collection`'s owned views: the caller's own, or every tenant's for the
/// admin.
pub(crate) async fn list_owned(
    state: &AppState,
    caller: &Caller,
    collection: &str,
    page: PageParams,
) -> Result<Json<Page>, ApiError> {
    let query = match caller {
        Caller::Tenant(tenant) => owned_by(collection, tenant),
        Caller::Admin => Query::new(Index::Second, collection),
    };
    Ok(Json(Page::from(
        state.ports.views.query(&page.query(query)?).await?,
    )))
}

/// `?limit=&cursor=` on list routes.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

impl PageParams {
    fn query(self, mut query: Query) -> Result<Query, ApiError> {
        query.limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&query.limit) {
            return Err(ApiError::invalid("limit", "must be 1 to 200"));
        }
        query.cursor = self.cursor;
        Ok(query)
    }
}

/// The most store pages one filtered list page reads before it answers with what it
/// has and a cursor to go on: a rare match must not turn one request into a scan of a
/// whole index.
const MAX_FILL_PAGES: usize = 20;

/// Up to `query.limit` views that `keep` accepts, with the cursor after the last one
/// read. Each store page asks only for as many as are still missing, so the cursor
/// never skips a view that was read but not returned.
pub(crate) async fn fill_page(
    state: &AppState,
    mut query: Query,
    keep: impl Fn(&View) -> bool,
) -> Result<readmodel::Page, ApiError> {
    let wanted = query.limit;
    let mut views = Vec::with_capacity(wanted);
    for _ in 0..MAX_FILL_PAGES {
        query.limit = wanted - views.len();
        let page = state.ports.views.query(&query).await?;
        views.extend(page.views.into_iter().filter(|v| keep(v)));
        match page.next {
            Some(next) if views.len() < wanted => query.cursor = Some(next),
            next => return Ok(readmodel::Page { views, next }),
        }
    }
    Ok(readmodel::Page {
        views,
        next: query.cursor,
    })
}

/// A page of a list: the items and, when there may be more, the cursor to ask for them.
#[derive(Debug, Serialize)]
pub struct Page {
    pub(crate) items: Vec<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl From<readmodel::Page> for Page {
    fn from(page: readmodel::Page) -> Self {
        Page {
            items: page
                .views
                .into_iter()
                .map(|v| {
                    let mut body = v.body;
                    if let Some(map) = body.as_object_mut() {
                        map.remove("stream_version");
                    }
                    body
                })
                .collect(),
            next_cursor: page.next,
        }
    }
}
