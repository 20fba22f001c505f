//! The API as a Lambda function behind API Gateway.

use parley_api::{AdminKey, AppState, router};
use parley_shared::backend::Ports;
use parley_shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    let admin_key = AdminKey::new(config.admin_key.as_ref().map(|k| k.expose()));
    lambda_http::run(router(AppState { ports, admin_key })).await
}
