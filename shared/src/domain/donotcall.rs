//! The `do_not_call/<tenant>:<digits>` stream: a number one tenant never calls, whichever
//! campaign it turns up in. Blocking is recorded with a reason (a request on a call, a
//! regulator's list); unblocking is allowed, and both stay in the history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::TenantId;
use super::values::{PhoneNumber, ValueError, name};
use crate::aggregate::Aggregate;
use crate::event::{DomainEvent, StreamId};

/// The stream of `number` on `tenant`'s list.
pub fn stream(tenant: &TenantId, number: &PhoneNumber) -> StreamId {
    StreamId::new(
        "do_not_call",
        &format!("{tenant}:{}", number.as_str().trim_start_matches('+')),
    )
    .unwrap_or_else(|_| unreachable!("a tenant id and E.164 digits are a valid stream id"))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DoNotCallEvent {
    NumberBlocked {
        number: PhoneNumber,
        reason: String,
    },
    NumberUnblocked,
    #[serde(other)]
    Unknown,
}

impl DomainEvent for DoNotCallEvent {
    const CATEGORY: &'static str = "do_not_call";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, DoNotCallEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum DoNotCallCommand {
    Block { number: PhoneNumber, reason: String },
    Unblock,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DoNotCallError {
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct DoNotCall {
    pub number: Option<PhoneNumber>,
    pub blocked: bool,
    pub reason: Option<String>,
}

impl Aggregate for DoNotCall {
    type Event = DoNotCallEvent;
    type Command = DoNotCallCommand;
    type Error = DoNotCallError;

    fn handle(
        &self,
        command: DoNotCallCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<DoNotCallEvent>, DoNotCallError> {
        Ok(match command {
            DoNotCallCommand::Block { .. } if self.blocked => vec![],
            DoNotCallCommand::Block { number, reason } => vec![DoNotCallEvent::NumberBlocked {
                number,
                reason: name("reason", &reason, 500)?,
            }],
            DoNotCallCommand::Unblock if self.blocked => vec![DoNotCallEvent::NumberUnblocked],
            DoNotCallCommand::Unblock => vec![],
        })
    }

    fn apply(&mut self, event: &DoNotCallEvent) {
        match event {
            DoNotCallEvent::NumberBlocked { number, reason } => {
                self.number = Some(number.clone());
                self.blocked = true;
                self.reason = Some(reason.clone());
            }
            DoNotCallEvent::NumberUnblocked => {
                self.blocked = false;
                self.reason = None;
            }
            DoNotCallEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    #[test]
    fn a_number_is_blocked_once_and_can_be_unblocked() {
        let number = PhoneNumber::parse("+14155550100").unwrap();
        let block = DoNotCallCommand::Block {
            number: number.clone(),
            reason: "asked on the call".into(),
        };
        let events = when(&DoNotCall::default(), block.clone()).unwrap();
        let blocked = given::<DoNotCall>(&events);
        assert!(blocked.blocked);
        assert_eq!(when(&blocked, block).unwrap(), vec![]);
        assert_eq!(
            when(&blocked, DoNotCallCommand::Unblock).unwrap(),
            vec![DoNotCallEvent::NumberUnblocked]
        );
        assert_eq!(
            when(&DoNotCall::default(), DoNotCallCommand::Unblock).unwrap(),
            vec![]
        );
        let tenant = TenantId::new();
        assert_eq!(
            stream(&tenant, &number).as_str(),
            format!("do_not_call/{tenant}:14155550100")
        );
    }

    #[test]
    fn a_reason_is_required() {
        let block = DoNotCallCommand::Block {
            number: PhoneNumber::parse("+14155550100").unwrap(),
            reason: " ".into(),
        };
        match when(&DoNotCall::default(), block) {
            Err(DoNotCallError::Invalid(e)) => assert_eq!(e.field, "reason"),
            other => panic!("{other:?}"),
        }
    }
}
