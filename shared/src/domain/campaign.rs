//! The `campaign/<id>` stream: an outbound campaign's life.
//!
//! DRAFT → RUNNING ⇄ PAUSED → COMPLETED. A campaign starts only with leads; pausing
//! stops new dials at once (calls in progress finish); a completed campaign is closed
//! for good.

use chrono::{DateTime, Utc};
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

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CampaignEvent {
    CampaignCreated {
        name: String,
        agent_id: AgentId,
        time_zone: TimeZone,
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
    Create {
        name: String,
        agent_id: AgentId,
        time_zone: TimeZone,
    },
    AddLeads {
        count: u32,
    },
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
    pub name: String,
    pub agent_id: Option<AgentId>,
    pub time_zone: Option<TimeZone>,
    pub status: CampaignStatus,
    pub lead_count: u64,
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
        if let CampaignCommand::Create {
            name: raw,
            agent_id,
            time_zone,
        } = command
        {
            if self.exists {
                return Err(CampaignError::AlreadyExists);
            }
            return Ok(vec![CampaignEvent::CampaignCreated {
                name: name("name", &raw, 200)?,
                agent_id,
                time_zone,
            }]);
        }
        if !self.exists {
            return Err(CampaignError::NotFound);
        }
        let event = match (command, self.status) {
            (CampaignCommand::Create { .. }, _) => unreachable!("handled above"),
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
            CampaignEvent::CampaignCreated {
                name,
                agent_id,
                time_zone,
            } => {
                self.exists = true;
                self.name = name.clone();
                self.agent_id = Some(agent_id.clone());
                self.time_zone = Some(time_zone.clone());
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

    fn created() -> CampaignEvent {
        CampaignEvent::CampaignCreated {
            name: "Spring open house".into(),
            agent_id: AgentId::new(),
            time_zone: TimeZone::parse("Europe/London").unwrap(),
        }
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
