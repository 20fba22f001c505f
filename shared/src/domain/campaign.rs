//! The `campaign/<id>` stream: an outbound campaign's life.
//!
//! DRAFT → RUNNING ⇄ PAUSED → COMPLETED. A campaign starts only with leads; pausing
//! stops new dials at once (calls in progress finish); a completed campaign is closed
//! for good.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, NaiveTime, TimeZone as _, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::ids::AgentId;
use super::values::{TimeZone, ValueError, name};
use crate::aggregate::Aggregate;
use crate::event::DomainEvent;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    #[default]
    Draft,
    Running,
    Paused,
    Completed,
}

/// When leads may be called: local times on some weekdays, in the lead's time zone when
/// it has one, else the campaign's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingWindow {
    #[serde(default = "CallingWindow::default_start")]
    pub start: NaiveTime,
    #[serde(default = "CallingWindow::default_end")]
    pub end: NaiveTime,
    #[serde(default = "CallingWindow::default_days")]
    pub days: Vec<WeekdayName>,
}

impl CallingWindow {
    fn default_start() -> NaiveTime {
        NaiveTime::from_hms_opt(10, 0, 0).unwrap_or_default()
    }
    fn default_end() -> NaiveTime {
        NaiveTime::from_hms_opt(19, 0, 0).unwrap_or_default()
    }
    fn default_days() -> Vec<WeekdayName> {
        use WeekdayName::*;
        vec![Monday, Tuesday, Wednesday, Thursday, Friday, Saturday]
    }
}

impl CallingWindow {
    /// Whether `at` falls inside the window, in `tz`'s local time.
    pub fn contains(&self, tz: Tz, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&tz);
        self.days.contains(&WeekdayName::from(local.weekday()))
            && self.start <= local.time()
            && local.time() < self.end
    }

    /// The first instant at or after `at` inside the window, in `tz`: `at` itself when
    /// it is inside, else the next opening. Openings that daylight saving skips begin
    /// when the local clock resumes. `None` only if no day in the next two weeks has an
    /// opening (a window that lies wholly in a skipped hour).
    pub fn next_open(&self, tz: Tz, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.contains(tz, at) {
            return Some(at);
        }
        let today = at.with_timezone(&tz).date_naive();
        for offset in 0..15 {
            let day = today + Duration::days(offset);
            if !self.days.contains(&WeekdayName::from(day.weekday())) {
                continue;
            }
            let (Some(open), Some(close)) = (
                first_instant(tz, day.and_time(self.start)),
                first_instant(tz, day.and_time(self.end)),
            ) else {
                continue;
            };
            if open < close && at < close {
                let candidate = open.max(at);
                if self.contains(tz, candidate) {
                    return Some(candidate);
                }
            }
        }
        None
    }
}

/// The first instant whose local time in `tz` is `local` or, when daylight saving skips
/// `local`, the first instant after the gap.
fn first_instant(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Gaps are at most a few hours; step a minute at a time across one.
    for minutes in 0..=(4 * 60) {
        let probe = local + Duration::minutes(minutes);
        if let Some(instant) = tz.from_local_datetime(&probe).earliest() {
            return Some(instant.with_timezone(&Utc));
        }
    }
    None
}

impl From<Weekday> for WeekdayName {
    fn from(day: Weekday) -> Self {
        match day {
            Weekday::Mon => WeekdayName::Monday,
            Weekday::Tue => WeekdayName::Tuesday,
            Weekday::Wed => WeekdayName::Wednesday,
            Weekday::Thu => WeekdayName::Thursday,
            Weekday::Fri => WeekdayName::Friday,
            Weekday::Sat => WeekdayName::Saturday,
            Weekday::Sun => WeekdayName::Sunday,
        }
    }
}

