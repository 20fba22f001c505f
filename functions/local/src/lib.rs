//! The local stack: every route of every function on one port, on the embedded
//! adapters, with the same routers the Lambdas serve, and the workers AWS runs on
//! schedules and queues (the scheduler's tick every minute, the dial-queue consumer)
//! running the same library code. Later capabilities mount theirs here too, so each
//! is runnable locally the day it lands.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parley_shared::StoreError;
use parley_shared::backend::Ports;
use parley_shared::config::Config;
use parley_webhooks::WebhookState;
use serde::Deserialize;
use tokio::net::TcpListener;

pub mod carrier;
pub mod demo;
pub mod page;
pub mod softphone;

/// Everything the local stack serves, opened on one configuration.
#[derive(Clone)]
pub struct Stack {
    pub ports: Ports,
    pub api: parley_api::AppState,
    pub webhooks: WebhookState,
    pub dialer: parley_dialer::Dialer,
    /// The media task's routes (`/media/twilio`), on the same port.
    pub media: parley_media::server::MediaState,
    /// The simulated carrier, for numbers whose carrier is `simulated`.
    pub simulator: carrier::Simulator,
    /// How often the scheduler ticks (EventBridge's once a minute; tests go faster).
    pub tick_every: Duration,
}

impl Stack {
    /// Opens `ports` for `config`; makes the stream token secret on first start.
    pub async fn new(ports: Ports, config: &Config) -> Result<Stack, StoreError> {
        let mut webhooks = WebhookState::new(ports.clone(), config, true).await?;
        let mut api =
            parley_api::AppState::new(ports.clone(), config).map_err(|e| StoreError::Invalid {
                field: "PARLEY_TWILIO_API_URL or PARLEY_EXOTEL_API_URL".into(),
                reason: e,
            })?;
        // Parley reaches the simulated carrier as it reaches Twilio: through its Twilio
        // client, here with the stack's own address as the API's base.
        let simulated = parley_shared::twilio::rest::TwilioClient::new(
            format!("{}{}", config.public_url, carrier::BASE_PATH),
            Duration::from_secs(10),
        )
        .map_err(|e| StoreError::Invalid {
            field: "PARLEY_PUBLIC_URL".into(),
            reason: e.to_string(),
        })?;
        api.dialing.simulated = Some(simulated.clone());
        webhooks.simulated = Some(simulated);
        let simulator = carrier::Simulator::new(
            ports.clone(),
            &config.public_url,
            carrier::Settings::from_env(),
        )
        .map_err(|e| StoreError::Invalid {
            field: "simulated carrier".into(),
            reason: e.to_string(),
        })?;
        // Conversations use the vendors whose keys are in the environment; on one's own
        // machine an agent may choose a local model server.
        let mut vendors = parley_media::call::Vendors::from_env().await;
        vendors.deployment = Some(std::sync::Arc::new(
            parley_media::choice::Deployment::from_env().allowing_private_urls(true),
        ));
        let media = parley_media::server::MediaState::new(
            ports.clock.clone(),
            (*webhooks.stream_secret).clone(),
        )
        .with_calls(parley_media::call::Calls {
            ports: ports.clone(),
            vendors,
        });
        let dialer = parley_dialer::Dialer {
            ports: ports.clone(),
            dialing: api.dialing.clone(),
        };
        Ok(Stack {
            ports,
            api,
            webhooks,
            dialer,
            media,
            simulator,
            tick_every: TICK,
        })
    }
}

/// All routes of the local stack: every function's router, as on AWS, plus the blob
/// downloads that S3 serves there.
pub fn app(stack: Stack) -> Router {
    let blobs = Router::new()
        .route("/blobs/{*key}", get(download))
        .with_state(stack.ports.clone());
    parley_api::router(stack.api)
        .merge(parley_webhooks::router(stack.webhooks))
        .merge(parley_media::server::routes(stack.media))
        .merge(stack.simulator.routes())
        .merge(page::routes())
        .merge(blobs)
}

/// Serves `app` on `listener` and runs the workers until `shutdown` resolves, then
/// lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    stack: Stack,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = tokio::spawn(workers(stack.clone(), stopped));
    // The media routes' audio frames go out as they are due, not held for an ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(listener, app(stack))
        .with_graceful_shutdown(shutdown)
        .await;
    let _ = stop.send(true);
    let _ = workers.await;
    result
}

/// How often the scheduler ticks: EventBridge's once a minute.
const TICK: Duration = Duration::from_secs(60);

/// The scheduler's tick and the dial-queue consumer, until `stop` turns true. Each
/// runs in its own task and checks `stop` only between units of work: a job half
/// placed when Ctrl-C comes is finished, not dropped.
pub async fn workers(stack: Stack, stop: tokio::sync::watch::Receiver<bool>) {
    let scheduler = {
        let (ports, mut stop, every) = (stack.ports.clone(), stop.clone(), stack.tick_every);
        let carriers = stack.api.dialing.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = ticks.tick() => {}
                }
                if let Err(e) = parley_scheduler::tick(&ports, Some(&carriers)).await {
                    tracing::error!(error = %e, "scheduler tick failed");
                }
            }
        })
    };
    let dialer = stack.dialer.clone();
    let consumer = tokio::spawn(async move {
        while !*stop.borrow() {
            // Waits up to a second for a job, so an idle stack does not spin.
            if let Err(e) = dialer.consume(10, Duration::from_secs(1)).await {
                tracing::error!(error = %e, "dial queue not read");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    });
    let _ = tokio::join!(scheduler, consumer);
}

/// Binds the listen address with an error that says which address failed.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

#[derive(Debug, Deserialize)]
struct Signed {
    expires: Option<i64>,
    signature: Option<String>,
}

/// The embedded stand-in for an S3 presigned URL: a blob, to whoever holds an
/// unexpired signed link for it.
async fn download(
    State(ports): State<Ports>,
    Path(key): Path<String>,
    Query(signed): Query<Signed>,
) -> Response {
    let Some(embedded) = ports.embedded.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (Some(expires), Some(signature)) = (signed.expires, signed.signature) else {
        return (StatusCode::FORBIDDEN, "missing expires or signature").into_response();
    };
    if !embedded
        .blobs
        .verify_url(&key, expires, &signature, ports.clock.now())
    {
        return (StatusCode::FORBIDDEN, "invalid or expired link").into_response();
    }
    match ports.blobs.get(&key).await {
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, content_type(&key))], bytes).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, "blob download failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn content_type(key: &str) -> &'static str {
    match key.rsplit_once('.').map(|(_, ext)| ext) {
        Some("wav") => "audio/wav",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        _ => "application/octet-stream",
    }
}
