//! The `call/<id>` stream: one phone call from the moment Parley places or answers it to
//! its final carrier status.
//!
//! Carrier status callbacks arrive late, twice and out of order. A call's status only
//! ever moves forward (queued → initiated → ringing → in progress → a final status) and
//! the first final status wins, so a replayed or late callback decides nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{AgentId, AppointmentId, CampaignId, LeadId};
use super::values::PhoneNumber;
use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Inbound,
    Outbound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carrier {
    Twilio,
    Exotel,
    /// The local stack's simulated carrier.
    Simulated,
}

/// Twilio's call statuses; Exotel's map onto them at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStatus {
    Requested,
    Queued,
    Initiated,
    Ringing,
    InProgress,
    Completed,
    Busy,
    NoAnswer,
    Failed,
    Canceled,
}

impl CallStatus {
    /// How far along a call is; a status never replaces one of a higher stage.
    fn stage(self) -> u8 {
        match self {
            CallStatus::Requested => 0,
            CallStatus::Queued => 1,
            CallStatus::Initiated => 2,
            CallStatus::Ringing => 3,
            CallStatus::InProgress => 4,
            CallStatus::Completed
            | CallStatus::Busy
            | CallStatus::NoAnswer
            | CallStatus::Failed
            | CallStatus::Canceled => 5,
        }
    }

    pub fn is_final(self) -> bool {
        self.stage() == 5
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    CallRequested {
        direction: Direction,
        carrier: Carrier,
        from: PhoneNumber,
        to: PhoneNumber,
        agent_id: AgentId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lead_id: Option<LeadId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        campaign_id: Option<CampaignId>,
        /// Which dial attempt of the lead this is (1 for the first); 0 for inbound.
        #[serde(default)]
        attempt: u32,
    },
    /// The carrier's own id for the call (Twilio's `CallSid`).
    CarrierCallAssigned { carrier_call_id: String },
    CallStatusChanged {
        status: CallStatus,
        /// Talk time in seconds, reported with the final status.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u32>,
        /// When the carrier says it happened (it may differ from when we heard).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        carrier_time: Option<DateTime<Utc>>,
    },
    /// The carrier refused to place the call (an invalid or unreachable number, say).
    /// The message is the carrier's, for the people reading the call's history.
    CarrierRejected {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<u32>,
        message: String,
    },
    /// Answering-machine detection's verdict.
    AnsweringMachineDetected { answered_by: AnsweredBy },
    /// A recording of the call (or a voicemail) is stored at the carrier.
    RecordingAvailable {
        recording_id: String,
        url: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_secs: Option<u32>,
    },
    /// The media task admitted the call's audio stream.
    MediaStreamStarted { stream_id: String },
    /// The caller talked over the agent, `at_ms` into the stream; what had not played
    /// was dropped.
    CallerBargedIn { at_ms: u64 },
    /// The conversation called a tool. Its arguments and result are in the transcript
    /// (they may hold personal data); the history keeps the name and the outcome.
    ToolCalled { name: String, ok: bool },
    /// The conversation asked for the caller to be handed to a person (`warm` or
    /// `cold`, and why); the call's carrier side dials the human once the stream ends.
    TransferRequested { mode: String, reason: String },
    /// The carrier side dialled the agent's escalation number `index` (0 first) for
    /// the requested hand-over; `answered` says whether a person took the call.
    TransferDialled { index: u32, answered: bool },
    /// A confirmation (`sms` or `whatsapp`) was queued for delivery to the lead.
    ConfirmationQueued {
        channel: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        appointment_id: Option<AppointmentId>,
    },
    /// What the call came to, and a short summary of it for the people reading its
    /// history (written once the conversation is over).
    OutcomeClassified {
        outcome: CallOutcome,
        summary: String,
    },
    /// The stream ended. `turns` counts the caller's turns; the words are in the
    /// transcript, not here, so the event log holds no more personal data than it must.
    MediaStreamEnded {
        reason: String,
        duration_ms: u64,
        turns: u32,
    },
    /// The conversation's transcript, stored under `key` in the blob store.
    TranscriptStored { key: String, turns: u32 },
    /// Parley's own stereo recording (caller left, agent right), stored under `key`.
    CallRecordingStored {
        key: String,
        duration_ms: u64,
        bytes: u64,
    },
    /// A type this build does not know (written by a newer Parley): skipped.
    #[serde(other)]
    Unknown,
}

/// What a call came to, from the business's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOutcome {
    /// The lead was qualified (hot, warm or cold) and nothing more came of the call.
    Qualified,
    AppointmentSet,
    CallbackRequested,
    NotInterested,
    /// A machine answered.
    Voicemail,
    WrongNumber,
    /// The caller was handed to a person (or asked for one).
    Escalated,
    /// The caller gave the feedback the call asked for (a guest-relations call that
    /// came to its end, where nothing was to be sold or booked).
    FeedbackGiven,
    /// The conversation ended before it came to anything.
    Incomplete,
}

