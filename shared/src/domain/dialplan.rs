//! When a campaign's lead is called next, if ever: the campaign engine's rules, pure.
//!
//! A lead is due for its first call as soon as its calling window is open. After a
//! call, the retry policy says how long to wait by how the call ended; a retry that
//! would fall outside the window moves to the next opening. A lead is resolved when a
//! person answered, when its attempts are used up, when its outcome is not retried, or
//! when it may not be called at all.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::call::CallStatus;
use super::campaign::CampaignSettings;
use super::ids::CallId;
use super::lead::{Lead, LeadStatus};

/// Why a lead is called no more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// A person answered.
    Answered,
    /// A machine answered and the policy does not retry voicemail.
    Voicemail,
    /// The call failed and the policy does not retry failures.
    Failed,
    /// Every attempt the policy allows was made.
    Exhausted,
    /// The lead, or its number, is on a do-not-call list.
    DoNotCall,
    /// Someone closed the lead (won or lost) before the campaign reached it.
    Closed,
}

/// What the campaign does with a lead next.
#[derive(Clone, Debug, PartialEq)]
pub enum Dial {
    /// Attempt `attempt` may start at `at` (the window is open then).
    Due {
        attempt: u32,
        at: DateTime<Utc>,
    },
    /// Attempt `attempt` is reserved or ringing; nothing starts until it ends.
    InFlight {
        attempt: u32,
        call_id: CallId,
        since: Option<DateTime<Utc>>,
    },
    Resolved(Resolution),
}

impl Dial {
    pub fn is_resolved(&self) -> bool {
        matches!(self, Dial::Resolved(_))
    }
}

/// The time zone a lead is called in: its own when it has one, else the campaign's.
pub fn lead_zone(lead: &Lead, settings: &CampaignSettings) -> Tz {
    lead.time_zone.as_ref().unwrap_or(&settings.time_zone).tz()
}

/// The lead's next step under `settings`. `now` stands in for times the lead's history
/// lacks (a lead never called is due from now, within its window).
pub fn plan(lead: &Lead, settings: &CampaignSettings, now: DateTime<Utc>) -> Dial {
    if lead.do_not_call {
        return match lead.attempt_in_flight() {
            // A reserved attempt still has to end (or be withdrawn) first.
            Some(a) => in_flight(a),
            None => Dial::Resolved(Resolution::DoNotCall),
        };
    }
    if let Some(a) = lead.attempt_in_flight() {
        return in_flight(a);
    }
    if matches!(lead.status, LeadStatus::ClosedWon | LeadStatus::ClosedLost) {
        return Dial::Resolved(Resolution::Closed);
    }
    let retry = &settings.retry;
    let earliest = match (lead.callback_at, lead.attempts.last()) {
        // The lead asked for this call: no retry rule stands in its way.
        (Some(at), _) => at,
        (None, None) => now,
        (None, Some(last)) => {
            if last.answered() {
                return Dial::Resolved(Resolution::Answered);
            }
            let wait = match last.outcome {
                Some(CallStatus::Completed) if retry.retry_voicemail => {
                    Some(retry.no_answer_after_minutes)
                }
                Some(CallStatus::Completed) => return Dial::Resolved(Resolution::Voicemail),
                Some(CallStatus::NoAnswer) => Some(retry.no_answer_after_minutes),
                Some(CallStatus::Busy) => Some(retry.busy_after_minutes),
                _ => retry.failed_after_minutes,
            };
            let Some(wait) = wait else {
                return Dial::Resolved(Resolution::Failed);
            };
            if lead.attempts.len() as u32 >= retry.max_attempts {
                return Dial::Resolved(Resolution::Exhausted);
            }
            last.ended_at.unwrap_or(now) + Duration::minutes(i64::from(wait))
        }
    };
    let attempt = lead.attempts.len() as u32 + 1;
    let window = &settings.calling_window;
    let zone = lead_zone(lead, settings);
    // Due since an opening that has closed again: due at the next one instead, so that
    // the scheduler does not look at the lead all night.
    let at = window.next_open(zone, earliest).and_then(|at| {
        match at < now && !window.contains(zone, now) {
            true => window.next_open(zone, now),
            false => Some(at),
        }
    });
    match at {
        Some(at) => Dial::Due { attempt, at },
        // A window that never opens (wholly inside a skipped hour) calls nobody.
        None => Dial::Resolved(Resolution::Exhausted),
    }
}

