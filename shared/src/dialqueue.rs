//! What the scheduler tells the dialer: one dial job per (lead, attempt) on the dial
//! queue, and the per-second slots that keep dialling within a carrier account's
//! calls-per-second limit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::domain::call::Carrier;
use crate::domain::{CallId, CampaignId, LeadId, TenantId};
use crate::error::{StoreError, StoreResult};
use crate::readmodel::{View, ViewStore};

/// A dial job: place attempt `attempt` of `lead_id` as `call_id`. Ids only, so the
/// queue holds no personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DialJob {
    pub tenant_id: TenantId,
    pub campaign_id: CampaignId,
    pub lead_id: LeadId,
    pub attempt: u32,
    pub call_id: CallId,
}

impl DialJob {
    pub fn new(
        tenant_id: TenantId,
        campaign_id: CampaignId,
        lead_id: LeadId,
        attempt: u32,
    ) -> Self {
        let call_id = CallId::for_lead_attempt(&lead_id, attempt);
        DialJob {
            tenant_id,
            campaign_id,
            lead_id,
            attempt,
            call_id,
        }
    }

    /// Reads a queue message, checking that its ids belong together.
    pub fn parse(body: &str) -> Result<DialJob, String> {
        let job: DialJob = serde_json::from_str(body).map_err(|e| format!("body: {e}"))?;
        if job.attempt == 0 {
            return Err("attempt: must be at least 1".into());
        }
        if job.call_id != CallId::for_lead_attempt(&job.lead_id, job.attempt) {
            return Err("call_id: is not the call of this lead's attempt".into());
        }
        Ok(job)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

const RATE: &str = "dial_rate";

/// Claims one of the `per_second` call starts of `tenant`'s `carrier` account in the
/// second of `now`. `false`: that second is full, try again in the next.
pub async fn claim_dial_slot(
    views: &dyn ViewStore,
    tenant: &TenantId,
    carrier: Carrier,
    per_second: u32,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    let key = format!("{tenant}:{carrier:?}");
    let second = now.timestamp();
    for _ in 0..20 {
        let current = views.get(RATE, &key).await?;
        let (revision, count) = match &current {
            Some(v) if v.body["second"].as_i64() == Some(second) => {
                (v.revision, v.body["count"].as_u64().unwrap_or(0))
            }
            Some(v) => (v.revision, 0),
            None => (0, 0),
        };
        if count >= u64::from(per_second) {
            return Ok(false);
        }
        let view = View::new(
            RATE,
            key.clone(),
            json!({"second": second, "count": count + 1}),
        );
        match views.put(&view, Some(revision)).await {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    // Many dialers fighting over one second: call it full.
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_names_the_call_of_its_attempt() {
        let job = DialJob::new(TenantId::new(), CampaignId::new(), LeadId::new(), 2);
        assert_eq!(DialJob::parse(&job.to_body()).unwrap(), job);
        let mut forged = job.clone();
        forged.call_id = CallId::new();
        assert!(
            DialJob::parse(&forged.to_body())
                .unwrap_err()
                .starts_with("call_id")
        );
        assert!(DialJob::parse("not json").unwrap_err().starts_with("body"));
        assert!(DialJob::parse("{}").unwrap_err().starts_with("body"));
    }
}