impl Default for CallingWindow {
    fn default() -> Self {
        CallingWindow {
            start: Self::default_start(),
            end: Self::default_end(),
            days: Self::default_days(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeekdayName {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// When a lead is called again, by how its last call ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    #[serde(default = "RetryPolicy::default_attempts")]
    pub max_attempts: u32,
    #[serde(default = "RetryPolicy::default_no_answer")]
    pub no_answer_after_minutes: u32,
    #[serde(default = "RetryPolicy::default_busy")]
    pub busy_after_minutes: u32,
    /// `None`: a failed call is not retried.
    #[serde(default)]
    pub failed_after_minutes: Option<u32>,
    /// Whether a call a machine answered counts as not answered (and is retried).
    #[serde(default = "RetryPolicy::default_true")]
    pub retry_voicemail: bool,
}

impl RetryPolicy {
    fn default_attempts() -> u32 {
        3
    }
    fn default_no_answer() -> u32 {
        120
    }
    fn default_busy() -> u32 {
        240
    }
    fn default_true() -> bool {
        true
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: Self::default_attempts(),
            no_answer_after_minutes: Self::default_no_answer(),
            busy_after_minutes: Self::default_busy(),
            failed_after_minutes: None,
            retry_voicemail: true,
        }
    }
}

/// What a call a machine answers does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Voicemail {
    #[default]
    HangUp,
    LeaveMessage {
        message: String,
    },
}

/// Everything a campaign is configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignSettings {
    pub name: String,
    pub agent_id: AgentId,
    pub time_zone: TimeZone,
    #[serde(default)]
    pub calling_window: CallingWindow,
    #[serde(default = "CampaignSettings::default_concurrency")]
    pub max_concurrent_calls: u32,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub voicemail: Voicemail,
}

impl CampaignSettings {
    fn default_concurrency() -> u32 {
        10
    }

