//! Parley's event-sourced streams. Each module holds one stream's events (a serde enum
//! tagged `type`), its state (a fold over those events) and its commands (checked
//! against the state before any event is emitted). Nothing here does I/O.
//!
//! | stream | what it tells |
//! | --- | --- |
//! | `tenant/<id>` | a business using Parley |
//! | `campaign/<id>` | an outbound campaign's life: draft, running, paused, completed |
//! | `lead/<id>` | a person to call: attempts, qualification, do-not-call |
//! | `do_not_call/<id>` | a number a tenant never calls |
//! | `dial_job/<message id>` | a dial job the dialer rejected, and why |
//! | `call/<id>` | one phone call, from request to its final carrier status |
//! | `appointment/<id>` | a booked meeting |
//! | `agent/<id>` | a voice agent's settings |
//! | `phone_number/<digits>` | which tenant and agent a number routes to |
//! | `api_key/<sha256>` | a tenant's API key, by the hash of the key |

pub mod access;
pub mod agent;
pub mod appointment;
pub mod call;
pub mod campaign;
pub mod dialjob;
pub mod dialplan;
pub mod donotcall;
pub mod ids;
pub mod lead;
pub mod number;
pub mod tenant;
pub mod values;

#[cfg(test)]
pub(crate) mod testing;

pub use ids::{AgentId, AppointmentId, CallId, CampaignId, IdError, LeadId, TenantId};
pub use values::{PhoneNumber, TimeZone, ValueError};
