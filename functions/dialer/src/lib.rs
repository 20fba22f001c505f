//! The dialer: takes dial jobs off the dial queue (an SQS trigger on AWS, a polling
//! loop in `parley dev`) and places each job's call at the tenant's carrier.
//!
//! One call per (lead, attempt), however often a job is delivered and however many
//! dialers race: the scheduler reserved the attempt on the lead's stream with the
//! attempt's own call id, and whichever dialer writes that call's stream first is the
//! one that places it; the others find it written and stop.
//!
//! Before placing, the job is checked against the present: a paused campaign, a closed
//! calling window, a suspended tenant or a number on the do-not-call list withdraws the
//! attempt (it does not count), and the lead is planned again. A job that cannot mean
//! anything (garbage, unknown lead, ids that do not belong together) is poison: its
//! reason is recorded on the `dial_job/<message id>` stream and the message fails on
//! every delivery until the queue moves it to the dead-letter queue.

use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};

use parley_shared::StoreError;
use parley_shared::aggregate::{CommandError, Context, execute, load, load_any};
use parley_shared::backend::Ports;
use parley_shared::campaignviews::project_campaign;
use parley_shared::dialqueue::{DialJob, claim_dial_slot};
use parley_shared::domain::agent::{Agent, AgentStatus};
use parley_shared::domain::call::{Call, CallCommand, CallError, CallStatus, Direction};
use parley_shared::domain::campaign::{Campaign, CampaignCommand, CampaignStatus};
use parley_shared::domain::dialjob::{self, DialJobCommand};
use parley_shared::domain::dialplan::lead_zone;
use parley_shared::domain::donotcall::{self, DoNotCall};
use parley_shared::domain::lead::LeadCommand;
use parley_shared::domain::tenant::Tenant;
use parley_shared::leadviews::{load_lead, run_lead};
use parley_shared::outbound::{Dialing, OutboundError, Placement, RefusalKind, caller_id};
use parley_shared::queue::Delivery;
use parley_shared::views::refresh_call;

/// What became of one delivery of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handled (placed, withdrawn, or nothing left to do): the message can go.
    Done,
    /// The carrier account's second is full: the job goes back on the queue for later.
    Later(Duration),
    /// Something failed that may not fail next time: deliver the message again.
    Retry(String),
    /// The job can never be carried out.
    Poison(String),
}

#[derive(Clone)]
pub struct Dialer {
    pub ports: Ports,
    pub dialing: Dialing,
}

fn retry(e: impl std::fmt::Display) -> Outcome {
    Outcome::Retry(e.to_string())
}

impl<E: std::error::Error + 'static> From<CommandError<E>> for Outcome {
    fn from(e: CommandError<E>) -> Self {
        retry(e)
    }
}

impl From<StoreError> for Outcome {
    fn from(e: StoreError) -> Self {
        retry(e)
    }
}

