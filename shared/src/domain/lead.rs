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
use crate::qualify::Evidence;

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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
    },
    DialAttemptEnded {
        attempt: u32,
        call_id: CallId,
        status: CallStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<DateTime<Utc>>,
        /// Talk time, as the carrier reported it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u32>,
        /// A machine (voicemail, fax) answered.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        machine: bool,
    },
    /// An attempt reserved but never dialled (the campaign paused, the window closed,
    /// the number went on the do-not-call list first): it does not count, and the
    /// next attempt takes its number.
    DialAttemptWithdrawn {
        attempt: u32,
        call_id: CallId,
        reason: String,
    },
    /// Answering-machine detection's verdict arrived after the attempt had ended.
    DialAttemptMachineAnswered {
        attempt: u32,
        call_id: CallId,
    },
    LeadQualified {
        temperature: Temperature,
        score: f64,
        /// What the caller said that supports each signal.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        evidence: Vec<Evidence>,
    },
    LeadStatusChanged {
        status: LeadStatus,
    },
    /// The lead asked to be called back at `at` (or nobody could take a hand-over):
    /// the lead's next attempt is due then, whatever the retry policy says.
    CallbackRequested {
        at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
    },
    /// What a conversation learnt about the lead (its answers by name: budget,
    /// timeline, ...). Later calls' answers replace earlier ones of the same name.
    DetailsCaptured {
        call_id: CallId,
        details: BTreeMap<String, String>,
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
    /// The attempt's call reached a final status. Repeats change nothing, except that a
    /// machine verdict heard only after the end is recorded.
    EndAttempt {
        call_id: CallId,
        status: CallStatus,
        duration_secs: Option<u32>,
        machine: bool,
    },
    /// Takes back the attempt in flight on `call_id`, which was never dialled.
    WithdrawAttempt {
        call_id: CallId,
        reason: String,
    },
    Qualify {
        temperature: Temperature,
        score: f64,
        evidence: Vec<Evidence>,
    },
    ChangeStatus {
        status: LeadStatus,
    },
    /// Call the lead back at `at`; the latest request counts.
    RequestCallback {
        at: DateTime<Utc>,
        call_id: Option<CallId>,
    },
    CaptureDetails {
        call_id: CallId,
        details: BTreeMap<String, String>,
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
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub duration_secs: Option<u32>,
    pub machine: bool,
}

impl Attempt {
    /// A person picked up: the call completed and no machine answered.
    pub fn answered(&self) -> bool {
        self.outcome == Some(CallStatus::Completed) && !self.machine
    }
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
    /// A callback asked for and not yet dialled.
    pub callback_at: Option<DateTime<Utc>>,
    /// What conversations learnt about the lead, by name.
    pub details: BTreeMap<String, String>,
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
        now: DateTime<Utc>,
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
                LeadEvent::DialAttemptStarted {
                    attempt,
                    call_id,
                    at: Some(now),
                }
            }
            LeadCommand::EndAttempt {
                call_id,
                status,
                duration_secs,
                machine,
            } => {
                if !status.is_final() {
                    return Err(LeadError::NotFinal(status));
                }
                // Only the attempt in flight with this call ends; a repeat is a no-op.
                match self.attempt_in_flight() {
                    Some(flight) if flight.call_id == call_id => {
                        let ended = LeadEvent::DialAttemptEnded {
                            attempt: flight.number,
                            call_id,
                            status,
                            at: Some(now),
                            duration_secs,
                            machine,
                        };
                        let person = status == CallStatus::Completed && !machine;
                        if person && self.status == LeadStatus::New {
                            return Ok(vec![
                                ended,
                                LeadEvent::LeadStatusChanged {
                                    status: LeadStatus::Contacted,
                                },
                            ]);
                        }
                        ended
                    }
                    _ => {
                        let late_machine = self
                            .attempts
                            .iter()
                            .find(|a| a.call_id == call_id && a.outcome.is_some());
                        match late_machine {
                            Some(a) if machine && !a.machine => {
                                LeadEvent::DialAttemptMachineAnswered {
                                    attempt: a.number,
                                    call_id,
                                }
                            }
                            _ => return Ok(vec![]),
                        }
                    }
                }
            }
            LeadCommand::WithdrawAttempt { call_id, reason } => match self.attempt_in_flight() {
                Some(flight) if flight.call_id == call_id => LeadEvent::DialAttemptWithdrawn {
                    attempt: flight.number,
                    call_id,
                    reason,
                },
                _ => return Ok(vec![]),
            },
            LeadCommand::Qualify {
                temperature,
                score,
                evidence,
            } => {
                if !(0.0..=1.0).contains(&score) {
                    return Err(LeadError::BadScore(score));
                }
                LeadEvent::LeadQualified {
                    temperature,
                    score,
                    evidence,
                }
            }
            LeadCommand::ChangeStatus { status } if status == self.status => return Ok(vec![]),
            LeadCommand::ChangeStatus { status } => LeadEvent::LeadStatusChanged { status },
            LeadCommand::RequestCallback { .. } if self.do_not_call => {
                return Err(LeadError::DoNotCall);
            }
            LeadCommand::RequestCallback { at, call_id } => {
                LeadEvent::CallbackRequested { at, call_id }
            }
            LeadCommand::CaptureDetails { details, .. } if details.is_empty() => {
                return Ok(vec![]);
            }
            LeadCommand::CaptureDetails { call_id, details } => {
                LeadEvent::DetailsCaptured { call_id, details }
            }
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
            LeadEvent::DialAttemptStarted {
                attempt,
                call_id,
                at,
            } => {
                // The callback asked for is this attempt.
                self.callback_at = None;
                self.attempts.push(Attempt {
                    number: *attempt,
                    call_id: call_id.clone(),
                    outcome: None,
                    started_at: *at,
                    ended_at: None,
                    duration_secs: None,
                    machine: false,
                })
            }
            LeadEvent::DialAttemptEnded {
                attempt,
                status,
                at,
                duration_secs,
                machine,
                ..
            } => {
                if let Some(a) = self.attempts.iter_mut().find(|a| a.number == *attempt) {
                    a.outcome = Some(*status);
                    a.ended_at = *at;
                    a.duration_secs = *duration_secs;
                    a.machine = *machine;
                }
            }
            LeadEvent::DialAttemptWithdrawn { attempt, .. } => {
                self.attempts.retain(|a| a.number != *attempt);
            }
            LeadEvent::DialAttemptMachineAnswered { attempt, .. } => {
                if let Some(a) = self.attempts.iter_mut().find(|a| a.number == *attempt) {
                    a.machine = true;
                }
            }
            LeadEvent::LeadQualified {
                temperature, score, ..
            } => {
                self.temperature = Some(*temperature);
                self.score = Some(*score);
            }
            LeadEvent::LeadStatusChanged { status } => self.status = *status,
            LeadEvent::CallbackRequested { at, .. } => self.callback_at = Some(*at),
            LeadEvent::DetailsCaptured { details, .. } => {
                for (name, value) in details {
                    self.details.insert(name.clone(), value.clone());
                }
            }
            LeadEvent::LeadMarkedDoNotCall { .. } => self.do_not_call = true,
            LeadEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, now, when};

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
            at: Some(now()),
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
                at: Some(now()),
            },
        ]);
        assert_eq!(
            when(
                &dialling,
                LeadCommand::EndAttempt {
                    call_id: call.clone(),
                    status: CallStatus::Ringing,
                    duration_secs: None,
                    machine: false,
                }
            ),
            Err(LeadError::NotFinal(CallStatus::Ringing))
        );
        let ended = when(
            &dialling,
            LeadCommand::EndAttempt {
                call_id: call.clone(),
                status: CallStatus::Busy,
                duration_secs: None,
                machine: false,
            },
        )
        .unwrap();
        assert_eq!(
            ended,
            vec![LeadEvent::DialAttemptEnded {
                attempt: 1,
                call_id: call.clone(),
                status: CallStatus::Busy,
                at: Some(now()),
                duration_secs: None,
                machine: false,
            }]
        );
        let done = given::<Lead>(&[
            created(),
            LeadEvent::DialAttemptStarted {
                attempt: 1,
                call_id: call.clone(),
                at: Some(now()),
            },
            ended[0].clone(),
        ]);
        assert_eq!(done.attempts[0].outcome, Some(CallStatus::Busy));
        assert_eq!(
            when(
                &done,
                LeadCommand::EndAttempt {
                    call_id: call,
                    status: CallStatus::Completed,
                    duration_secs: Some(30),
                    machine: false,
                }
            )
            .unwrap(),
            vec![]
        );
    }

    fn dialling(call: &CallId) -> Vec<LeadEvent> {
        vec![
            created(),
            LeadEvent::DialAttemptStarted {
                attempt: 1,
                call_id: call.clone(),
                at: Some(now()),
            },
        ]
    }

    #[test]
    fn a_person_answering_makes_a_new_lead_contacted() {
        let call = CallId::new();
        let lead = given::<Lead>(&dialling(&call));
        let events = when(
            &lead,
            LeadCommand::EndAttempt {
                call_id: call.clone(),
                status: CallStatus::Completed,
                duration_secs: Some(95),
                machine: false,
            },
        )
        .unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(
            events[1],
            LeadEvent::LeadStatusChanged {
                status: LeadStatus::Contacted
            }
        );
        let mut history = dialling(&call);
        history.extend(events);
        let done = given::<Lead>(&history);
        assert!(done.attempts[0].answered());
        assert_eq!(done.attempts[0].duration_secs, Some(95));
        // A machine answering does not make the lead contacted.
        let machine = when(
            &lead,
            LeadCommand::EndAttempt {
                call_id: call,
                status: CallStatus::Completed,
                duration_secs: Some(20),
                machine: true,
            },
        )
        .unwrap();
        assert_eq!(machine.len(), 1);
    }

    #[test]
    fn a_machine_verdict_after_the_end_is_recorded_once() {
        let call = CallId::new();
        let mut history = dialling(&call);
        let end = |machine| LeadCommand::EndAttempt {
            call_id: call.clone(),
            status: CallStatus::Completed,
            duration_secs: Some(12),
            machine,
        };
        history.extend(when(&given::<Lead>(&history), end(false)).unwrap());
        let late = when(&given::<Lead>(&history), end(true)).unwrap();
        assert_eq!(
            late,
            vec![LeadEvent::DialAttemptMachineAnswered {
                attempt: 1,
                call_id: call.clone()
            }]
        );
        history.extend(late);
        let lead = given::<Lead>(&history);
        assert!(lead.attempts[0].machine && !lead.attempts[0].answered());
        assert_eq!(when(&lead, end(true)).unwrap(), vec![]);
    }

    #[test]
    fn a_withdrawn_attempt_frees_its_number() {
        let call = CallId::new();
        let mut history = dialling(&call);
        let lead = given::<Lead>(&history);
        // Only the attempt in flight on that call can be withdrawn.
        assert_eq!(
            when(
                &lead,
                LeadCommand::WithdrawAttempt {
                    call_id: CallId::new(),
                    reason: "paused".into()
                }
            )
            .unwrap(),
            vec![]
        );
        history.extend(
            when(
                &lead,
                LeadCommand::WithdrawAttempt {
                    call_id: call.clone(),
                    reason: "paused".into(),
                },
            )
            .unwrap(),
        );
        let lead = given::<Lead>(&history);
        assert!(lead.attempts.is_empty());
        assert_eq!(
            when(
                &lead,
                LeadCommand::StartAttempt {
                    attempt: 1,
                    call_id: call
                }
            )
            .unwrap()
            .len(),
            1
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
    fn qualification_keeps_its_evidence_and_older_events_still_read() {
        use crate::qualify::{Evidence, Signal};
        let evidence = vec![Evidence {
            signal: Signal::Budget,
            words: "about five hundred thousand".into(),
            value: Some("500000".into()),
        }];
        let event = LeadEvent::LeadQualified {
            temperature: Temperature::Hot,
            score: 0.8,
            evidence: evidence.clone(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["evidence"][0]["words"], "about five hundred thousand");
        assert_eq!(serde_json::from_value::<LeadEvent>(json).unwrap(), event);
        // Written before evidence was kept.
        let old =
            serde_json::json!({"type": "lead_qualified", "temperature": "warm", "score": 0.5});
        assert_eq!(
            serde_json::from_value::<LeadEvent>(old).unwrap(),
            LeadEvent::LeadQualified {
                temperature: Temperature::Warm,
                score: 0.5,
                evidence: vec![],
            }
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
                    score: 1.5,
                    evidence: vec![],
                }
            ),
            Err(LeadError::BadScore(1.5))
        );
        assert_eq!(
            when(
                &lead,
                LeadCommand::Qualify {
                    temperature: Temperature::Warm,
                    score: 0.5,
                    evidence: vec![],
                }
            )
            .unwrap(),
            vec![LeadEvent::LeadQualified {
                temperature: Temperature::Warm,
                score: 0.5,
                evidence: vec![],
            }]
        );
    }

    #[test]
    fn callbacks_and_captured_details_are_kept_until_dialled_or_replaced() {
        let call_id = CallId::new();
        let at = chrono::DateTime::parse_from_rfc3339("2026-01-15T16:00:00Z")
            .unwrap()
            .to_utc();
        let lead = given::<Lead>(&[created()]);
        let asked = when(
            &lead,
            LeadCommand::RequestCallback {
                at,
                call_id: Some(call_id.clone()),
            },
        )
        .unwrap();
        let details = BTreeMap::from([("budget".to_owned(), "500000 USD".to_owned())]);
        let captured = when(
            &lead,
            LeadCommand::CaptureDetails {
                call_id: call_id.clone(),
                details,
            },
        )
        .unwrap();
        // Nothing learnt is nothing to write.
        assert_eq!(
            when(
                &lead,
                LeadCommand::CaptureDetails {
                    call_id: call_id.clone(),
                    details: BTreeMap::new()
                }
            ),
            Ok(vec![])
        );
        let mut history = vec![created()];
        history.extend(asked);
        history.extend(captured);
        history.push(LeadEvent::DetailsCaptured {
            call_id: call_id.clone(),
            details: BTreeMap::from([
                ("budget".to_owned(), "600000 USD".to_owned()),
                ("timeline".to_owned(), "this month".to_owned()),
            ]),
        });
        let lead = given::<Lead>(&history);
        assert_eq!(lead.callback_at, Some(at));
        assert_eq!(lead.details["budget"], "600000 USD");
        assert_eq!(lead.details["timeline"], "this month");
        history.push(LeadEvent::DialAttemptStarted {
            attempt: 1,
            call_id: CallId::new(),
            at: Some(at),
        });
        assert_eq!(given::<Lead>(&history).callback_at, None);
        history.push(LeadEvent::LeadMarkedDoNotCall {
            reason: "asked".into(),
        });
        assert_eq!(
            when(
                &given::<Lead>(&history),
                LeadCommand::RequestCallback { at, call_id: None }
            ),
            Err(LeadError::DoNotCall)
        );
    }
}