/// Who or what answered, as Twilio's answering-machine detection reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnsweredBy {
    Human,
    MachineStart,
    MachineEndBeep,
    MachineEndSilence,
    MachineEndOther,
    Fax,
    Unknown,
}

impl AnsweredBy {
    pub fn is_machine(self) -> bool {
        matches!(
            self,
            AnsweredBy::MachineStart
                | AnsweredBy::MachineEndBeep
                | AnsweredBy::MachineEndSilence
                | AnsweredBy::MachineEndOther
                | AnsweredBy::Fax
        )
    }
}

impl DomainEvent for CallEvent {
    const CATEGORY: &'static str = "call";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, CallEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CallCommand {
    Request {
        direction: Direction,
        carrier: Carrier,
        from: PhoneNumber,
        to: PhoneNumber,
        agent_id: AgentId,
        lead_id: Option<LeadId>,
        campaign_id: Option<CampaignId>,
        attempt: u32,
    },
    AssignCarrierCallId {
        carrier_call_id: String,
    },
    /// A status from the carrier, in whatever order it arrives.
    RecordStatus {
        status: CallStatus,
        duration_secs: Option<u32>,
        carrier_time: Option<DateTime<Utc>>,
    },
    /// The carrier refused the call: it failed before it began.
    RecordCarrierRejection {
        code: Option<u32>,
        message: String,
    },
    /// The first verdict counts; repeats change nothing.
    RecordAnsweredBy {
        answered_by: AnsweredBy,
    },
    /// Each recording once, by its id.
    RecordRecording {
        recording_id: String,
        url: String,
        duration_secs: Option<u32>,
    },
    /// What the media task saw of the conversation; each fact once.
    RecordMedia(CallEvent),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("the call already exists")]
    AlreadyExists,
    #[error("the call does not exist")]
    NotFound,
    #[error("the call already has carrier id {0}")]
    CarrierIdTaken(String),
    #[error("carrier_call_id: must be 1 to 64 characters")]
    BadCarrierId,
    #[error("status: {0:?} is set by Parley, not reported by a carrier")]
    NotACarrierStatus(CallStatus),
    #[error("{0}: not a media fact")]
    NotAMediaFact(&'static str),
}

