//! Shared by the webhook tests: a tenant set up on the embedded store as the API would
//! leave it.

#![allow(dead_code)] // each test binary uses part of it

use parley_shared::aggregate::{Context, execute, execute_unscoped};
use parley_shared::backend::Ports;
use parley_shared::domain::agent::{Agent, AgentCommand, AgentSettings, AgentStatus};
use parley_shared::domain::call::Carrier;
use parley_shared::domain::number::{self, Number, NumberCommand};
use parley_shared::domain::tenant::{Tenant, TenantCommand};
use parley_shared::domain::{AgentId, PhoneNumber, TenantId, TimeZone};

pub fn ctx(tenant: &TenantId) -> Context {
    Context {
        tenant_id: tenant.to_string(),
        correlation_id: "setup".into(),
        idempotency_key: None,
    }
}

/// Creates `tenant` with its agent `agent` (named Riley) in `status`, and routes each
/// of `numbers` to that agent through its carrier.
pub async fn routed_tenant(
    ports: &Ports,
    tenant: &TenantId,
    agent: &AgentId,
    status: AgentStatus,
    numbers: &[(&str, Carrier)],
) {
    let (events, clock) = (&*ports.events, &*ports.clock);
    let create = TenantCommand::Create {
        name: "Acme".into(),
        time_zone: TimeZone::parse("UTC").unwrap(),
    };
    execute::<Tenant>(events, clock, &tenant.stream(), &ctx(tenant), create)
        .await
        .unwrap();
    let mut settings = AgentSettings::named("Riley");
    settings.status = status;
    let create = AgentCommand::Create { settings };
    execute::<Agent>(events, clock, &agent.stream(), &ctx(tenant), create)
        .await
        .unwrap();
    for (raw, carrier) in numbers {
        let number = PhoneNumber::parse(raw).unwrap();
        let assign = NumberCommand::Assign {
            number: number.clone(),
            tenant_id: tenant.clone(),
            agent_id: agent.clone(),
            carrier: *carrier,
        };
        execute_unscoped::<Number>(
            events,
            clock,
            &number::stream(&number),
            &ctx(tenant),
            assign,
        )
        .await
        .unwrap();
    }
}
