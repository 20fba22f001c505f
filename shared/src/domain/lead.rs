//! The `lead/<id>` stream: a person a campaign calls. It records every dial attempt and
//! how it ended, the lead's qualification and whether the lead may be called at all.
//!
//! A lead has at most one attempt in flight; attempts are numbered from 1 so the dialer
//! can make each (lead, attempt) idempotent. A do-not-call lead is never dialled again.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::call::CallStatus;
use super::ids::{CallId, CampaignId};
use super::values::{PhoneNumber, TimeZone};
use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeadStatus {
    #[default]
    New,
    Contacted,
    Qualified,
    MeetingScheduled,
    ClosedWon,
    ClosedLost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Temperature {
    Hot,
    Warm,
    Cold,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LeadEvent {
    LeadCreated {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign_id: Option<CampaignId>,
        phone: PhoneNumber,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<TimeZone>,
        /// Any other columns of the import, usable in greetings and prompts.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        fields: BTreeMap<String, String>,
    },
    DialAttemptStarted {
        attempt: u32,
        call_id: CallId,
    },
    DialAttemptEnded {
        attempt: u32,
        call_id: CallId,
        status: CallStatus,
    },
    LeadQualified {
        temperature: Temperature,
        score: f64,
    },
    LeadStatusChanged {
        status: LeadStatus,
    },
    LeadMarkedDoNotCall {
        reason: String,
    },
    #[serde(other)]
    Unknown,
}

impl DomainEvent for LeadEvent {
    const CATEGORY: &'static str = "lead";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, LeadEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum LeadCommand {
    Create {
        campaign_id: Option<CampaignId>,
        phone: PhoneNumber,
        name: Option<String>,
        time_zone: Option<TimeZone>,
        fields: BTreeMap<String, String>,
    },
    /// Start dial attempt number `attempt` with `call_id`. Repeating the same attempt
    /// with the same call changes nothing, so a redelivered dial job is harmless.
    StartAttempt {
        attempt: u32,
        call_id: CallId,
    },
    /// The attempt's call reached a final status.
    EndAttempt {
        call_id: CallId,
        status: CallStatus,
    },
    Qualify {
        temperature: Temperature,
        score: f64,
    },
    ChangeStatus {
        status: LeadStatus,
    },
    MarkDoNotCall {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LeadError {
    #[error("the lead already exists")]
    AlreadyExists,
    #[error("the lead does not exist")]
    NotFound,
    #[error("the lead is on the do-not-call list")]
    DoNotCall,
    #[error("attempt {in_flight} is still in flight")]
    AttemptInFlight { in_flight: u32 },
    #[error("attempt: expected {expected}, got {got}")]
    WrongAttempt { expected: u32, got: u32 },
    #[error("status: {0:?} is not a final call status")]
    NotFinal(CallStatus),
    #[error("score: {0} is not between 0 and 1")]
    BadScore(f64),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub number: u32,
    pub call_id: CallId,
    pub outcome: Option<CallStatus>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Lead {
    pub exists: bool,
    pub campaign_id: Option<CampaignId>,
    pub phone: Option<PhoneNumber>,
    pub name: Option<String>,
    pub time_zone: Option<TimeZone>,
    pub fields: BTreeMap<String, String>,
    pub status: LeadStatus,
    pub attempts: Vec<Attempt>,
    pub temperature: Option<Temperature>,
    pub score: Option<f64>,
    pub do_not_call: bool,
}

impl Lead {
    pub fn attempt_in_flight(&self) -> Option<&Attempt> {
        self.attempts.last().filter(|a| a.outcome.is_none())
    }
}

impl Aggregate for Lead {
    type Event = LeadEvent;
    type Command = LeadCommand;
    type Error = LeadError;

    fn handle(
        &self,
        command: LeadCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<LeadEvent>, LeadError> {
        if let LeadCommand::Create {
            campaign_id,
            phone,
            name,
            time_zone,
            fields,
        } = command
        {
            if self.exists {
                return Err(LeadError::AlreadyExists);
            }
            return Ok(vec![LeadEvent::LeadCreated {
                campaign_id,
                phone,
                name,
                time_zone,
                fields,
            }]);
        }
        if !self.exists {
            return Err(LeadError::NotFound);
        }
        let event = match command {
            LeadCommand::Create { .. } => unreachable!("handled above"),
            LeadCommand::StartAttempt { attempt, call_id } => {
                if let Some(flight) = self.attempt_in_flight() {
                    if flight.number == attempt && flight.call_id == call_id {
                        return Ok(vec![]);
                    }
                    return Err(LeadError::AttemptInFlight {
                        in_flight: flight.number,
                    });
                }
                if self.do_not_call {
                    return Err(LeadError::DoNotCall);
                }
                let expected = self.attempts.len() as u32 + 1;
                if attempt != expected {
                    return Err(LeadError::WrongAttempt {
                        expected,
                        got: attempt,
                    });
                }
                LeadEvent::DialAttemptStarted { attempt, call_id }
            }
            LeadCommand::EndAttempt { call_id, status } => {
                if !status.is_final() {
                    return Err(LeadError::NotFinal(status));
                }
                // Only the attempt in flight with this call ends; a repeat is a no-op.
                match self.attempt_in_flight() {
                    Some(flight) if flight.call_id == call_id => LeadEvent::DialAttemptEnded {
                        attempt: flight.number,
                        call_id,
                        status,
                    },
                    _ => return Ok(vec![]),
                }
            }
            LeadCommand::Qualify { temperature, score } => {
                if !(0.0..=1.0).contains(&score) {
                    return Err(LeadError::BadScore(score));
                }
                LeadEvent::LeadQualified { temperature, score }
            }
            LeadCommand::ChangeStatus { status } if status == self.status => return Ok(vec![]),
            LeadCommand::ChangeStatus { status } => LeadEvent::LeadStatusChanged { status },
            LeadCommand::MarkDoNotCall { .. } if self.do_not_call => return Ok(vec![]),
            LeadCommand::MarkDoNotCall { reason } => LeadEvent::LeadMarkedDoNotCall { reason },
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &LeadEvent) {
        match event {
            LeadEvent::LeadCreated {
                campaign_id,
                phone,
                name,
                time_zone,
                fields,
            } => {
                self.exists = true;
                self.campaign_id = campaign_id.clone();
                self.phone = Some(phone.clone());
                self.name = name.clone();
                self.time_zone = time_zone.clone();
                self.fields = fields.clone();
            }
            LeadEvent::DialAttemptStarted { attempt, call_id } => self.attempts.push(Attempt {
                number: *attempt,
                call_id: call_id.clone(),
                outcome: None,
            }),
            LeadEvent::DialAttemptEnded {
                attempt, status, ..
            } => {
                if let Some(a) = self.attempts.iter_mut().find(|a| a.number == *attempt) {
                    a.outcome = Some(*status);
                }
            }
            LeadEvent::LeadQualified { temperature, score } => {
                self.temperature = Some(*temperature);
                self.score = Some(*score);
            }
            LeadEvent::LeadStatusChanged { status } => self.status = *status,
            LeadEvent::LeadMarkedDoNotCall { .. } => self.do_not_call = true,
            LeadEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    fn created() -> LeadEvent {
        LeadEvent::LeadCreated {
            campaign_id: Some(CampaignId::new()),
            phone: PhoneNumber::parse("+442071838750").unwrap(),
            name: Some("Tom & \"Jerry\"".into()),
            time_zone: None,
            fields: BTreeMap::from([("budget".into(), "500k".into())]),
        }
    }

    #[test]
    fn attempts_are_numbered_and_one_at_a_time() {
        let call = CallId::new();
        let lead = given::<Lead>(&[created()]);
        assert_eq!(
            when(
                &lead,
                LeadCommand::StartAttempt {
                    attempt: 2,
                    call_id: call.clone()
                }
            ),
            Err(LeadError::WrongAttempt {
                expected: 1,
                got: 2
            })
        );
        let started = LeadEvent::DialAttemptStarted {
            attempt: 1,
            call_id: call.clone(),
        };
        assert_eq!(
            when(
                &lead,
                LeadCommand::StartAttempt {
                    attempt: 1,
                    call_id: call.clone()
                }
            )
            .unwrap(),
            vec![started.clone()]
        );
        let dialling = given::<Lead>(&[created(), started]);
        // The same dial job delivered twice: nothing new.
        assert_eq!(
            when(
                &dialling,
                LeadCommand::StartAttempt {
                    attempt: 1,
                    call_id: call
                }
            )
            .unwrap(),
            vec![]
        );
        assert_eq!(
            when(
                &dialling,
                LeadCommand::StartAttempt {
                    attempt: 2,
                    call_id: CallId::new()
                }
            ),
            Err(LeadError::AttemptInFlight { in_flight: 1 })
        );
    }

    #[test]
    fn an_attempt_ends_once_with_a_final_status() {
        let call = CallId::new();
        let dialling = given::<Lead>(&[
            created(),
            LeadEvent::DialAttemptStarted {
                attempt: 1,
                call_id: call.clone(),
            },
        ]);
        assert_eq!(
            when(
                &dialling,
                LeadCommand::EndAttempt {
                    call_id: call.clone(),
                    status: CallStatus::Ringing
                }
            ),
            Err(LeadError::NotFinal(CallStatus::Ringing))
        );
        let ended = when(
            &dialling,
            LeadCommand::EndAttempt {
                call_id: call.clone(),
                status: CallStatus::Busy,
            },
        )
        .unwrap();
        assert_eq!(
            ended,
            vec![LeadEvent::DialAttemptEnded {
                attempt: 1,
                call_id: call.clone(),
                status: CallStatus::Busy
            }]
        );
        let done = given::<Lead>(&[
            created(),
            LeadEvent::DialAttemptStarted {
                attempt: 1,
                call_id: call.clone(),
            },
            ended[0].clone(),
        ]);
        assert_eq!(done.attempts[0].outcome, Some(CallStatus::Busy));
        assert_eq!(
            when(
                &done,
                LeadCommand::EndAttempt {
                    call_id: call,
                    status: CallStatus::Completed
                }
            )
            .unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_do_not_call_lead_is_never_dialled() {
        let lead = given::<Lead>(&[
            created(),
            LeadEvent::LeadMarkedDoNotCall {
                reason: "asked".into(),
            },
        ]);
        assert_eq!(
            when(
                &lead,
                LeadCommand::StartAttempt {
                    attempt: 1,
                    call_id: CallId::new()
                }
            ),
            Err(LeadError::DoNotCall)
        );
        assert_eq!(
            when(
                &lead,
                LeadCommand::MarkDoNotCall {
                    reason: "again".into()
                }
            )
            .unwrap(),
            vec![]
        );
    }

    #[test]
    fn scores_are_between_zero_and_one() {
        let lead = given::<Lead>(&[created()]);
        assert_eq!(
            when(
                &lead,
                LeadCommand::Qualify {
                    temperature: Temperature::Hot,
                    score: 1.5
                }
            ),
            Err(LeadError::BadScore(1.5))
        );
        assert_eq!(
            when(
                &lead,
                LeadCommand::Qualify {
                    temperature: Temperature::Warm,
                    score: 0.5
                }
            )
            .unwrap(),
            vec![LeadEvent::LeadQualified {
                temperature: Temperature::Warm,
                score: 0.5
            }]
        );
    }
}