/// A call as its events tell it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Call {
    pub exists: bool,
    pub direction: Option<Direction>,
    pub carrier: Option<Carrier>,
    pub to: Option<PhoneNumber>,
    pub from: Option<PhoneNumber>,
    pub agent_id: Option<AgentId>,
    pub lead_id: Option<LeadId>,
    pub campaign_id: Option<CampaignId>,
    pub attempt: u32,
    pub carrier_call_id: Option<String>,
    pub status: Option<CallStatus>,
    pub duration_secs: Option<u32>,
    pub answered_by: Option<AnsweredBy>,
    /// Why the carrier refused the call, if it did.
    pub rejection: Option<String>,
    /// Recording ids and where the carrier keeps them.
    pub recordings: Vec<(String, String)>,
    /// Media streams admitted, by the carrier's stream id.
    pub media_streams: Vec<String>,
    /// The media stream ended (its facts are all in).
    pub media_ended: bool,
    /// Blob keys of Parley's own recording and transcript.
    pub stored: Vec<String>,
    /// Where Parley's own recording of the call is, in the blob store.
    pub recording_key: Option<String>,
    /// Where the conversation's transcript is, in the blob store.
    pub transcript_key: Option<String>,
    /// The conversation asked for a person: the last request's mode and reason.
    pub transfer: Option<TransferRequest>,
    /// Escalation numbers dialled for the hand-over, in order, and whether each
    /// answered.
    pub transfer_dials: Vec<(u32, bool)>,
    /// What the call came to, once classified, and its summary.
    pub outcome: Option<CallOutcome>,
    pub summary: Option<String>,
}

/// A hand-over to a person the conversation asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransferRequest {
    /// `warm` or `cold`.
    pub mode: String,
    pub reason: String,
}

impl Aggregate for Call {
    type Event = CallEvent;
    type Command = CallCommand;
    type Error = CallError;