impl Dialer {
    /// Handles one delivery and settles it: `true` when the message may be deleted,
    /// `false` when it must be delivered again (the queue's redrive takes it to the
    /// dead-letter queue in the end).
    pub async fn process(&self, message_id: &str, body: &str) -> bool {
        let outcome = self.handle(body).await;
        match outcome {
            Outcome::Done => true,
            Outcome::Later(delay) => match self.ports.dial_queue.send(body, delay).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "dial job not put back; it is delivered again");
                    false
                }
            },
            Outcome::Retry(reason) => {
                tracing::warn!(message_id, reason, "dial job failed; it is delivered again");
                false
            }
            Outcome::Poison(reason) => {
                tracing::error!(message_id, reason, "dial job rejected");
                self.record_poison(message_id, body, &reason).await;
                false
            }
        }
    }

    async fn record_poison(&self, message_id: &str, body: &str, reason: &str) {
        let Some(stream) = dialjob::stream(message_id) else {
            return;
        };
        let tenant = DialJob::parse(body)
            .map(|j| j.tenant_id.to_string())
            .unwrap_or_else(|_| "system".into());
        let ctx = Context {
            tenant_id: tenant,
            correlation_id: message_id.to_owned(),
            idempotency_key: None,
        };
        let reject = DialJobCommand::Reject {
            reason: reason.to_owned(),
            body: body.to_owned(),
        };
        if let Err(e) = execute::<dialjob::DialJob>(
            &*self.ports.events,
            &*self.ports.clock,
            &stream,
            &ctx,
            reject,
        )
        .await
        {
            tracing::error!(message_id, error = %e, "dial job rejection not recorded");
        }
    }

    /// Decides and does what one job asks.
    pub async fn handle(&self, body: &str) -> Outcome {
        match self.try_handle(body).await {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    async fn try_handle(&self, body: &str) -> Result<Outcome, Outcome> {
        let ports = &self.ports;
        let job = DialJob::parse(body).map_err(Outcome::Poison)?;
        let Some(loaded) = load_lead(&*ports.events, &job.lead_id).await? else {
            return Err(Outcome::Poison("lead_id: no such lead".into()));
        };
        if loaded.tenant != job.tenant_id
            || loaded.lead.campaign_id.as_ref() != Some(&job.campaign_id)
        {
            return Err(Outcome::Poison(
                "tenant_id, campaign_id: not the lead's".into(),
            ));
        }
        let lead = &loaded.lead;
        match lead.attempt_in_flight() {
            Some(f) if f.number == job.attempt && f.call_id == job.call_id => {}
            // A repeat of a job already done, or overtaken: nothing to do.
            _ => return Ok(Outcome::Done),
        }
        let tenant_id = &job.tenant_id;
        let campaign = load_any::<Campaign>(&*ports.events, &job.campaign_id.stream()).await?;
        let Some(settings) = campaign.state.settings.as_ref() else {
            return Err(Outcome::Poison("campaign_id: no such campaign".into()));
        };
        if campaign.state.status != CampaignStatus::Running {
            return self.withdraw(&job, "the campaign is not running").await;
        }
        let tenant = load::<Tenant>(&*ports.events, &tenant_id.stream(), &tenant_id.to_string())
            .await?
            .state;
        if tenant.suspended {
            return self.withdraw(&job, "the tenant is suspended").await;
        }
        let now = ports.clock.now();
        if !settings
            .calling_window
            .contains(lead_zone(lead, settings), now)
        {
            return self.withdraw(&job, "outside the calling window").await;
        }
        let Some(to) = lead.phone.clone() else {
            return Err(Outcome::Poison("lead_id: the lead has no number".into()));
        };
        let listed = load::<DoNotCall>(
            &*ports.events,
            &donotcall::stream(tenant_id, &to),
            &tenant_id.to_string(),
        )
        .await?
        .state;
        if lead.do_not_call || listed.blocked {
            self.withdraw(&job, "the number is on the do-not-call list")
                .await?;
            let mark = LeadCommand::MarkDoNotCall {
                reason: "on the tenant's do-not-call list".into(),
            };
            run_lead(ports, tenant_id, &job.lead_id, mark, None).await?;
            return Ok(Outcome::Done);
        }

        let agent = load_any::<Agent>(&*ports.events, &settings.agent_id.stream())
            .await?
            .state;
        let agent_settings = agent
            .settings
            .as_ref()
            .filter(|s| !agent.deleted && s.status == AgentStatus::Active);
        let Some(agent_settings) = agent_settings else {
            return self.halt(&job, "the campaign's agent is not active").await;
        };
        let (from, carrier) = match caller_id(ports, tenant_id, &settings.agent_id, None).await {
            Ok(found) => found,
            Err(OutboundError::Invalid { reason, .. }) => return self.halt(&job, &reason).await,
            Err(OutboundError::Store(e)) => return Err(e.into()),
        };
        let account = match self
            .dialing
            .account(&*ports.secrets, tenant_id, carrier)
            .await
        {
            Ok(account) => account,
            Err(OutboundError::Invalid { reason, .. }) => return self.halt(&job, &reason).await,
            Err(OutboundError::Store(e)) => return Err(e.into()),
        };
        let free = claim_dial_slot(
            &*ports.views,
            tenant_id,
            carrier,
            tenant.limits.calls_per_second,
            now,
        )
        .await?;
        if !free {
            return Ok(Outcome::Later(Duration::from_secs(1)));
        }

        // The claim: the first dialer to write this call places it.
        let request = CallCommand::Request {
            direction: Direction::Outbound,
            carrier,
            from: from.clone(),
            to: to.clone(),
            agent_id: settings.agent_id.clone(),
            lead_id: Some(job.lead_id.clone()),
            campaign_id: Some(job.campaign_id.clone()),
            attempt: job.attempt,
        };
        match self.call(&job, request).await {
            Ok(()) => {}
            Err(CommandError::Rejected(CallError::AlreadyExists)) => return Ok(Outcome::Done),
            Err(e) => return Err(e.into()),
        }
        refresh_call(&*ports.events, &*ports.views, &job.call_id).await?;
        let placement = Placement {
            call_id: &job.call_id,
            from: &from,
            to: &to,
            record: agent_settings.recording,
            max_call_seconds: agent_settings.max_call_seconds,
        };
        match self.dialing.place(&account, &placement).await {
            Ok((sid, status)) => {
                let assign = CallCommand::AssignCarrierCallId {
                    carrier_call_id: sid,
                };
                self.call(&job, assign).await?;
                if status == "queued" {
                    let queued = CallCommand::RecordStatus {
                        status: CallStatus::Queued,
                        duration_secs: None,
                        carrier_time: None,
                    };
                    self.call(&job, queued).await?;
                }
                tracing::info!(tenant_id = %tenant_id, call_id = %job.call_id, lead_id = %job.lead_id, attempt = job.attempt, "call placed");
            }
            Err(refusal) if refusal.kind == RefusalKind::Timeout => {
                // It may have been placed: the status callbacks (or the scheduler's
                // repair, if none come) will tell.
                tracing::warn!(tenant_id = %tenant_id, call_id = %job.call_id, error = %refusal.message, "carrier did not answer");
            }
            Err(refusal) => {
                tracing::warn!(tenant_id = %tenant_id, call_id = %job.call_id, error = %refusal.message, "carrier did not place the call");
                let reject = CallCommand::RecordCarrierRejection {
                    code: refusal.code.as_deref().and_then(|c| c.parse().ok()),
                    message: refusal.message.clone(),
                };
                self.call(&job, reject).await?;
                let end = LeadCommand::EndAttempt {
                    call_id: job.call_id.clone(),
                    status: CallStatus::Failed,
                    duration_secs: None,
                    machine: false,
                };
                run_lead(ports, tenant_id, &job.lead_id, end, None).await?;
            }
        }
        refresh_call(&*ports.events, &*ports.views, &job.call_id).await?;
        Ok(Outcome::Done)
    }

    async fn call(
        &self,
        job: &DialJob,
        command: CallCommand,
    ) -> Result<(), CommandError<CallError>> {
        let ctx = Context {
            tenant_id: job.tenant_id.to_string(),
            correlation_id: job.call_id.to_string(),
            idempotency_key: None,
        };
        execute::<Call>(
            &*self.ports.events,
            &*self.ports.clock,
            &job.call_id.stream(),
            &ctx,
            command,
        )
        .await
        .map(|_| ())
    }

    /// Takes the job's attempt back: it was never dialled.
    async fn withdraw(&self, job: &DialJob, reason: &str) -> Result<Outcome, Outcome> {
        tracing::info!(tenant_id = %job.tenant_id, lead_id = %job.lead_id, attempt = job.attempt, reason, "attempt withdrawn");
        let withdraw = LeadCommand::WithdrawAttempt {
            call_id: job.call_id.clone(),
            reason: reason.to_owned(),
        };
        run_lead(&self.ports, &job.tenant_id, &job.lead_id, withdraw, None).await?;
        Ok(Outcome::Done)
    }

    /// The campaign cannot dial at all (no active agent, no number, no carrier
    /// account): pause it, so that its owner sees why, and withdraw the attempt.
    async fn halt(&self, job: &DialJob, reason: &str) -> Result<Outcome, Outcome> {
        tracing::error!(tenant_id = %job.tenant_id, campaign_id = %job.campaign_id, reason, "campaign paused: it cannot dial");
        let ctx = Context {
            tenant_id: job.tenant_id.to_string(),
            correlation_id: job.campaign_id.to_string(),
            idempotency_key: None,
        };
        let done = execute::<Campaign>(
            &*self.ports.events,
            &*self.ports.clock,
            &job.campaign_id.stream(),
            &ctx,
            CampaignCommand::Pause,
        )
        .await?;
        project_campaign(
            &*self.ports.views,
            &job.campaign_id,
            &job.tenant_id,
            &done.state,
            done.version,
        )
        .await?;
        self.withdraw(job, reason).await
    }

    /// Takes up to `max` (1 to 10) jobs off the queue and handles them: the local
    /// stand-in for the SQS trigger. Returns how many messages were received.
    pub async fn consume(&self, max: usize, wait: Duration) -> Result<usize, StoreError> {
        let deliveries: Vec<Delivery> =
            self.ports.dial_queue.receive(max, VISIBILITY, wait).await?;
        for delivery in &deliveries {
            if self.process(&delivery.message_id, &delivery.body).await {
                self.ports.dial_queue.delete(&delivery.receipt).await?;
            }
        }
        Ok(deliveries.len())
    }
}

impl Dialer {
    /// Handles an SQS trigger's batch and reports the messages to deliver again
    /// (`ReportBatchItemFailures`): one bad job fails alone, not its whole batch.
    pub async fn batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.unwrap_or_default();
            let body = record.body.unwrap_or_default();
            if !self.process(&id, &body).await {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                response.batch_item_failures.push(failure);
            }
        }
        response
    }
}

/// How long a received job stays hidden: longer than placing a call can take.
pub const VISIBILITY: Duration = Duration::from_secs(60);
