//! Confirmations to leads: what a call promised to send (an appointment confirmed by
//! SMS or WhatsApp), queued on the message queue for the sender. The job carries ids
//! and the text; the sender looks the lead's number up, so the queue holds no phone
//! number.

use serde::{Deserialize, Serialize};

use crate::domain::{AppointmentId, CallId, LeadId, TenantId};
pub use crate::flow::Channel;

/// Longest confirmation text: one SMS segment set's worth, well within WhatsApp's.
pub const MAX_TEXT_CHARS: usize = 640;

/// One confirmation to send.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationJob {
    pub tenant_id: TenantId,
    pub call_id: CallId,
    pub lead_id: LeadId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_id: Option<AppointmentId>,
    pub channel: Channel,
    pub text: String,
}

impl ConfirmationJob {
    /// Reads a queue message; the error names the field.
    pub fn parse(body: &str) -> Result<ConfirmationJob, String> {
        let job: ConfirmationJob = serde_json::from_str(body).map_err(|e| format!("body: {e}"))?;
        let chars = job.text.chars().count();
        if job.text.trim().is_empty() || chars > MAX_TEXT_CHARS {
            return Err(format!("text: must be 1 to {MAX_TEXT_CHARS} characters"));
        }
        Ok(job)
    }

    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_back_as_written_and_bad_ones_name_their_field() {
        let job = ConfirmationJob {
            tenant_id: TenantId::new(),
            call_id: CallId::new(),
            lead_id: LeadId::new(),
            appointment_id: Some(AppointmentId::new()),
            channel: Channel::Whatsapp,
            text: "Your viewing is confirmed for Tuesday at 2 pm.".into(),
        };
        assert_eq!(ConfirmationJob::parse(&job.to_body()), Ok(job.clone()));
        let mut long = job.clone();
        long.text = "x".repeat(MAX_TEXT_CHARS + 1);
        assert!(
            ConfirmationJob::parse(&long.to_body())
                .unwrap_err()
                .starts_with("text:")
        );
        let mut body: serde_json::Value = serde_json::from_str(&job.to_body()).unwrap();
        body["channel"] = "fax".into();
        assert!(ConfirmationJob::parse(&body.to_string()).is_err());
        body["channel"] = "sms".into();
        body["phone"] = "+14155550123".into();
        assert!(
            ConfirmationJob::parse(&body.to_string()).is_err(),
            "no extra fields"
        );
        assert!(
            ConfirmationJob::parse("garbage")
                .unwrap_err()
                .starts_with("body:")
        );
    }
}
