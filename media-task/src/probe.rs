//! `media-task --health`: the container's own health check. It asks the running task's
//! `/health` on loopback, so the image needs no curl, and ECS and `docker run` see the
//! same answer the load balancer does (a draining or stuck task is unhealthy).

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Why the task is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("no answer from {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}")]
    Unhealthy { url: String, status: u16 },
}

/// The loopback address of a task listening on `listen` (`0.0.0.0:8080` is served on
/// `127.0.0.1:8080` too, and a wildcard address cannot be connected to).
pub fn loopback(listen: SocketAddr) -> SocketAddr {
    if listen.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, listen.port()))
    } else {
        listen
    }
}

/// Asks the task listening on `listen` whether it is healthy, within `within`.
pub async fn check(listen: SocketAddr, within: Duration) -> Result<(), ProbeError> {
    let url = format!("http://{}/health", loopback(listen));
    let unreachable = |source| ProbeError::Unreachable {
        url: url.clone(),
        source,
    };
    let client = reqwest::Client::builder()
        .timeout(within)
        .build()
        .map_err(unreachable)?;
    let response = client.get(&url).send().await.map_err(unreachable)?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(ProbeError::Unhealthy {
            url,
            status: status.as_u16(),
        })
    }
}
