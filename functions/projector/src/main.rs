//! The projector as a Lambda function on the event table's DynamoDB stream (an event
//! source mapping with `ReportBatchItemFailures`, bisect-on-error and an on-failure
//! destination): every stream a batch names has its view rebuilt.

use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{LambdaEvent, service_fn};
use parley_shared::backend::Ports;
use parley_shared::config::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let ports = Ports::connect(&config).await?;
    let ports = &ports;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(parley_projector::project(ports, event.payload).await)
    }))
    .await
}
