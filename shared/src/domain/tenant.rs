//! The `tenant/<id>` stream: a business using Parley. The tenant's own id is the tenant
//! of its events.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::call::Carrier;
use super::values::{TimeZone, ValueError, name};
use crate::aggregate::Aggregate;
use crate::event::DomainEvent;
use crate::qualify::QualificationSettings;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TenantEvent {
    TenantCreated {
        name: String,
        time_zone: TimeZone,
    },
    TenantRenamed {
        name: String,
    },
    TenantTimeZoneChanged {
        time_zone: TimeZone,
    },
    /// A suspended tenant's calls and campaigns stop; its data stays.
    TenantSuspended {
        reason: String,
    },
    TenantReactivated,
    /// The tenant's credentials for a carrier were stored (in the secret store: an event
    /// never holds them).
    CarrierCredentialsSet {
        carrier: Carrier,
    },
    /// A vendor key of the tenant's was stored under `name` (the key itself only in
    /// the secret store), for agents to choose by name.
    VendorKeySet {
        name: String,
    },
    VendorKeyRemoved {
        name: String,
    },
    /// How hard the tenant's campaigns may dial, all together.
    DialingLimitsSet {
        limits: DialingLimits,
    },
    /// How the tenant's leads are scored and made hot, warm or cold.
    QualificationSet {
        settings: QualificationSettings,
    },
    #[serde(other)]
    Unknown,
}

impl DomainEvent for TenantEvent {
    const CATEGORY: &'static str = "tenant";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, TenantEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TenantCommand {
    Create { name: String, time_zone: TimeZone },
    Rename { name: String },
    ChangeTimeZone { time_zone: TimeZone },
    Suspend { reason: String },
    Reactivate,
    RecordCredentials { carrier: Carrier },
    RecordVendorKey { name: String },
    RemoveVendorKey { name: String },
    SetDialingLimits { limits: DialingLimits },
    SetQualification { settings: QualificationSettings },
}

/// Caps over all of a tenant's campaigns: calls in progress at once, and calls started
/// per second on each carrier account (carriers queue or refuse calls beyond their
/// account's rate; Twilio's default is 1 per second).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialingLimits {
    #[serde(default = "DialingLimits::default_concurrency")]
    pub max_concurrent_calls: u32,
    #[serde(default = "DialingLimits::default_cps")]
    pub calls_per_second: u32,
}

impl DialingLimits {
    fn default_concurrency() -> u32 {
        50
    }
    fn default_cps() -> u32 {
        1
    }

    pub fn validated(self) -> Result<Self, ValueError> {
        if !(1..=1000).contains(&self.max_concurrent_calls) {
            return Err(ValueError {
                field: "max_concurrent_calls",
                reason: "must be 1 to 1000".into(),
            });
        }
        if !(1..=100).contains(&self.calls_per_second) {
            return Err(ValueError {
                field: "calls_per_second",
                reason: "must be 1 to 100".into(),
            });
        }
        Ok(self)
    }
}

