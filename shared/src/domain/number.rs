//! The `phone_number/<digits>` stream: which tenant and agent a phone number belongs
//! to. Inbound calls are routed by the number they dialled, so a number belongs to at
//! most one tenant at a time; once released, another tenant may take it.
//!
//! Ownership changes hands, so this stream's events carry the owner in the event body
//! and commands name the acting tenant: the stream itself is not scoped to a tenant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::call::Carrier;
use super::ids::{AgentId, TenantId};
use super::values::PhoneNumber;
use crate::aggregate::Aggregate;
use crate::event::{DomainEvent, StreamId};

/// The stream of a phone number.
pub fn stream(number: &PhoneNumber) -> StreamId {
    // Digits only: always a valid stream id.
    StreamId::new("phone_number", number.as_str().trim_start_matches('+'))
        .unwrap_or_else(|_| unreachable!("E.164 digits are a valid stream id"))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NumberEvent {
    NumberAssigned {
        number: PhoneNumber,
        tenant_id: TenantId,
        agent_id: AgentId,
        carrier: Carrier,
    },
    NumberAgentChanged {
        agent_id: AgentId,
    },
    NumberReleased,
    #[serde(other)]
    Unknown,
}

impl DomainEvent for NumberEvent {
    const CATEGORY: &'static str = "phone_number";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, NumberEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NumberCommand {
    Assign {
        number: PhoneNumber,
        tenant_id: TenantId,
        agent_id: AgentId,
        carrier: Carrier,
    },
    ChangeAgent {
        tenant_id: TenantId,
        agent_id: AgentId,
    },
    Release {
        tenant_id: TenantId,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("the number is already in use")]
    InUse,
    /// Also what another tenant's number looks like.
    #[error("the number does not exist")]
    NotFound,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Number {
    pub number: Option<PhoneNumber>,
    pub owner: Option<TenantId>,
    pub agent_id: Option<AgentId>,
    pub carrier: Option<Carrier>,
}

impl Number {
    /// The owner's tenant and agent, when `tenant` owns it.
    fn owned_by(&self, tenant: &TenantId) -> bool {
        self.owner.as_ref() == Some(tenant)
    }
}

impl Aggregate for Number {
    type Event = NumberEvent;
    type Command = NumberCommand;
    type Error = NumberError;

    fn handle(
        &self,
        command: NumberCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<NumberEvent>, NumberError> {
        match command {
            NumberCommand::Assign {
                number,
                tenant_id,
                agent_id,
                carrier,
            } => match &self.owner {
                Some(owner) if *owner == tenant_id && self.agent_id.as_ref() == Some(&agent_id) => {
                    Ok(vec![])
                }
                Some(_) => Err(NumberError::InUse),
                None => Ok(vec![NumberEvent::NumberAssigned {
                    number,
                    tenant_id,
                    agent_id,
                    carrier,
                }]),
            },
            NumberCommand::ChangeAgent { tenant_id, .. } | NumberCommand::Release { tenant_id }
                if !self.owned_by(&tenant_id) =>
            {
                Err(NumberError::NotFound)
            }
            NumberCommand::ChangeAgent { agent_id, .. }
                if self.agent_id.as_ref() == Some(&agent_id) =>
            {
                Ok(vec![])
            }
            NumberCommand::ChangeAgent { agent_id, .. } => {
                Ok(vec![NumberEvent::NumberAgentChanged { agent_id }])
            }
            NumberCommand::Release { .. } => Ok(vec![NumberEvent::NumberReleased]),
        }
    }

    fn apply(&mut self, event: &NumberEvent) {
        match event {
            NumberEvent::NumberAssigned {
                number,
                tenant_id,
                agent_id,
                carrier,
            } => {
                self.number = Some(number.clone());
                self.owner = Some(tenant_id.clone());
                self.agent_id = Some(agent_id.clone());
                self.carrier = Some(*carrier);
            }
            NumberEvent::NumberAgentChanged { agent_id } => self.agent_id = Some(agent_id.clone()),
            NumberEvent::NumberReleased => {
                self.owner = None;
                self.agent_id = None;
            }
            NumberEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    fn assigned(tenant: &TenantId, agent: &AgentId) -> NumberEvent {
        NumberEvent::NumberAssigned {
            number: PhoneNumber::parse("+14155550100").unwrap(),
            tenant_id: tenant.clone(),
            agent_id: agent.clone(),
            carrier: Carrier::Twilio,
        }
    }

    #[test]
    fn a_number_has_one_owner_until_released() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let agent = AgentId::new();
        let owned = given::<Number>(&[assigned(&a, &agent)]);
        let grab = NumberCommand::Assign {
            number: PhoneNumber::parse("+14155550100").unwrap(),
            tenant_id: b.clone(),
            agent_id: AgentId::new(),
            carrier: Carrier::Twilio,
        };
        assert_eq!(when(&owned, grab.clone()), Err(NumberError::InUse));
        assert_eq!(
            when(
                &owned,
                NumberCommand::Release {
                    tenant_id: b.clone()
                }
            ),
            Err(NumberError::NotFound)
        );
        let released = given::<Number>(&[assigned(&a, &agent), NumberEvent::NumberReleased]);
        assert_eq!(when(&released, grab).unwrap().len(), 1);
    }

    #[test]
    fn only_the_owner_moves_it_between_agents() {
        let tenant = TenantId::new();
        let agent = AgentId::new();
        let owned = given::<Number>(&[assigned(&tenant, &agent)]);
        let other = AgentId::new();
        assert_eq!(
            when(
                &owned,
                NumberCommand::ChangeAgent {
                    tenant_id: tenant.clone(),
                    agent_id: other.clone()
                }
            )
            .unwrap(),
            vec![NumberEvent::NumberAgentChanged { agent_id: other }]
        );
        assert_eq!(
            when(
                &owned,
                NumberCommand::ChangeAgent {
                    tenant_id: tenant,
                    agent_id: agent
                }
            )
            .unwrap(),
            vec![]
        );
    }

    #[test]
    fn the_stream_is_named_by_the_digits() {
        let number = PhoneNumber::parse("+442071838750").unwrap();
        assert_eq!(stream(&number).as_str(), "phone_number/442071838750");
    }
}
