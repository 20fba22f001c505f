//! The carrier webhooks as a Lambda function behind API Gateway.

use parley_shared::backend::Ports;
use parley_shared::config::{BackendConfig, Config};
use parley_webhooks::{WebhookState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    // On AWS the secret is provisioned with the stack and a missing one stops start-up;
    // embedded (under `cargo lambda watch`) it is made on first start, as `parley dev` does.
    let embedded = matches!(config.backend, BackendConfig::Embedded { .. });
    let state = WebhookState::new(ports, &config, embedded).await?;
    lambda_http::run(router(state)).await
}
