//! The `appointment/<id>` stream: a meeting the agent booked with a lead.

use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ids::{AgentId, CallId, LeadId};
use super::values::{ValueError, name};
use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

/// How long a booked meeting may be, in minutes: a flow's `book` action is checked
/// against the same range.
pub const DURATION_MINUTES: RangeInclusive<u32> = 5..=480;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MeetingKind {
    InPerson,
    Phone,
    Video,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AppointmentEvent {
    AppointmentBooked {
        lead_id: LeadId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_id: Option<CallId>,
        /// The agent whose time the meeting takes; absent in events written before
        /// appointments named their agent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent_id: Option<AgentId>,
        title: String,
        starts_at: DateTime<Utc>,
        duration_minutes: u32,
        kind: MeetingKind,
    },
    AppointmentRescheduled {
        starts_at: DateTime<Utc>,
    },
    AppointmentCancelled {
        reason: String,
    },
    #[serde(other)]
    Unknown,
}

impl DomainEvent for AppointmentEvent {
    const CATEGORY: &'static str = "appointment";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, AppointmentEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AppointmentCommand {
    Book {
        lead_id: LeadId,
        call_id: Option<CallId>,
        /// The agent whose time the meeting takes, when one does.
        agent_id: Option<AgentId>,
        title: String,
        starts_at: DateTime<Utc>,
        duration_minutes: u32,
        kind: MeetingKind,
    },
    Reschedule {
        starts_at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppointmentError {
    #[error("the appointment already exists")]
    AlreadyExists,
    #[error("the appointment does not exist")]
    NotFound,
    #[error("starts_at: {0} is in the past")]
    InThePast(DateTime<Utc>),
    #[error(
        "duration_minutes: {0} is not between {min} and {max}",
        min = DURATION_MINUTES.start(),
        max = DURATION_MINUTES.end()
    )]
    BadDuration(u32),
    #[error("the appointment was cancelled")]
    Cancelled,
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Appointment {
    pub exists: bool,
    pub lead_id: Option<LeadId>,
    pub call_id: Option<CallId>,
    pub agent_id: Option<AgentId>,
    pub title: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub duration_minutes: u32,
    pub kind: Option<MeetingKind>,
    pub cancelled: bool,
    /// Why it was cancelled, once it was.
    pub cancel_reason: Option<String>,
    /// How many times it moved since it was booked.
    pub reschedules: u32,
}

impl Appointment {
    /// When the meeting ends: its start plus its length.
    pub fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.starts_at
            .map(|at| at + chrono::Duration::minutes(i64::from(self.duration_minutes)))
    }
}

impl Aggregate for Appointment {
    type Event = AppointmentEvent;
    type Command = AppointmentCommand;
    type Error = AppointmentError;

    fn handle(
        &self,
        command: AppointmentCommand,
        now: DateTime<Utc>,
    ) -> Result<Vec<AppointmentEvent>, AppointmentError> {
        let future = |at: DateTime<Utc>| {
            if at <= now {
                Err(AppointmentError::InThePast(at))
            } else {
                Ok(at)
            }
        };
        match command {
            AppointmentCommand::Book {
                lead_id,
                call_id,
                agent_id,
                title,
                starts_at,
                duration_minutes,
                kind,
            } => {
                if self.exists {
                    return Err(AppointmentError::AlreadyExists);
                }
                if !DURATION_MINUTES.contains(&duration_minutes) {
                    return Err(AppointmentError::BadDuration(duration_minutes));
                }
                Ok(vec![AppointmentEvent::AppointmentBooked {
                    lead_id,
                    call_id,
                    agent_id,
                    title: name("title", &title, 200)?,
                    starts_at: future(starts_at)?,
                    duration_minutes,
                    kind,
                }])
            }
            _ if !self.exists => Err(AppointmentError::NotFound),
            AppointmentCommand::Cancel { .. } if self.cancelled => Ok(vec![]),
            _ if self.cancelled => Err(AppointmentError::Cancelled),
            AppointmentCommand::Reschedule { starts_at } if Some(starts_at) == self.starts_at => {
                Ok(vec![])
            }
            AppointmentCommand::Reschedule { starts_at } => {
                Ok(vec![AppointmentEvent::AppointmentRescheduled {
                    starts_at: future(starts_at)?,
                }])
            }
            AppointmentCommand::Cancel { reason } => {
                Ok(vec![AppointmentEvent::AppointmentCancelled {
                    reason: name("reason", &reason, 500)?,
                }])
            }
        }
    }

    fn apply(&mut self, event: &AppointmentEvent) {
        match event {
            AppointmentEvent::AppointmentBooked {
                lead_id,
                call_id,
                agent_id,
                title,
                starts_at,
                duration_minutes,
                kind,
            } => {
                self.exists = true;
                self.lead_id = Some(lead_id.clone());
                self.call_id = call_id.clone();
                self.agent_id = agent_id.clone();
                self.title = title.clone();
                self.starts_at = Some(*starts_at);
                self.duration_minutes = *duration_minutes;
                self.kind = Some(*kind);
            }
            AppointmentEvent::AppointmentRescheduled { starts_at } => {
                self.starts_at = Some(*starts_at);
                self.reschedules += 1;
            }
            AppointmentEvent::AppointmentCancelled { reason } => {
                self.cancelled = true;
                self.cancel_reason = Some(reason.clone());
            }
            AppointmentEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::domain::testing::{given, now, when};

    fn book(starts_at: DateTime<Utc>, duration_minutes: u32) -> AppointmentCommand {
        AppointmentCommand::Book {
            lead_id: LeadId::new(),
            call_id: None,
            agent_id: None,
            title: "Viewing at 12 Elm St".into(),
            starts_at,
            duration_minutes,
            kind: MeetingKind::InPerson,
        }
    }

    #[test]
    fn bookings_must_be_in_the_future_and_of_sane_length() {
        let past = now() - Duration::minutes(1);
        assert_eq!(
            when(&Appointment::default(), book(past, 30)),
            Err(AppointmentError::InThePast(past))
        );
        let soon = now() + Duration::hours(2);
        assert_eq!(
            when(&Appointment::default(), book(soon, 2)),
            Err(AppointmentError::BadDuration(2))
        );
        assert_eq!(
            when(&Appointment::default(), book(soon, 30)).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_cancelled_appointment_cannot_move() {
        let soon = now() + Duration::hours(2);
        let booked = when(&Appointment::default(), book(soon, 30)).unwrap();
        let cancelled = given::<Appointment>(&[
            booked[0].clone(),
            AppointmentEvent::AppointmentCancelled {
                reason: "no longer needed".into(),
            },
        ]);
        assert_eq!(
            when(
                &cancelled,
                AppointmentCommand::Reschedule {
                    starts_at: soon + Duration::days(1)
                }
            ),
            Err(AppointmentError::Cancelled)
        );
        assert_eq!(
            when(
                &cancelled,
                AppointmentCommand::Cancel {
                    reason: "again".into()
                }
            )
            .unwrap(),
            vec![]
        );
    }

    #[test]
    fn bookings_name_their_agent_and_older_events_still_read() {
        let agent = AgentId::new();
        let mut command = book(now() + Duration::hours(2), 30);
        if let AppointmentCommand::Book { agent_id, .. } = &mut command {
            *agent_id = Some(agent.clone());
        }
        let booked = when(&Appointment::default(), command).unwrap();
        let json = serde_json::to_value(&booked[0]).unwrap();
        assert_eq!(json["agent_id"], serde_json::json!(agent));
        assert_eq!(given::<Appointment>(&booked).agent_id, Some(agent));

        // Written before bookings named an agent: no field, and none is written back.
        let old = serde_json::json!({
            "type": "appointment_booked",
            "lead_id": LeadId::new(),
            "title": "Viewing",
            "starts_at": "2031-01-20T14:00:00Z",
            "duration_minutes": 30,
            "kind": "phone",
        });
        let event: AppointmentEvent = serde_json::from_value(old).unwrap();
        assert!(matches!(
            &event,
            AppointmentEvent::AppointmentBooked { agent_id: None, .. }
        ));
        assert!(
            serde_json::to_value(&event)
                .unwrap()
                .get("agent_id")
                .is_none()
        );
    }

    #[test]
    fn the_state_counts_moves_and_keeps_why_it_was_cancelled() {
        let soon = now() + Duration::hours(2);
        let mut events = when(&Appointment::default(), book(soon, 45)).unwrap();
        events.push(AppointmentEvent::AppointmentRescheduled {
            starts_at: soon + Duration::hours(1),
        });
        events.push(AppointmentEvent::AppointmentCancelled {
            reason: "the caller called back".into(),
        });
        let state = given::<Appointment>(&events);
        assert_eq!(state.reschedules, 1);
        assert_eq!(state.ends_at(), Some(soon + Duration::minutes(105)));
        assert_eq!(
            state.cancel_reason.as_deref(),
            Some("the caller called back")
        );
    }

    #[test]
    fn rescheduling_to_the_past_is_refused() {
        let soon = now() + Duration::hours(2);
        let booked = given::<Appointment>(&when(&Appointment::default(), book(soon, 30)).unwrap());
        assert!(matches!(
            when(
                &booked,
                AppointmentCommand::Reschedule {
                    starts_at: now() - Duration::hours(1)
                }
            ),
            Err(AppointmentError::InThePast(_))
        ));
        assert_eq!(
            when(&booked, AppointmentCommand::Reschedule { starts_at: soon }).unwrap(),
            vec![]
        );
    }
}
