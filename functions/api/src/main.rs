//! The API as a Lambda function behind API Gateway.

use parley_api::{AppState, router};
use parley_shared::backend::Ports;
use parley_shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    lambda_http::run(router(AppState::new(ports, &config)?)).await
}
