//! The API as a Lambda function behind API Gateway.

use parley_api::{AppState, router};
use parley_shared::backend::{Ports, admin_key};
use parley_shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let mut config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    // PARLEY_ADMIN_KEY, or on AWS the Secrets Manager secret the template keeps.
    config.admin_key = admin_key(&config, &*ports.secrets).await?;
    lambda_http::run(router(AppState::new(ports, &config)?)).await
}