    /// Checks every field, naming the first that is wrong.
    pub fn validated(mut self) -> Result<Self, ValueError> {
        self.name = name("name", &self.name, 200)?;
        let bad = |field: &'static str, reason: &str| ValueError {
            field,
            reason: reason.into(),
        };
        if self.calling_window.end <= self.calling_window.start {
            return Err(bad(
                "calling_window.end",
                "must be after calling_window.start",
            ));
        }
        if self.calling_window.days.is_empty() {
            return Err(bad("calling_window.days", "must name at least one day"));
        }
        if !(1..=500).contains(&self.max_concurrent_calls) {
            return Err(bad("max_concurrent_calls", "must be 1 to 500"));
        }
        if !(1..=20).contains(&self.retry.max_attempts) {
            return Err(bad("retry.max_attempts", "must be 1 to 20"));
        }
        let week = 7 * 24 * 60;
        if self.retry.no_answer_after_minutes == 0 || self.retry.no_answer_after_minutes > week {
            return Err(bad(
                "retry.no_answer_after_minutes",
                "must be 1 minute to 7 days",
            ));
        }
        if self.retry.busy_after_minutes == 0 || self.retry.busy_after_minutes > week {
            return Err(bad(
                "retry.busy_after_minutes",
                "must be 1 minute to 7 days",
            ));
        }
        if self
            .retry
            .failed_after_minutes
            .is_some_and(|m| m == 0 || m > week)
        {
            return Err(bad(
                "retry.failed_after_minutes",
                "must be 1 minute to 7 days",
            ));
        }
        if let Voicemail::LeaveMessage { message } = &self.voicemail {
            name("voicemail.message", message, 1000)?;
        }
        Ok(self)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CampaignEvent {
    CampaignCreated {
        settings: CampaignSettings,
    },
    /// The whole new settings.
    CampaignSettingsChanged {
        settings: CampaignSettings,
    },
    /// Leads were imported into the campaign (the leads themselves are lead streams).
    LeadsAdded {
        count: u32,
    },
    CampaignStarted,
    CampaignPaused,
    CampaignResumed,
    CampaignCompleted,
    #[serde(other)]
    Unknown,
}

impl DomainEvent for CampaignEvent {
    const CATEGORY: &'static str = "campaign";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, CampaignEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum CampaignCommand {
    Create { settings: CampaignSettings },
    Change { settings: CampaignSettings },
    AddLeads { count: u32 },
    Start,
    Pause,
    Resume,
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CampaignError {
    #[error("the campaign already exists")]
    AlreadyExists,
    #[error("the campaign does not exist")]
    NotFound,
    #[error("a campaign with no leads cannot start")]
    NoLeads,
    #[error("a {from:?} campaign cannot {action}")]
    WrongStatus {
        from: CampaignStatus,
        action: &'static str,
    },
    #[error("count: must be at least 1")]
    NoCount,
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Campaign {
    pub exists: bool,
    pub settings: Option<CampaignSettings>,
    pub status: CampaignStatus,
    pub lead_count: u64,
    /// How many times the settings that decide when leads are called (calling window,
    /// time zone, retry policy) were written, 1 after creation: leads planned under
    /// older ones are planned again.
    pub settings_revision: u32,
}

impl Campaign {
    fn wrong(&self, action: &'static str) -> CampaignError {
        CampaignError::WrongStatus {
            from: self.status,
            action,
        }
    }
}

impl Aggregate for Campaign {
    type Event = CampaignEvent;
    type Command = CampaignCommand;
    type Error = CampaignError;

    fn handle(
        &self,
        command: CampaignCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<CampaignEvent>, CampaignError> {
        use CampaignStatus::*;
        if let CampaignCommand::Create { settings } = command {
            if self.exists {
                return Err(CampaignError::AlreadyExists);
            }
            return Ok(vec![CampaignEvent::CampaignCreated {
                settings: settings.validated()?,
            }]);
        }
        if !self.exists {
            return Err(CampaignError::NotFound);
        }
        let event = match (command, self.status) {
            (CampaignCommand::Create { .. }, _) => unreachable!("handled above"),
            (CampaignCommand::Change { .. }, Completed) => return Err(self.wrong("change")),
            (CampaignCommand::Change { settings }, _) => {
                let settings = settings.validated()?;
                if self.settings.as_ref() == Some(&settings) {
                    return Ok(vec![]);
                }
                CampaignEvent::CampaignSettingsChanged { settings }
            }
            (CampaignCommand::AddLeads { count: 0 }, _) => return Err(CampaignError::NoCount),
            (CampaignCommand::AddLeads { .. }, Completed) => return Err(self.wrong("take leads")),
            (CampaignCommand::AddLeads { count }, _) => CampaignEvent::LeadsAdded { count },
            (CampaignCommand::Start, Draft) if self.lead_count == 0 => {
                return Err(CampaignError::NoLeads);
            }
            (CampaignCommand::Start, Draft) => CampaignEvent::CampaignStarted,
            (CampaignCommand::Start, Running) => return Ok(vec![]),
            (CampaignCommand::Start, _) => return Err(self.wrong("start")),
            (CampaignCommand::Pause, Running) => CampaignEvent::CampaignPaused,
            (CampaignCommand::Pause, Paused) => return Ok(vec![]),
            (CampaignCommand::Pause, _) => return Err(self.wrong("pause")),
            (CampaignCommand::Resume, Paused) => CampaignEvent::CampaignResumed,
            (CampaignCommand::Resume, Running) => return Ok(vec![]),
            (CampaignCommand::Resume, _) => return Err(self.wrong("resume")),
            (CampaignCommand::Complete, Running | Paused) => CampaignEvent::CampaignCompleted,
            (CampaignCommand::Complete, Completed) => return Ok(vec![]),
            (CampaignCommand::Complete, Draft) => return Err(self.wrong("complete")),
        };
        Ok(vec![event])
    }

    fn apply(&mut self, event: &CampaignEvent) {
        match event {
            CampaignEvent::CampaignCreated { settings } => {
                self.exists = true;
                self.settings = Some(settings.clone());
                self.settings_revision = 1;
            }
            CampaignEvent::CampaignSettingsChanged { settings } => {
                let replan = self.settings.as_ref().is_none_or(|old| {
                    old.calling_window != settings.calling_window
                        || old.time_zone != settings.time_zone
                        || old.retry != settings.retry
                });
                if replan {
                    self.settings_revision += 1;
                }
                self.settings = Some(settings.clone());
            }
            CampaignEvent::LeadsAdded { count } => self.lead_count += u64::from(*count),
            CampaignEvent::CampaignStarted | CampaignEvent::CampaignResumed => {
                self.status = CampaignStatus::Running;
            }
            CampaignEvent::CampaignPaused => self.status = CampaignStatus::Paused,
            CampaignEvent::CampaignCompleted => self.status = CampaignStatus::Completed,
            CampaignEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    fn settings() -> CampaignSettings {
        serde_json::from_value(serde_json::json!({
            "name": "Spring open house",
            "agent_id": AgentId::new(),
            "time_zone": "Europe/London",
        }))
        .unwrap()
    }

    fn created() -> CampaignEvent {
        CampaignEvent::CampaignCreated {
            settings: settings(),
        }
    }

    #[test]
    fn settings_default_as_the_product_promises_and_validate_by_field() {
        let s = settings();
        assert_eq!(s.calling_window.start.to_string(), "10:00:00");
        assert_eq!(s.calling_window.end.to_string(), "19:00:00");
        assert_eq!(s.calling_window.days.len(), 6);
        assert_eq!(s.max_concurrent_calls, 10);
        assert_eq!(
            (
                s.retry.no_answer_after_minutes,
                s.retry.busy_after_minutes,
                s.retry.max_attempts
            ),
            (120, 240, 3)
        );
        let mut bad = settings();
        bad.calling_window.end = bad.calling_window.start;
        assert_eq!(bad.validated().unwrap_err().field, "calling_window.end");
        let mut bad = settings();
        bad.max_concurrent_calls = 0;
        assert_eq!(bad.validated().unwrap_err().field, "max_concurrent_calls");
        let mut bad = settings();
        bad.voicemail = Voicemail::LeaveMessage {
            message: " ".into(),
        };
        assert_eq!(bad.validated().unwrap_err().field, "voicemail.message");
    }

    #[test]
    fn a_campaign_with_no_leads_cannot_start() {
        let campaign = given::<Campaign>(&[created()]);
        assert_eq!(
            when(&campaign, CampaignCommand::Start),
            Err(CampaignError::NoLeads)
        );
        let with_leads = given::<Campaign>(&[created(), CampaignEvent::LeadsAdded { count: 3 }]);
        assert_eq!(
            when(&with_leads, CampaignCommand::Start).unwrap(),
            vec![CampaignEvent::CampaignStarted]
        );
    }

    #[test]
    fn pause_and_resume_toggle_and_repeat_harmlessly() {
        let running = given::<Campaign>(&[
            created(),
            CampaignEvent::LeadsAdded { count: 1 },
            CampaignEvent::CampaignStarted,
        ]);
        assert_eq!(
            when(&running, CampaignCommand::Pause).unwrap(),
            vec![CampaignEvent::CampaignPaused]
        );
        assert_eq!(when(&running, CampaignCommand::Resume).unwrap(), vec![]);
        let paused = given::<Campaign>(&[
            created(),
            CampaignEvent::LeadsAdded { count: 1 },
            CampaignEvent::CampaignStarted,
            CampaignEvent::CampaignPaused,
        ]);
        assert_eq!(paused.status, CampaignStatus::Paused);
        assert_eq!(when(&paused, CampaignCommand::Pause).unwrap(), vec![]);
        assert_eq!(
            when(&paused, CampaignCommand::Resume).unwrap(),
            vec![CampaignEvent::CampaignResumed]
        );
    }

    #[test]
    fn only_settings_that_decide_call_times_ask_for_a_new_plan() {
        let mut faster = settings();
        faster.max_concurrent_calls = 50;
        let mut later = settings();
        later.calling_window.end = NaiveTime::from_hms_opt(20, 0, 0).unwrap();
        let campaign = given::<Campaign>(&[
            created(),
            CampaignEvent::CampaignSettingsChanged { settings: faster },
        ]);
        assert_eq!(campaign.settings_revision, 1);
        let campaign = given::<Campaign>(&[
            created(),
            CampaignEvent::CampaignSettingsChanged { settings: later },
        ]);
        assert_eq!(campaign.settings_revision, 2);
    }

    #[test]
    fn a_completed_campaign_is_closed() {
        let done = given::<Campaign>(&[
            created(),
            CampaignEvent::LeadsAdded { count: 1 },
            CampaignEvent::CampaignStarted,
            CampaignEvent::CampaignCompleted,
        ]);
        for (command, action) in [
            (CampaignCommand::Start, "start"),
            (CampaignCommand::Pause, "pause"),
            (CampaignCommand::Resume, "resume"),
            (CampaignCommand::AddLeads { count: 2 }, "take leads"),
        ] {
            assert_eq!(
                when(&done, command),
                Err(CampaignError::WrongStatus {
                    from: CampaignStatus::Completed,
                    action
                })
            );
        }
        assert_eq!(when(&done, CampaignCommand::Complete).unwrap(), vec![]);
    }

    #[test]
    fn a_draft_cannot_pause_or_complete() {
        let draft = given::<Campaign>(&[created()]);
        assert!(matches!(
            when(&draft, CampaignCommand::Pause),
            Err(CampaignError::WrongStatus { .. })
        ));
        assert!(matches!(
            when(&draft, CampaignCommand::Complete),
            Err(CampaignError::WrongStatus { .. })
        ));
        assert_eq!(
            when(&draft, CampaignCommand::AddLeads { count: 0 }),
            Err(CampaignError::NoCount)
        );
    }

    #[test]
    fn the_status_is_written_as_the_api_shows_it() {
        assert_eq!(
            serde_json::to_value(CampaignStatus::Running).unwrap(),
            "RUNNING"
        );
    }
}