impl Default for DialingLimits {
    fn default() -> Self {
        DialingLimits {
            max_concurrent_calls: Self::default_concurrency(),
            calls_per_second: Self::default_cps(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TenantError {
    #[error("the tenant already exists")]
    AlreadyExists,
    #[error("the tenant does not exist")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tenant {
    pub exists: bool,
    pub name: String,
    pub time_zone: Option<TimeZone>,
    pub suspended: bool,
    /// Carriers whose credentials are stored.
    pub carriers: Vec<Carrier>,
    /// Names of the vendor keys stored for the tenant's agents.
    pub vendor_keys: std::collections::BTreeSet<String>,
    pub limits: DialingLimits,
    pub qualification: QualificationSettings,
}

impl Aggregate for Tenant {
    type Event = TenantEvent;
    type Command = TenantCommand;
    type Error = TenantError;

    fn handle(
        &self,
        command: TenantCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<TenantEvent>, TenantError> {
        if let TenantCommand::Create {
            name: raw,
            time_zone,
        } = command
        {
            if self.exists {
                return Err(TenantError::AlreadyExists);
            }
            let name = name("name", &raw, 200)?;
            return Ok(vec![TenantEvent::TenantCreated { name, time_zone }]);
        }
        if !self.exists {
            return Err(TenantError::NotFound);
        }
        Ok(match command {
            TenantCommand::Create { .. } => unreachable!("handled above"),
            TenantCommand::Rename { name: raw } => {
                let name = name("name", &raw, 200)?;
                if name == self.name {
                    vec![]
                } else {
                    vec![TenantEvent::TenantRenamed { name }]
                }
            }
            TenantCommand::ChangeTimeZone { time_zone } => {
                if self.time_zone.as_ref() == Some(&time_zone) {
                    vec![]
                } else {
                    vec![TenantEvent::TenantTimeZoneChanged { time_zone }]
                }
            }
            TenantCommand::Suspend { reason } if !self.suspended => {
                vec![TenantEvent::TenantSuspended {
                    reason: name("reason", &reason, 500)?,
                }]
            }
            TenantCommand::Reactivate if self.suspended => vec![TenantEvent::TenantReactivated],
            // Recorded every time: a rotation is worth a line in the tenant's history.
            TenantCommand::RecordCredentials { carrier } => {
                vec![TenantEvent::CarrierCredentialsSet { carrier }]
            }
            TenantCommand::RecordVendorKey { name } => {
                if !super::agent::is_vendor_key_name(&name) {
                    return Err(TenantError::Invalid(ValueError {
                        field: "name",
                        reason: "a vendor key's name is 1 to 64 of a-z, 0-9 and -".into(),
                    }));
                }
                // Recorded every time, as a rotation.
                vec![TenantEvent::VendorKeySet { name }]
            }
            TenantCommand::RemoveVendorKey { name } => {
                if self.vendor_keys.contains(&name) {
                    vec![TenantEvent::VendorKeyRemoved { name }]
                } else {
                    vec![]
                }
            }
            TenantCommand::SetDialingLimits { limits } => {
                let limits = limits.validated()?;
                if limits == self.limits {
                    vec![]
                } else {
                    vec![TenantEvent::DialingLimitsSet { limits }]
                }
            }
            TenantCommand::SetQualification { settings } => {
                if let Err(mut errors) = settings.validate() {
                    return Err(TenantError::Invalid(errors.remove(0)));
                }
                if settings == self.qualification {
                    vec![]
                } else {
                    vec![TenantEvent::QualificationSet { settings }]
                }
            }
            // Suspending a suspended tenant (or reactivating an active one) is a no-op.
            TenantCommand::Suspend { .. } | TenantCommand::Reactivate => vec![],
        })
    }

    fn apply(&mut self, event: &TenantEvent) {
        match event {
            TenantEvent::TenantCreated { name, time_zone } => {
                self.exists = true;
                self.name = name.clone();
                self.time_zone = Some(time_zone.clone());
            }
            TenantEvent::TenantRenamed { name } => self.name = name.clone(),
            TenantEvent::TenantTimeZoneChanged { time_zone } => {
                self.time_zone = Some(time_zone.clone())
            }
            TenantEvent::TenantSuspended { .. } => self.suspended = true,
            TenantEvent::TenantReactivated => self.suspended = false,
            TenantEvent::CarrierCredentialsSet { carrier } => {
                if !self.carriers.contains(carrier) {
                    self.carriers.push(*carrier);
                }
            }
            TenantEvent::VendorKeySet { name } => {
                self.vendor_keys.insert(name.clone());
            }
            TenantEvent::VendorKeyRemoved { name } => {
                self.vendor_keys.remove(name);
            }
            TenantEvent::DialingLimitsSet { limits } => self.limits = *limits,
            TenantEvent::QualificationSet { settings } => self.qualification = *settings,
            TenantEvent::Unknown => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::{given, when};

    fn created() -> TenantEvent {
        TenantEvent::TenantCreated {
            name: "Acme Realty".into(),
            time_zone: TimeZone::parse("America/New_York").unwrap(),
        }
    }

    #[test]
    fn a_tenant_is_created_once_with_a_trimmed_name() {
        let cmd = TenantCommand::Create {
            name: "  Acme Realty ".into(),
            time_zone: TimeZone::parse("America/New_York").unwrap(),
        };
        assert_eq!(
            when(&Tenant::default(), cmd.clone()).unwrap(),
            vec![created()]
        );
        assert_eq!(
            when(&given::<Tenant>(&[created()]), cmd),
            Err(TenantError::AlreadyExists)
        );
    }

    #[test]
    fn vendor_keys_are_named_listed_and_removed() {
        let created = TenantEvent::TenantCreated {
            name: "Acme".into(),
            time_zone: TimeZone::parse("UTC").unwrap(),
        };
        let tenant = given::<Tenant>(std::slice::from_ref(&created));
        let bad = when(
            &tenant,
            TenantCommand::RecordVendorKey {
                name: "Groq Key".into(),
            },
        );
        assert!(matches!(bad, Err(TenantError::Invalid(e)) if e.field == "name"));
        let set = TenantEvent::VendorKeySet {
            name: "groq".into(),
        };
        let tenant = given::<Tenant>(&[created.clone(), set.clone()]);
        assert!(tenant.vendor_keys.contains("groq"));
        let removed = when(
            &tenant,
            TenantCommand::RemoveVendorKey {
                name: "groq".into(),
            },
        )
        .unwrap();
        assert_eq!(
            removed,
            vec![TenantEvent::VendorKeyRemoved {
                name: "groq".into()
            }]
        );
        let gone = given::<Tenant>(&[created, set, removed[0].clone()]);
        assert!(gone.vendor_keys.is_empty());
        let again = TenantCommand::RemoveVendorKey {
            name: "groq".into(),
        };
        assert_eq!(when(&gone, again).unwrap(), vec![]);
    }

    #[test]
    fn an_empty_name_is_refused_by_field() {
        let cmd = TenantCommand::Create {
            name: " ".into(),
            time_zone: TimeZone::parse("UTC").unwrap(),
        };
        match when(&Tenant::default(), cmd) {
            Err(TenantError::Invalid(e)) => assert_eq!(e.field, "name"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn suspension_toggles_and_repeats_change_nothing() {
        let tenant = given::<Tenant>(&[created()]);
        let suspend = TenantCommand::Suspend {
            reason: "unpaid".into(),
        };
        let events = when(&tenant, suspend.clone()).unwrap();
        assert_eq!(events.len(), 1);
        let suspended = given::<Tenant>(&[created(), events[0].clone()]);
        assert!(suspended.suspended);
        assert_eq!(when(&suspended, suspend).unwrap(), vec![]);
        assert_eq!(
            when(&suspended, TenantCommand::Reactivate).unwrap(),
            vec![TenantEvent::TenantReactivated]
        );
        assert_eq!(when(&tenant, TenantCommand::Reactivate).unwrap(), vec![]);
    }

    #[test]
    fn dialing_limits_default_to_one_call_per_second_and_validate_by_field() {
        let tenant = given::<Tenant>(&[created()]);
        assert_eq!(tenant.limits.calls_per_second, 1);
        let bad = DialingLimits {
            calls_per_second: 0,
            ..DialingLimits::default()
        };
        match when(&tenant, TenantCommand::SetDialingLimits { limits: bad }) {
            Err(TenantError::Invalid(e)) => assert_eq!(e.field, "calls_per_second"),
            other => panic!("{other:?}"),
        }
        let faster = DialingLimits {
            calls_per_second: 5,
            ..DialingLimits::default()
        };
        let events = when(&tenant, TenantCommand::SetDialingLimits { limits: faster }).unwrap();
        let set = given::<Tenant>(&[created(), events[0].clone()]);
        assert_eq!(set.limits, faster);
        assert_eq!(
            when(&set, TenantCommand::SetDialingLimits { limits: faster }).unwrap(),
            vec![]
        );
    }

    #[test]
    fn qualification_settings_default_to_the_issues_and_validate_by_field() {
        let tenant = given::<Tenant>(&[created()]);
        assert_eq!(tenant.qualification, QualificationSettings::default());
        let bad = QualificationSettings {
            warm_at: 0.9,
            ..QualificationSettings::default()
        };
        match when(&tenant, TenantCommand::SetQualification { settings: bad }) {
            Err(TenantError::Invalid(e)) => assert_eq!(e.field, "warm_at"),
            other => panic!("{other:?}"),
        }
        let stricter = QualificationSettings {
            hot_at: 0.85,
            ..QualificationSettings::default()
        };
        let events = when(
            &tenant,
            TenantCommand::SetQualification { settings: stricter },
        )
        .unwrap();
        let set = given::<Tenant>(&[created(), events[0].clone()]);
        assert_eq!(set.qualification.hot_at, 0.85);
        assert_eq!(
            when(&set, TenantCommand::SetQualification { settings: stricter }).unwrap(),
            vec![]
        );
    }

    #[test]
    fn commands_need_an_existing_tenant() {
        assert_eq!(
            when(
                &Tenant::default(),
                TenantCommand::Rename { name: "x".into() }
            ),
            Err(TenantError::NotFound)
        );
    }
}
