//! The dialer as a Lambda function on the dial queue (an SQS trigger with
//! `ReportBatchItemFailures`): one bad job fails alone, not its whole batch.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use parley_dialer::Dialer;
use parley_shared::backend::Ports;
use parley_shared::config::Config;
use parley_shared::outbound::Dialing;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    parley_shared::telemetry::init(config.log_format);
    let dialer = Dialer {
        ports: Ports::connect(&config).await?,
        dialing: Dialing::new(&config, std::time::Duration::from_secs(10))?,
    };
    let dialer = &dialer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, lambda_runtime::Error>(dialer.batch(event.payload).await)
    }))
    .await
}