    fn handle(
        &self,
        command: CallCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<CallEvent>, CallError> {
        match command {
            CallCommand::Request {
                direction,
                carrier,
                from,
                to,
                agent_id,
                lead_id,
                campaign_id,
                attempt,
            } => {
                if self.exists {
                    return Err(CallError::AlreadyExists);
                }
                Ok(vec![CallEvent::CallRequested {
                    direction,
                    carrier,
                    from,
                    to,
                    agent_id,
                    lead_id,
                    campaign_id,
                    attempt,
                }])
            }
            CallCommand::AssignCarrierCallId { carrier_call_id } => {
                if !self.exists {
                    return Err(CallError::NotFound);
                }
                if carrier_call_id.is_empty() || carrier_call_id.len() > 64 {
                    return Err(CallError::BadCarrierId);
                }
                match &self.carrier_call_id {
                    Some(existing) if *existing == carrier_call_id => Ok(vec![]),
                    Some(existing) => Err(CallError::CarrierIdTaken(existing.clone())),
                    None => Ok(vec![CallEvent::CarrierCallAssigned { carrier_call_id }]),
                }
            }
            CallCommand::RecordStatus {
                status,
                duration_secs,
                carrier_time,
            } => {
                if !self.exists {
                    return Err(CallError::NotFound);
                }
                if status == CallStatus::Requested {
                    return Err(CallError::NotACarrierStatus(status));
                }
                let current = self.status.unwrap_or(CallStatus::Requested);
                // Late, repeated, or after the end: a fact we already know better.
                if current.is_final() || status.stage() <= current.stage() {
                    return Ok(vec![]);
                }
                Ok(vec![CallEvent::CallStatusChanged {
                    status,
                    duration_secs,
                    carrier_time,
                }])
            }
            CallCommand::RecordCarrierRejection { .. } if !self.exists => Err(CallError::NotFound),
            CallCommand::RecordCarrierRejection { .. }
                if self
                    .status
                    .is_some_and(|s| s.stage() > CallStatus::Requested.stage()) =>
            {
                // The carrier already reported on this call: its own statuses rule.
                Ok(vec![])
            }
            CallCommand::RecordCarrierRejection { code, message } => Ok(vec![
                CallEvent::CarrierRejected {
                    code,
                    message: message.chars().take(500).collect(),
                },
                CallEvent::CallStatusChanged {
                    status: CallStatus::Failed,
                    duration_secs: None,
                    carrier_time: None,
                },
            ]),
            CallCommand::RecordAnsweredBy { .. } if !self.exists => Err(CallError::NotFound),
            CallCommand::RecordAnsweredBy { .. } if self.answered_by.is_some() => Ok(vec![]),
            CallCommand::RecordAnsweredBy { answered_by } => {
                Ok(vec![CallEvent::AnsweringMachineDetected { answered_by }])
            }
            CallCommand::RecordRecording { .. } if !self.exists => Err(CallError::NotFound),
            CallCommand::RecordRecording { recording_id, .. }
                if self.recordings.iter().any(|(id, _)| *id == recording_id) =>
            {
                Ok(vec![])
            }
            CallCommand::RecordRecording {
                recording_id,
                url,
                duration_secs,
            } => Ok(vec![CallEvent::RecordingAvailable {
                recording_id,
                url,
                duration_secs,
            }]),
            CallCommand::RecordMedia(_) if !self.exists => Err(CallError::NotFound),
            CallCommand::RecordMedia(fact) => self.media_fact(fact),
        }
    }

    fn apply(&mut self, event: &CallEvent) {
        match event {
            CallEvent::CallRequested {
                direction,
                carrier,
                from,
                to,
                agent_id,
                lead_id,
                campaign_id,
                attempt,
            } => {
                self.exists = true;
                self.direction = Some(*direction);
                self.carrier = Some(*carrier);
                self.from = Some(from.clone());
                self.to = Some(to.clone());
                self.agent_id = Some(agent_id.clone());
                self.lead_id = lead_id.clone();
                self.campaign_id = campaign_id.clone();
                self.attempt = *attempt;
                self.status = Some(CallStatus::Requested);
            }
            CallEvent::CarrierCallAssigned { carrier_call_id } => {
                self.carrier_call_id = Some(carrier_call_id.clone());
            }
            CallEvent::CallStatusChanged {
                status,
                duration_secs,
                ..
            } => {
                self.status = Some(*status);
                if duration_secs.is_some() {
                    self.duration_secs = *duration_secs;
                }
            }
            CallEvent::CarrierRejected { message, .. } => self.rejection = Some(message.clone()),
            CallEvent::AnsweringMachineDetected { answered_by } => {
                self.answered_by = Some(*answered_by)
            }
            CallEvent::RecordingAvailable {
                recording_id, url, ..
            } => {
                self.recordings.push((recording_id.clone(), url.clone()));
            }
            CallEvent::MediaStreamStarted { stream_id } => {
                self.media_streams.push(stream_id.clone())
            }
            CallEvent::MediaStreamEnded { .. } => self.media_ended = true,
            CallEvent::TranscriptStored { key, .. } => {
                self.stored.push(key.clone());
                self.transcript_key = Some(key.clone());
            }
            CallEvent::CallRecordingStored { key, .. } => {
                self.stored.push(key.clone());
                self.recording_key = Some(key.clone());
            }
            CallEvent::TransferRequested { mode, reason } => {
                self.transfer = Some(TransferRequest {
                    mode: mode.clone(),
                    reason: reason.clone(),
                });
            }
            CallEvent::TransferDialled { index, answered } => {
                self.transfer_dials.push((*index, *answered))
            }
            CallEvent::OutcomeClassified { outcome, summary } => {
                self.outcome = Some(*outcome);
                self.summary = Some(summary.clone());
            }
            CallEvent::CallerBargedIn { .. }
            | CallEvent::ToolCalled { .. }
            | CallEvent::ConfirmationQueued { .. } => {}
            CallEvent::Unknown => {}
        }
    }
}

impl Call {
    /// A media fact once: a repeated start or end (a retried write) changes nothing,
    /// and nothing but end-of-call records follows the end.
    fn media_fact(&self, fact: CallEvent) -> Result<Vec<CallEvent>, CallError> {
        let fresh = match &fact {
            CallEvent::MediaStreamStarted { stream_id } => !self.media_streams.contains(stream_id),
            CallEvent::CallerBargedIn { .. }
            | CallEvent::ToolCalled { .. }
            | CallEvent::ConfirmationQueued { .. }
            | CallEvent::TransferRequested { .. } => !self.media_ended,
            // Each dial of the hand-over once (a redelivered callback changes nothing).
            CallEvent::TransferDialled { index, .. } => {
                !self.transfer_dials.iter().any(|(i, _)| i == index)
            }
            // The first verdict stands.
            CallEvent::OutcomeClassified { .. } => self.outcome.is_none(),
            CallEvent::MediaStreamEnded { .. } => !self.media_ended,
            CallEvent::TranscriptStored { key, .. }
            | CallEvent::CallRecordingStored { key, .. } => !self.stored.contains(key),
            _ => return Err(CallError::NotAMediaFact("event")),
        };
        Ok(if fresh { vec![fact] } else { vec![] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    fn requested() -> CallEvent {
        CallEvent::CallRequested {
            direction: Direction::Outbound,
            carrier: Carrier::Twilio,
            from: PhoneNumber::parse("+14155550100").unwrap(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            agent_id: AgentId::new(),
            lead_id: Some(LeadId::new()),
            campaign_id: Some(CampaignId::new()),
            attempt: 1,
        }
    }

    fn status(status: CallStatus) -> CallCommand {
        CallCommand::RecordStatus {
            status,
            duration_secs: None,
            carrier_time: None,
        }
    }

    fn changed(status: CallStatus) -> CallEvent {
        CallEvent::CallStatusChanged {
            status,
            duration_secs: None,
            carrier_time: None,
        }
    }

    #[test]
    fn statuses_move_forward() {
        let events = when(&given::<Call>(&[requested()]), status(CallStatus::Ringing)).unwrap();
        assert_eq!(events, vec![changed(CallStatus::Ringing)]);
    }

    #[test]
    fn a_completed_call_never_rings_again() {
        let call = given::<Call>(&[
            requested(),
            changed(CallStatus::Ringing),
            changed(CallStatus::InProgress),
            changed(CallStatus::Completed),
        ]);
        for late in [
            CallStatus::Ringing,
            CallStatus::InProgress,
            CallStatus::Busy,
            CallStatus::Completed,
        ] {
            assert_eq!(when(&call, status(late)).unwrap(), vec![], "{late:?}");
        }
        assert_eq!(call.status, Some(CallStatus::Completed));
    }

    #[test]
    fn a_late_status_does_not_move_a_call_backwards() {
        let call = given::<Call>(&[requested(), changed(CallStatus::InProgress)]);
        assert_eq!(when(&call, status(CallStatus::Ringing)).unwrap(), vec![]);
        assert_eq!(when(&call, status(CallStatus::Initiated)).unwrap(), vec![]);
        assert_eq!(when(&call, status(CallStatus::InProgress)).unwrap(), vec![]);
        // Skipping stages is fine: a callback can be lost.
        assert_eq!(
            when(
                &given::<Call>(&[requested()]),
                status(CallStatus::Completed)
            )
            .unwrap(),
            vec![changed(CallStatus::Completed)]
        );
    }

    #[test]
    fn the_final_status_carries_the_duration() {
        let mut call = given::<Call>(&[requested(), changed(CallStatus::InProgress)]);
        let events = when(
            &call,
            CallCommand::RecordStatus {
                status: CallStatus::Completed,
                duration_secs: Some(42),
                carrier_time: None,
            },
        )
        .unwrap();
        events.iter().for_each(|e| call.apply(e));
        assert_eq!(call.duration_secs, Some(42));
        assert!(call.status.unwrap().is_final());
    }

    #[test]
    fn commands_on_a_missing_call_are_refused() {
        let none = Call::default();
        assert_eq!(
            when(&none, status(CallStatus::Ringing)),
            Err(CallError::NotFound)
        );
        let call = given::<Call>(&[requested()]);
        assert_eq!(
            when(
                &call,
                CallCommand::Request {
                    direction: Direction::Inbound,
                    carrier: Carrier::Twilio,
                    from: PhoneNumber::parse("+14155550100").unwrap(),
                    to: PhoneNumber::parse("+14155550123").unwrap(),
                    agent_id: AgentId::new(),
                    lead_id: None,
                    campaign_id: None,
                    attempt: 0,
                }
            ),
            Err(CallError::AlreadyExists)
        );
        assert_eq!(
            when(&call, status(CallStatus::Requested)),
            Err(CallError::NotACarrierStatus(CallStatus::Requested))
        );
    }

    #[test]
    fn the_carrier_id_is_set_once() {
        let call = given::<Call>(&[
            requested(),
            CallEvent::CarrierCallAssigned {
                carrier_call_id: "CA1".into(),
            },
        ]);
        let same = CallCommand::AssignCarrierCallId {
            carrier_call_id: "CA1".into(),
        };
        assert_eq!(when(&call, same).unwrap(), vec![]);
        let other = CallCommand::AssignCarrierCallId {
            carrier_call_id: "CA2".into(),
        };
        assert_eq!(
            when(&call, other),
            Err(CallError::CarrierIdTaken("CA1".into()))
        );
    }

    #[test]
    fn the_first_machine_verdict_and_each_recording_count_once() {
        let call = given::<Call>(&[
            requested(),
            CallEvent::AnsweringMachineDetected {
                answered_by: AnsweredBy::MachineEndBeep,
            },
            CallEvent::RecordingAvailable {
                recording_id: "RE1".into(),
                url: "https://api.twilio.com/RE1".into(),
                duration_secs: Some(12),
            },
        ]);
        assert!(call.answered_by.unwrap().is_machine());
        let again = CallCommand::RecordAnsweredBy {
            answered_by: AnsweredBy::Human,
        };
        assert_eq!(when(&call, again).unwrap(), vec![]);
        let same = CallCommand::RecordRecording {
            recording_id: "RE1".into(),
            url: "x".into(),
            duration_secs: None,
        };
        assert_eq!(when(&call, same).unwrap(), vec![]);
        let other = CallCommand::RecordRecording {
            recording_id: "RE2".into(),
            url: "x".into(),
            duration_secs: None,
        };
        assert_eq!(when(&call, other).unwrap().len(), 1);
    }

    #[test]
    fn a_carrier_rejection_fails_the_call_unless_the_carrier_spoke_first() {
        let rejected = when(
            &given::<Call>(&[requested()]),
            CallCommand::RecordCarrierRejection {
                code: Some(21211),
                message: "The 'To' number is not a valid phone number.".into(),
            },
        )
        .unwrap();
        let call = given::<Call>(&[vec![requested()], rejected].concat());
        assert_eq!(call.status, Some(CallStatus::Failed));
        assert!(call.rejection.unwrap().contains("not a valid"));
        let ringing = given::<Call>(&[requested(), changed(CallStatus::Ringing)]);
        let late = CallCommand::RecordCarrierRejection {
            code: None,
            message: "timeout".into(),
        };
        assert_eq!(when(&ringing, late).unwrap(), vec![]);
    }

    #[test]
    fn events_keep_their_wire_names() {
        let json = serde_json::to_value(changed(CallStatus::NoAnswer)).unwrap();
        assert_eq!(json["type"], "call_status_changed");
        assert_eq!(json["status"], "no_answer");
        let unknown: CallEvent =
            serde_json::from_value(serde_json::json!({"type": "call_teleported", "to": "mars"}))
                .unwrap();
        assert!(unknown.is_unknown());
    }

    #[test]
    fn a_transfer_request_keeps_its_wire_name_and_is_folded_into_the_call() {
        let asked = CallEvent::TransferRequested {
            mode: "warm".into(),
            reason: "asked_for_human".into(),
        };
        let json = serde_json::to_value(&asked).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"type": "transfer_requested", "mode": "warm", "reason": "asked_for_human"})
        );
        assert_eq!(serde_json::from_value::<CallEvent>(json).unwrap(), asked);
        let call = given::<Call>(&[requested()]);
        assert_eq!(
            when(&call, CallCommand::RecordMedia(asked.clone())).unwrap(),
            vec![asked.clone()]
        );
        let call = given::<Call>(&[requested(), asked.clone()]);
        assert_eq!(
            call.transfer,
            Some(TransferRequest {
                mode: "warm".into(),
                reason: "asked_for_human".into()
            })
        );
        let ended = CallEvent::MediaStreamEnded {
            reason: "agent_ended".into(),
            duration_ms: 1,
            turns: 1,
        };
        let over = given::<Call>(&[requested(), ended]);
        assert_eq!(
            when(&over, CallCommand::RecordMedia(asked)).unwrap(),
            vec![]
        );
    }

    #[test]
    fn media_facts_are_recorded_once_and_nothing_of_the_stream_follows_its_end() {
        let started = CallEvent::MediaStreamStarted {
            stream_id: "MZ1".into(),
        };
        let call = given::<Call>(&[requested()]);
        assert_eq!(
            when(&call, CallCommand::RecordMedia(started.clone())).unwrap(),
            vec![started.clone()]
        );
        let ended = CallEvent::MediaStreamEnded {
            reason: "caller_hung_up".into(),
            duration_ms: 5_000,
            turns: 2,
        };
        let call = given::<Call>(&[requested(), started.clone(), ended.clone()]);
        assert_eq!(
            when(&call, CallCommand::RecordMedia(started)).unwrap(),
            vec![]
        );
        assert_eq!(
            when(&call, CallCommand::RecordMedia(ended)).unwrap(),
            vec![]
        );
        let barge = CallEvent::CallerBargedIn { at_ms: 1 };
        assert_eq!(
            when(&call, CallCommand::RecordMedia(barge)).unwrap(),
            vec![]
        );
        let stored = CallEvent::TranscriptStored {
            key: "transcripts/t/c.json".into(),
            turns: 2,
        };
        assert_eq!(
            when(&call, CallCommand::RecordMedia(stored.clone())).unwrap(),
            vec![stored.clone()]
        );
        let call = given::<Call>(&[requested(), stored.clone()]);
        assert_eq!(
            when(&call, CallCommand::RecordMedia(stored)).unwrap(),
            vec![]
        );
        assert_eq!(
            when(
                &given::<Call>(&[]),
                CallCommand::RecordMedia(CallEvent::ToolCalled {
                    name: "x".into(),
                    ok: true
                })
            ),
            Err(CallError::NotFound)
        );
        assert!(matches!(
            when(
                &call,
                CallCommand::RecordMedia(CallEvent::AnsweringMachineDetected {
                    answered_by: AnsweredBy::Human
                })
            ),
            Err(CallError::NotAMediaFact(_))
        ));
    }

    #[test]
    fn a_calls_outcome_and_each_hand_over_dial_are_recorded_once() {
        let ended = CallEvent::MediaStreamEnded {
            reason: "agent_ended".into(),
            duration_ms: 9_000,
            turns: 3,
        };
        let call = given::<Call>(&[requested(), ended.clone()]);
        let outcome = |outcome| {
            CallCommand::RecordMedia(CallEvent::OutcomeClassified {
                outcome,
                summary: "s".into(),
            })
        };
        // The outcome is written after the stream's end.
        let first = when(&call, outcome(CallOutcome::Escalated)).unwrap();
        assert_eq!(first.len(), 1);
        let dial = |index, answered| {
            CallCommand::RecordMedia(CallEvent::TransferDialled { index, answered })
        };
        let dialled = when(&call, dial(0, false)).unwrap();
        let mut history = vec![requested(), ended];
        history.extend(first);
        history.extend(dialled);
        let call = given::<Call>(&history);
        assert_eq!(call.outcome, Some(CallOutcome::Escalated));
        assert_eq!(when(&call, outcome(CallOutcome::Incomplete)), Ok(vec![]));
        assert_eq!(when(&call, dial(0, true)), Ok(vec![]));
        assert_eq!(
            when(&call, dial(1, true)),
            Ok(vec![CallEvent::TransferDialled {
                index: 1,
                answered: true
            }])
        );
    }
}