fn in_flight(a: &super::lead::Attempt) -> Dial {
    Dial::InFlight {
        attempt: a.number,
        call_id: a.call_id.clone(),
        since: a.started_at,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone as _;

    use super::*;
    use crate::domain::campaign::CallingWindow;
    use crate::domain::lead::LeadEvent;
    use crate::domain::testing::given;
    use crate::domain::{AgentId, CampaignId, PhoneNumber, TimeZone};

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn settings(zone: &str) -> CampaignSettings {
        serde_json::from_value(serde_json::json!({
            "name": "Spring",
            "agent_id": AgentId::new(),
            "time_zone": zone,
        }))
        .unwrap()
    }

    fn lead(zone: Option<&str>, history: Vec<LeadEvent>) -> Lead {
        let mut events = vec![LeadEvent::LeadCreated {
            campaign_id: Some(CampaignId::new()),
            phone: PhoneNumber::parse("+12125550100").unwrap(),
            name: None,
            time_zone: zone.map(|z| TimeZone::parse(z).unwrap()),
            fields: BTreeMap::new(),
        }];
        events.extend(history);
        given::<Lead>(&events)
    }

    fn called(n: u32, status: CallStatus, ended: DateTime<Utc>, machine: bool) -> Vec<LeadEvent> {
        let call_id = CallId::new();
        vec![
            LeadEvent::DialAttemptStarted {
                attempt: n,
                call_id: call_id.clone(),
                at: Some(ended - Duration::minutes(1)),
            },
            LeadEvent::DialAttemptEnded {
                attempt: n,
                call_id,
                status,
                at: Some(ended),
                duration_secs: Some(30),
                machine,
            },
        ]
    }

    #[test]
    fn the_window_is_read_in_local_time_and_skips_closed_days() {
        let w = CallingWindow::default();
        let ny = chrono_tz::America::New_York;
        // Wednesday 2026-01-14 09:59 in New York (14:59 UTC): opens at 10:00.
        assert_eq!(
            w.next_open(ny, utc(2026, 1, 14, 14, 59)),
            Some(utc(2026, 1, 14, 15, 0))
        );
        assert!(w.contains(ny, utc(2026, 1, 14, 15, 0)));
        // 19:00 is closed: the end is not in the window.
        assert!(!w.contains(ny, utc(2026, 1, 15, 0, 0)));
        // Saturday 19:30 → Monday 10:00 (Sunday is not a calling day).
        assert_eq!(
            w.next_open(ny, utc(2026, 1, 18, 0, 30)),
            Some(utc(2026, 1, 19, 15, 0))
        );
    }

    #[test]
    fn daylight_saving_moves_the_opening_in_utc() {
        let w = CallingWindow::default();
        let london = chrono_tz::Europe::London;
        // Saturday 28 March 2026 is still GMT: 10:00 local is 10:00 UTC.
        assert_eq!(
            w.next_open(london, utc(2026, 3, 28, 5, 0)),
            Some(utc(2026, 3, 28, 10, 0))
        );
        // Monday 30 March is BST: 10:00 local is 09:00 UTC.
        assert_eq!(
            w.next_open(london, utc(2026, 3, 28, 20, 0)),
            Some(utc(2026, 3, 30, 9, 0))
        );
        // A window opening inside the skipped hour opens when the clock resumes.
        let mut early = w.clone();
        early.start = chrono::NaiveTime::from_hms_opt(1, 30, 0).unwrap();
        early
            .days
            .push(crate::domain::campaign::WeekdayName::Sunday);
        assert_eq!(
            early.next_open(london, utc(2026, 3, 29, 0, 10)),
            Some(utc(2026, 3, 29, 1, 0))
        );
    }

    #[test]
    fn a_callback_the_lead_asked_for_is_due_then_whatever_the_retry_policy_says() {
        let s = settings("America/New_York");
        let ended = utc(2026, 1, 14, 16, 0);
        // A person answered: resolved, until they ask to be called back.
        let mut history = called(1, CallStatus::Completed, ended, false);
        assert_eq!(
            plan(&lead(None, history.clone()), &s, ended),
            Dial::Resolved(Resolution::Answered)
        );
        let asked = |at| LeadEvent::CallbackRequested { at, call_id: None };
        // Tomorrow at 11:00 New York (16:00 UTC), inside the window.
        history.push(asked(utc(2026, 1, 15, 16, 0)));
        assert_eq!(
            plan(&lead(None, history.clone()), &s, ended),
            Dial::Due {
                attempt: 2,
                at: utc(2026, 1, 15, 16, 0)
            }
        );
        // At 20:00 New York the window is shut: the callback waits for its opening.
        let mut late = history.clone();
        late.push(asked(utc(2026, 1, 16, 1, 0)));
        assert_eq!(
            plan(&lead(None, late), &s, ended),
            Dial::Due {
                attempt: 2,
                at: utc(2026, 1, 16, 15, 0)
            }
        );
        // Every attempt the policy allows is used up: the lead's own request still counts.
        let mut s1 = s.clone();
        s1.retry.max_attempts = 1;
        assert!(matches!(
            plan(&lead(None, history.clone()), &s1, ended),
            Dial::Due { attempt: 2, .. }
        ));
        // Dialling the callback is the request answered: after it, the policy again.
        history.extend(called(
            2,
            CallStatus::Completed,
            utc(2026, 1, 15, 16, 5),
            false,
        ));
        assert_eq!(
            plan(&lead(None, history.clone()), &s, ended),
            Dial::Resolved(Resolution::Answered)
        );
        // A lead that may not be called is not called back.
        history.push(asked(utc(2026, 1, 20, 16, 0)));
        history.push(LeadEvent::LeadMarkedDoNotCall {
            reason: "asked".into(),
        });
        assert_eq!(
            plan(&lead(None, history), &s, ended),
            Dial::Resolved(Resolution::DoNotCall)
        );
    }

    #[test]
    fn a_new_lead_is_due_when_its_own_window_opens() {
        let s = settings("America/New_York");
        // 16:00 UTC: 11:00 in New York (open), 08:00 in Los Angeles (not yet).
        let now = utc(2026, 1, 14, 16, 0);
        assert_eq!(
            plan(&lead(None, vec![]), &s, now),
            Dial::Due {
                attempt: 1,
                at: now
            }
        );
        assert_eq!(
            plan(&lead(Some("America/Los_Angeles"), vec![]), &s, now),
            Dial::Due {
                attempt: 1,
                at: utc(2026, 1, 14, 18, 0)
            }
        );
    }

    #[test]
    fn retries_wait_by_outcome_and_move_to_the_next_opening() {
        let s = settings("UTC");
        let ended = utc(2026, 1, 14, 12, 0);
        // Due since the policy's time, however late the scheduler asks while the
        // window is open...
        let no_answer = lead(None, called(1, CallStatus::NoAnswer, ended, false));
        assert_eq!(
            plan(&no_answer, &s, utc(2026, 1, 14, 18, 0)),
            Dial::Due {
                attempt: 2,
                at: utc(2026, 1, 14, 14, 0)
            }
        );
        // ...and from the next opening once it has closed again.
        assert_eq!(
            plan(&no_answer, &s, utc(2026, 1, 14, 20, 0)),
            Dial::Due {
                attempt: 2,
                at: utc(2026, 1, 15, 10, 0)
            }
        );
        let at = |history| match plan(&lead(None, history), &s, ended) {
            Dial::Due { at, .. } => at,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            at(called(1, CallStatus::NoAnswer, ended, false)),
            utc(2026, 1, 14, 14, 0)
        );
        assert_eq!(
            at(called(1, CallStatus::Busy, ended, false)),
            utc(2026, 1, 14, 16, 0)
        );
        // Busy at 17:00 would retry at 21:00, after the window: next morning at 10:00.
        assert_eq!(
            at(called(1, CallStatus::Busy, utc(2026, 1, 14, 17, 0), false)),
            utc(2026, 1, 15, 10, 0)
        );
        // Voicemail retries like no answer, by default.
        assert_eq!(
            at(called(1, CallStatus::Completed, ended, true)),
            utc(2026, 1, 14, 14, 0)
        );
    }

    #[test]
    fn leads_resolve_by_policy() {
        let s = settings("UTC");
        let t = utc(2026, 1, 14, 12, 0);
        let resolved = |history, s: &CampaignSettings| plan(&lead(None, history), s, t);
        assert_eq!(
            resolved(called(1, CallStatus::Completed, t, false), &s),
            Dial::Resolved(Resolution::Answered)
        );
        assert_eq!(
            resolved(called(1, CallStatus::Failed, t, false), &s),
            Dial::Resolved(Resolution::Failed)
        );
        let mut no_voicemail = s.clone();
        no_voicemail.retry.retry_voicemail = false;
        assert_eq!(
            resolved(called(1, CallStatus::Completed, t, true), &no_voicemail),
            Dial::Resolved(Resolution::Voicemail)
        );
        let mut three = called(1, CallStatus::NoAnswer, t, false);
        three.extend(called(2, CallStatus::Busy, t, false));
        three.extend(called(3, CallStatus::NoAnswer, t, false));
        assert_eq!(resolved(three, &s), Dial::Resolved(Resolution::Exhausted));
        let dnc = vec![LeadEvent::LeadMarkedDoNotCall {
            reason: "asked".into(),
        }];
        assert_eq!(resolved(dnc, &s), Dial::Resolved(Resolution::DoNotCall));
    }

    #[test]
    fn an_attempt_in_flight_holds_the_lead() {
        let s = settings("UTC");
        let call_id = CallId::new();
        let t = utc(2026, 1, 14, 12, 0);
        let history = vec![LeadEvent::DialAttemptStarted {
            attempt: 1,
            call_id: call_id.clone(),
            at: Some(t),
        }];
        assert_eq!(
            plan(&lead(None, history), &s, t),
            Dial::InFlight {
                attempt: 1,
                call_id,
                since: Some(t)
            }
        );
    }
}
