//! The carrier webhooks as a Lambda function behind API Gateway.

use parley_shared::backend::Ports;
use parley_shared::config::Config;
use parley_webhooks::{WebhookState, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    // On AWS the secret is provisioned with the stack; a missing one stops start-up.
    let state = WebhookState::new(ports, &config, false).await?;
    lambda_http::run(router(state)).await
}
