//! The scheduler as a Lambda function on an EventBridge schedule (every minute).

use lambda_runtime::{LambdaEvent, service_fn};
use parley_shared::backend::Ports;
use parley_shared::config::Config;
use parley_shared::outbound::Dialing;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    let carriers = Dialing::new(&config, std::time::Duration::from_secs(10))?;
    let (ports, carriers) = (&ports, &carriers);
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<Value>| async move {
        let tick = parley_scheduler::tick(ports, Some(carriers)).await?;
        Ok::<_, lambda_runtime::Error>(serde_json::to_value(tick)?)
    }))
    .await
}
