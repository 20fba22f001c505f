//! Identifiers. Parley mints UUID v7s (time-ordered, so they sort by creation and index
//! well); each kind of id is its own type so a lead id cannot be passed as a call id.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} {value:?} is not a valid id (expected a UUID)")]
pub struct IdError {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }

            pub fn parse(value: &str) -> Result<Self, IdError> {
                Uuid::parse_str(value).map($name).map_err(|_| IdError {
                    kind: $kind,
                    value: value.chars().take(64).collect(),
                })
            }

            /// The id's stream: `<category>/<uuid>`.
            pub fn stream(&self) -> crate::event::StreamId {
                // A UUID is always a valid stream id, so this cannot fail.
                crate::event::StreamId::new($kind, &self.0.to_string())
                    .unwrap_or_else(|_| unreachable!("a UUID is a valid stream id"))
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.to_string()
            }
        }
    };
}

id_type!(
    /// A business using Parley; every event carries one.
    TenantId,
    "tenant"
);
id_type!(
    /// A voice agent (configured by the telephony edge).
    AgentId,
    "agent"
);
id_type!(CampaignId, "campaign");
id_type!(LeadId, "lead");

impl LeadId {
    /// The id of the lead with `phone` in `campaign`: one lead per number per campaign,
    /// so importing the same list twice imports nobody twice.
    pub fn for_campaign_phone(campaign: &CampaignId, phone: &str) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x7c4e_19a2_5b3d_4f6e_8a1c_2d9b_0e3f_5a6b);
        LeadId(Uuid::new_v5(
            &NAMESPACE,
            format!("{}:{phone}", campaign.0).as_bytes(),
        ))
    }
}
id_type!(CallId, "call");

impl CallId {
    /// The id of the call a carrier knows as `carrier_call_id`: the same every time, so
    /// a redelivered webhook about a call Parley did not place finds the same stream.
    pub fn for_carrier_call(carrier: &str, carrier_call_id: &str) -> Self {
        // A fixed namespace of Parley's own, so ids never collide with other v5 users.
        const NAMESPACE: Uuid = Uuid::from_u128(0x5d1c_7a0e_2b7f_4c1a_9f3e_6a4b_8c2d_1e0f);
        CallId(Uuid::new_v5(
            &NAMESPACE,
            format!("{carrier}:{carrier_call_id}").as_bytes(),
        ))
    }
}
impl CallId {
    /// The id of dial attempt `attempt` of `lead`: the same every time, so that two
    /// deliveries of one dial job, or two dialers racing, claim one call stream.
    pub fn for_lead_attempt(lead: &LeadId, attempt: u32) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x2f8a_6c1d_9e4b_4a7f_b3c2_5d8e_1f6a_0c9b);
        CallId(Uuid::new_v5(
            &NAMESPACE,
            format!("{}:{attempt}", lead.0).as_bytes(),
        ))
    }
}
impl LeadId {
    /// The lead of a caller who rang one of `tenant`'s numbers from `phone` (E.164):
    /// the same every time, so a caller who rings again is the same lead, and two
    /// webhooks racing create one.
    pub fn for_caller(tenant: &TenantId, phone: &str) -> Self {
        const NAMESPACE: Uuid = Uuid::from_u128(0x7c41_0d2e_58a3_4b9f_a1e6_3f0b_92d4_6e17);
        LeadId(Uuid::new_v5(
            &NAMESPACE,
            format!("{}:{phone}", tenant.0).as_bytes(),
        ))
    }
}
id_type!(AppointmentId, "appointment");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callers_lead_is_one_per_tenant_and_number() {
        let (a, b) = (TenantId::new(), TenantId::new());
        let lead = LeadId::for_caller(&a, "+14155550123");
        assert_eq!(lead, LeadId::for_caller(&a, "+14155550123"));
        assert_ne!(lead, LeadId::for_caller(&a, "+14155550124"));
        assert_ne!(lead, LeadId::for_caller(&b, "+14155550123"));
    }

    #[test]
    fn ids_round_trip_and_name_their_stream() {
        let id = CallId::new();
        let parsed = CallId::parse(&id.to_string()).unwrap();
        assert_eq!(id, parsed);
        assert_eq!(id.stream().as_str(), format!("call/{id}"));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<CallId>(&json).unwrap(), id);
    }

    #[test]
    fn a_bad_id_names_its_kind() {
        let err = LeadId::parse("nope").unwrap_err();
        assert_eq!(err.kind, "lead");
        assert!(err.to_string().contains("\"nope\""));
        assert!(serde_json::from_str::<LeadId>("\"../etc\"").is_err());
    }

    #[test]
    fn a_carrier_call_always_maps_to_one_call_id() {
        let a = CallId::for_carrier_call("twilio", "CA123");
        assert_eq!(a, CallId::for_carrier_call("twilio", "CA123"));
        assert_ne!(a, CallId::for_carrier_call("twilio", "CA124"));
        assert_ne!(a, CallId::for_carrier_call("exotel", "CA123"));
    }

    #[test]
    fn new_ids_sort_by_creation() {
        let a = CallId::new();
        let b = CallId::new();
        assert!(a < b);
    }
}
