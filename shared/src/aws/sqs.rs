//! The queue on SQS: a standard queue with a redrive policy to its dead-letter queue.
//!
//! SQS takes delays and visibility timeouts in whole seconds; both are rounded up, so a
//! message never shows up or comes back earlier than asked. The wait of a receive is
//! rounded down (it is an upper bound).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};

use super::sdk::{backend, ceil_secs, error_code, sdk_error};
use crate::error::{StoreError, StoreResult};
use crate::queue::{Delivery, MAX_RECEIVE, Queue, validate_receive, validate_send};

/// A queue on SQS and its dead-letter queue. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    pub fn new(
        client: Client,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        SqsQueue {
            client,
            queue_url: queue_url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }

    /// Creates `<name>-dlq` and `name`, whose messages go to the former after
    /// `max_receives` deliveries, for tests and local emulators. Existing queues with
    /// the same attributes are reused (SQS's own rule).
    pub async fn create(client: Client, name: &str, max_receives: u32) -> StoreResult<SqsQueue> {
        let dlq_name = format!("{name}-dlq");
        let what = format!("SQS queue {dlq_name}");
        let dead_letter_url = client
            .create_queue()
            .queue_name(&dlq_name)
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?
            .queue_url()
            .ok_or_else(|| backend(&what, "CreateQueue returned no URL", false))?
            .to_owned();
        let what = format!("SQS queue {dead_letter_url}");
        let attributes = client
            .get_queue_attributes()
            .queue_url(&dead_letter_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        let dlq_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .ok_or_else(|| backend(&what, "GetQueueAttributes returned no QueueArn", false))?;
        let policy = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": max_receives.to_string(),
        });
        let what = format!("SQS queue {name}");
        let queue_url = client
            .create_queue()
            .queue_name(name)
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?
            .queue_url()
            .ok_or_else(|| backend(&what, "CreateQueue returned no URL", false))?
            .to_owned();
        Ok(SqsQueue::new(client, queue_url, dead_letter_url))
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    pub fn dead_letter_url(&self) -> &str {
        &self.dead_letter_url
    }

    async fn receive_from(
        &self,
        url: &str,
        max: usize,
        visibility: i32,
        wait: i32,
    ) -> StoreResult<Vec<Delivery>> {
        let what = format!("SQS queue {url}");
        let out = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(10))
            .visibility_timeout(visibility)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        out.messages().iter().map(|m| delivery(&what, m)).collect()
    }
}

fn delivery(what: &str, message: &Message) -> StoreResult<Delivery> {
    let field = |value: Option<&str>, name: &str| {
        value
            .map(str::to_owned)
            .ok_or_else(|| backend(what, format!("received a message without {name}"), false))
    };
    let receive_count = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            backend(
                what,
                "received a message without a numeric ApproximateReceiveCount",
                false,
            )
        })?;
    Ok(Delivery {
        message_id: field(message.message_id(), "a message id")?,
        receipt: field(message.receipt_handle(), "a receipt handle")?,
        body: field(message.body(), "a body")?,
        receive_count,
    })
}

/// When a message was first sent, in ms since the epoch (0 if SQS did not say).
fn sent_at(message: &Message) -> u64 {
    message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0)
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        validate_send(body, delay)?;
        let what = format!("SQS queue {}", self.queue_url);
        let out = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(ceil_secs(delay))
            .send()
            .await
            .map_err(|e| sdk_error(&what, e))?;
        out.message_id()
            .map(str::to_owned)
            .ok_or_else(|| backend(&what, "SendMessage returned no message id", false))
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        validate_receive(max, visibility, wait)?;
        let wait = i32::try_from(wait.as_secs()).unwrap_or(20);
        self.receive_from(&self.queue_url, max, ceil_secs(visibility), wait)
            .await
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        if receipt.is_empty() {
            return Err(StoreError::invalid("receipt", "must not be empty"));
        }
        let what = format!("SQS queue {}", self.queue_url);
        match self
            .client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The port's contract: deleting twice or with an older receipt succeeds. SQS
            // itself accepts a stale handle, but one whose message is gone (or has
            // expired) is refused with these codes, which mean just that here.
            Err(e)
                if error_code(&e) == Some("ReceiptHandleIsInvalid")
                    || (error_code(&e) == Some("InvalidParameterValue")
                        && e.as_service_error()
                            .and_then(|s| s.message())
                            .is_some_and(|m| m.to_ascii_lowercase().contains("receipt"))) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(&what, e)),
        }
    }

    async fn dead_letters(&self, max: usize) -> StoreResult<Vec<Delivery>> {
        // Receiving with a zero visibility timeout leaves the messages visible, so this
        // only looks. SQS returns a sample per call: keep asking until `max` distinct
        // messages or a call that brings nothing new.
        let what = format!("SQS queue {}", self.dead_letter_url);
        let mut seen = HashSet::new();
        let mut found: Vec<(u64, Delivery)> = Vec::new();
        while found.len() < max {
            let batch = (max - found.len()).min(MAX_RECEIVE);
            let out = self
                .client
                .receive_message()
                .queue_url(&self.dead_letter_url)
                .max_number_of_messages(i32::try_from(batch).unwrap_or(10))
                .visibility_timeout(0)
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
                .send()
                .await
                .map_err(|e| sdk_error(&what, e))?;
            let mut new = 0;
            for message in out.messages() {
                let delivery = delivery(&what, message)?;
                if seen.insert(delivery.message_id.clone()) {
                    new += 1;
                    found.push((sent_at(message), delivery));
                }
            }
            if new == 0 {
                break;
            }
        }
        found.sort_by(|a, b| (a.0, &a.1.message_id).cmp(&(b.0, &b.1.message_id)));
        found.truncate(max);
        Ok(found.into_iter().map(|(_, d)| d).collect())
    }
}
