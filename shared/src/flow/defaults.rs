//! The flows Parley ships, one per industry, compiled in from `shared/flows/`, and the
//! default prompts for agents with a language model, from `shared/prompts/`. The flows
//! are the offline brain of the embedded default, so each holds a whole conversation
//! written for speech: short sentences, no markup, values said back naturally.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::definition::Flow;

/// The use a shipped flow is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Industry {
    /// Buy or rent, area, budget, timeline, decision maker; books a viewing.
    RealEstate,
    /// A 1 to 5 rating by voice or keypad, what went well or not, a manager's callback
    /// after a low score.
    GuestRelations,
    /// Reason, day and time, confirmation; books and texts a confirmation.
    Appointments,
    /// BANT (budget, authority, need, timeline), qualification, a meeting offered.
    LeadQualification,
}

impl Industry {
    pub const ALL: [Industry; 4] = [
        Industry::RealEstate,
        Industry::GuestRelations,
        Industry::Appointments,
        Industry::LeadQualification,
    ];

    /// The shipped flow's YAML source.
    pub fn source(self) -> &'static str {
        match self {
            Industry::RealEstate => include_str!("../../flows/real_estate.yaml"),
            Industry::GuestRelations => include_str!("../../flows/guest_relations.yaml"),
            Industry::Appointments => include_str!("../../flows/appointments.yaml"),
            Industry::LeadQualification => include_str!("../../flows/lead_qualification.yaml"),
        }
    }

    /// The default system prompt for an agent of this industry with a language model,
    /// a template over the same fields as greetings (`{tenant_name}`, `{agent_name}`,
    /// `{direction}`, `{lead_name}`), naming Parley's tools as the model sees them.
    pub fn prompt(self) -> &'static str {
        match self {
            Industry::RealEstate => include_str!("../../prompts/real_estate.txt"),
            Industry::GuestRelations => include_str!("../../prompts/guest_relations.txt"),
            Industry::Appointments => include_str!("../../prompts/appointments.txt"),
            Industry::LeadQualification => include_str!("../../prompts/lead_qualification.txt"),
        }
    }

    fn index(self) -> usize {
        match self {
            Industry::RealEstate => 0,
            Industry::GuestRelations => 1,
            Industry::Appointments => 2,
            Industry::LeadQualification => 3,
        }
    }
}

impl Flow {
    /// The shipped flow for `industry`, parsed once.
    pub fn shipped(industry: Industry) -> &'static Flow {
        static PARSED: [OnceLock<Flow>; 4] = [const { OnceLock::new() }; 4];
        PARSED[industry.index()].get_or_init(|| {
            // The sources are compiled in and every one is parsed and validated by
            // the crate's tests, so this cannot fail for any caller or upload.
            Flow::parse_yaml(industry.source()).expect("a shipped flow is valid (tested)")
        })
    }

    /// A copy of the shipped flow for `industry`, to run or change.
    pub fn default_for(industry: Industry) -> Flow {
        Flow::shipped(industry).clone()
    }
}
