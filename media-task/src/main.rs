//! The media task: the long-lived service behind the load balancer that holds calls'
//! audio. On SIGTERM it stops taking calls and lets live ones finish, up to
//! `PARLEY_MEDIA_GRACE_SECS` (default 600: ECS's longest stop timeout is 120 s unless
//! raised, so set the task's `stopTimeout` to match).
//!
//! It holds at most `PARLEY_MEDIA_MAX_CALLS` calls at once (default: 300 per core it
//! may use) and refuses new streams beyond that, so live calls keep their timing.
//! Autoscaling on live calls, with its target below the cap, keeps that rare.

use std::num::NonZeroUsize;
use std::time::Duration;

use anyhow::Context as _;
use axum::serve::ListenerExt;
use parley_media::call::{Calls, Vendors};
use parley_media::server::{MediaState, service};
use parley_shared::backend::Ports;
use parley_shared::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `media-task --health`: the container health check (see `probe`). It needs only
    // the listen address, not the whole AWS configuration.
    if std::env::args().nth(1).as_deref() == Some("--health") {
        let only_listen = |name: &str| {
            (name == "PARLEY_LISTEN")
                .then(|| std::env::var(name).ok())
                .flatten()
        };
        let listen = Config::from_lookup(only_listen)?.listen;
        parley_media::probe::check(listen, Duration::from_secs(3)).await?;
        return Ok(());
    }
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let grace = match std::env::var("PARLEY_MEDIA_GRACE_SECS") {
        Ok(raw) => raw
            .parse()
            .map(Duration::from_secs)
            .context("PARLEY_MEDIA_GRACE_SECS: must be a whole number of seconds")?,
        Err(_) => Duration::from_secs(600),
    };
    let max_calls = match std::env::var("PARLEY_MEDIA_MAX_CALLS") {
        Ok(raw) => Some(
            raw.trim()
                .parse::<NonZeroUsize>()
                .context("PARLEY_MEDIA_MAX_CALLS: must be a positive whole number")?,
        ),
        Err(_) => None,
    };
    let ports = Ports::connect(&config)
        .await
        .context("opening the stores")?;
    let secret = parley_shared::streamtoken::load_secret(&*ports.secrets, false)
        .await
        .context("reading the stream token secret")?;
    let vendors = Vendors::from_env().await;
    let mut state =
        MediaState::new(ports.clock.clone(), secret).with_calls(Calls { ports, vendors });
    if let Some(max_calls) = max_calls {
        state = state.with_max_calls(max_calls.get());
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        max_calls = state.max_calls,
        "media task is up"
    );
    let draining = state.clone();
    // Audio frames go out as they are due, not held for a delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, service(state))
        .with_graceful_shutdown(async move {
            terminated().await;
            let left = draining.drain(grace).await;
            tracing::info!(left, "media task stopping");
        })
        .await?;
    Ok(())
}

/// SIGTERM (ECS stopping the task) or Ctrl-C.
async fn terminated() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
