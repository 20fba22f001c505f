//! The `dial_job/<message id>` stream: a dial job the dialer could not use (garbage, a
//! lead that does not exist, ids that do not belong together). The reason is recorded
//! once, and the message goes on to the dead-letter queue, so that an operator reading
//! either learns why.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aggregate::Aggregate;
use crate::event::{DomainEvent, StreamId};

/// The stream of the message `message_id`; `None` for an id no stream can carry.
pub fn stream(message_id: &str) -> Option<StreamId> {
    StreamId::new("dial_job", message_id).ok()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DialJobEvent {
    DialJobRejected {
        reason: String,
        /// The start of the message body (ids only: a dial job holds no personal data).
        body: String,
    },
    #[serde(other)]
    Unknown,
}

impl DomainEvent for DialJobEvent {
    const CATEGORY: &'static str = "dial_job";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, DialJobEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DialJobCommand {
    Reject { reason: String, body: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialJobError {}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DialJob {
    pub rejected: Option<String>,
}

impl Aggregate for DialJob {
    type Event = DialJobEvent;
    type Command = DialJobCommand;
    type Error = DialJobError;

    fn handle(
        &self,
        command: DialJobCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<DialJobEvent>, DialJobError> {
        let DialJobCommand::Reject { reason, body } = command;
        if self.rejected.is_some() {
            // Every delivery of a poison message fails the same way: say it once.
            return Ok(vec![]);
        }
        let body: String = body.chars().take(500).collect();
        Ok(vec![DialJobEvent::DialJobRejected { reason, body }])
    }

    fn apply(&mut self, event: &DialJobEvent) {
        if let DialJobEvent::DialJobRejected { reason, .. } = event {
            self.rejected = Some(reason.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    #[test]
    fn a_rejection_is_recorded_once_and_cut_short() {
        let reject = DialJobCommand::Reject {
            reason: "body: not JSON".into(),
            body: "x".repeat(2000),
        };
        let events = when(&DialJob::default(), reject.clone()).unwrap();
        match &events[0] {
            DialJobEvent::DialJobRejected { body, .. } => assert_eq!(body.len(), 500),
            other => panic!("{other:?}"),
        }
        assert_eq!(when(&given::<DialJob>(&events), reject).unwrap(), vec![]);
    }
}
