//! Given / when / then helpers for the streams' tests: given these past events, when
//! this command, then these events (or this error).

use chrono::{DateTime, TimeZone, Utc};

use crate::aggregate::Aggregate;

/// A fixed "now" for tests: Wednesday 2026-01-14 12:00 UTC.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 14, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

pub fn given<A: Aggregate>(events: &[A::Event]) -> A {
    A::fold(events)
}

pub fn when<A: Aggregate>(state: &A, command: A::Command) -> Result<Vec<A::Event>, A::Error> {
    state.handle(command, now())
}
