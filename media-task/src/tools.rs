//! Parley's own tools: what the agent does for the caller during a call (qualify the
//! lead, book an appointment, hand over to a person, call back, confirm, hang up).
//!
//! One set of effects serves both brains: a language model reaches them as tool calls
//! with JSON arguments ([`CallTools`]), a scripted flow as the actions it fires
//! ([`CallScope::carry_out`]). Either way the same events are written, with the same
//! checks: a booking in the past, outside the agent's hours, running past closing or
//! over another of the agent's appointments is refused, with the nearest time that
//! works offered.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use parley_shared::aggregate::Context;
use parley_shared::appointmentviews;
use parley_shared::backend::Ports;
use parley_shared::domain::agent::Week;
use parley_shared::domain::appointment::{AppointmentCommand, DURATION_MINUTES, MeetingKind};
use parley_shared::domain::call::CallEvent;
use parley_shared::domain::ids::{AgentId, AppointmentId, CallId, LeadId, TenantId};
use parley_shared::domain::lead::LeadCommand;
use parley_shared::domain::values::TimeZone;
use parley_shared::flow::{self, Channel, FiredAction, SlotValue, ToolName, TransferMode};
use parley_shared::qualify::{self, Assessment, QualificationSettings, QualifyArgs};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::brain::{BrainEvent, ToolOutput, Tools};
use crate::llm::{ToolCall, ToolSpec};
use crate::wrapup::CallLog;
use parley_shared::confirmation::{ConfirmationJob, MAX_TEXT_CHARS};
use parley_shared::outcome::BrainAct;

/// A meeting's length when nobody says.
const DEFAULT_MEETING_MINUTES: u32 = 30;
/// Longest appointment title kept.
const MAX_TITLE_CHARS: usize = 200;
/// How far past a taken or too-late time the nearest free one is looked for.
const FREE_SEARCH_DAYS: i64 = 14;
/// The step between the times tried when looking for a free one.
const FREE_STEP_MINUTES: i64 = 15;
/// The most store pages of the agent's appointments one check reads (a thousand
/// each): far more than two weeks of any one person's meetings.
const MAX_CALENDAR_PAGES: usize = 20;

/// A stretch of time, from its first moment up to (not including) its last.
type Stretch<T> = (T, T);

/// The call the tools act for: where their effects are written, and the tenant's
/// clock and rules.
#[derive(Clone)]
pub struct CallScope {
    pub ports: Ports,
    /// The tenant the call's events are written for.
    pub ctx: Context,
    pub call_id: CallId,
    pub lead_id: Option<LeadId>,
    /// The agent on the call, whose other appointments a booking must not overlap.
    pub agent_id: Option<AgentId>,
    /// The zone the agent speaks and books in (UTC when unset).
    pub time_zone: Option<TimeZone>,
    /// When appointments may be made, in that zone's local time (empty: any time).
    pub hours: Week,
    pub qualification: QualificationSettings,
    /// What the brain did during the call, for the call's wrap-up.
    pub log: Arc<CallLog>,
}

impl CallScope {
    /// A scope for `call_id` with no lead, in UTC, open at all hours and under the
    /// default qualification rules; set the fields that differ.
    pub fn new(ports: Ports, ctx: Context, call_id: CallId) -> CallScope {
        CallScope {
            ports,
            ctx,
            call_id,
            lead_id: None,
            agent_id: None,
            time_zone: None,
            hours: Week::default(),
            qualification: QualificationSettings::default(),
            log: Arc::default(),
        }
    }

    /// The local time now, in the agent's zone.
    pub fn local_now(&self) -> NaiveDateTime {
        let utc = self.ports.clock.now();
        match &self.time_zone {
            Some(zone) => utc.with_timezone(&zone.tz()).naive_local(),
            None => utc.naive_utc(),
        }
    }

    /// A flow context at the local "now" with `fields` and the agent's hours.
    pub fn context(&self, fields: BTreeMap<String, String>) -> flow::Context {
        flow::Context {
            fields,
            now: self.local_now(),
            hours: self.hours.clone(),
        }
    }

    /// `local` in UTC; a local time a clock change skips moves on by the change (02:30
    /// becomes 03:30 when clocks go forward an hour), and an ambiguous one takes its
    /// first occurrence.
    fn to_utc(&self, local: NaiveDateTime) -> DateTime<Utc> {
        let Some(zone) = &self.time_zone else {
            return local.and_utc();
        };
        let tz = zone.tz();
        (0..=3)
            .find_map(|hours| {
                (local + Duration::hours(hours))
                    .and_local_timezone(tz)
                    .earliest()
            })
            .map_or_else(|| local.and_utc(), |t| t.to_utc())
    }

    /// `utc` in the agent's zone.
    fn to_local(&self, utc: DateTime<Utc>) -> NaiveDateTime {
        match &self.time_zone {
            Some(zone) => utc.with_timezone(&zone.tz()).naive_local(),
            None => utc.naive_utc(),
        }
    }

    fn speak(&self, at: NaiveDateTime) -> String {
        SlotValue::Datetime { at }.speak(self.local_now().date())
    }

    /// A time of day alone, as spoken ("5 pm").
    fn speak_time(&self, at: NaiveDateTime) -> String {
        SlotValue::Time { time: at.time() }.speak(self.local_now().date())
    }

    /// A time to offer: spoken, then as a model books it.
    fn offer(&self, at: NaiveDateTime) -> String {
        format!("{} ({})", self.speak(at), at.format("%Y-%m-%dT%H:%M"))
    }

    /// Carries out one flow action; what happened, as the tool a model would have
    /// called. A failure is logged and reported (`error: …`), never a reason to end the
    /// call.
    pub async fn carry_out(&self, n: u64, action: FiredAction) -> BrainEvent {
        self.carry_out_refusable(n, action).await.0
    }

    /// [`CallScope::carry_out`], and for a booking that was refused, the nearest time
    /// the flow may offer instead (`Some(None)` when nothing is free to offer).
    pub async fn carry_out_refusable(
        &self,
        n: u64,
        action: FiredAction,
    ) -> (BrainEvent, Option<Option<NaiveDateTime>>) {
        let mut refused = None;
        let call = ToolCall {
            id: format!("flow-{n}"),
            name: tool_name(&action).to_owned(),
            arguments: serde_json::to_string(&action).unwrap_or_default(),
        };
        let result = match action {
            FiredAction::Qualify { slots } => {
                let today = self.local_now().date();
                self.qualify(qualify::assess_slots(&slots, today)).await
            }
            FiredAction::Book {
                title,
                at,
                duration_minutes,
                kind,
                ..
            } => {
                let booked = self.book(title, at, duration_minutes, kind).await;
                if booked.is_err() {
                    refused = Some(self.free_offer(at, duration_minutes).await);
                }
                booked.map(|(_, booked)| booked)
            }
            FiredAction::Transfer { mode, reason } => self.transfer(mode, &reason).await,
            FiredAction::End { outcome } => Ok(self.end(outcome)),
            FiredAction::SendConfirmation {
                channel, message, ..
            } => self.confirm(channel, Some(message)).await,
            FiredAction::Callback { at } => self.callback(at).await,
        };
        let used = BrainEvent::ToolUsed {
            result: self.reported(&call.name, result),
            call,
        };
        (used, refused)
    }

    /// The nearest free time for a meeting of `duration_minutes` asked for at `at`
    /// (local): from `at`, or from the next quarter hour when `at` has passed.
    async fn free_offer(&self, at: NaiveDateTime, duration_minutes: u32) -> Option<NaiveDateTime> {
        let now = self.local_now();
        let step = FREE_STEP_MINUTES * 60;
        let from = match at < now {
            true => {
                let secs = now.and_utc().timestamp();
                let up = (secs + step - 1).div_euclid(step) * step;
                DateTime::from_timestamp(up, 0)?.naive_utc()
            }
            false => at,
        };
        let taken = self.taken_around(from).await.ok()?;
        let length = Duration::minutes(i64::from(duration_minutes));
        self.nearest_free(from, length, &taken)
    }

    /// The tool's result text: the failure logged and worded for the model.
    fn reported(&self, tool: &str, result: Result<String, String>) -> String {
        result.unwrap_or_else(|error| {
            tracing::warn!(
                tenant_id = %self.ctx.tenant_id,
                call_id = %self.call_id,
                tool,
                %error,
                "a tool failed"
            );
            format!("error: {error}")
        })
    }

    fn tenant(&self) -> Result<TenantId, String> {
        TenantId::parse(&self.ctx.tenant_id).map_err(|_| "the call's tenant is unknown".to_owned())
    }

    fn lead(&self) -> Result<&LeadId, String> {
        self.lead_id
            .as_ref()
            .ok_or_else(|| "the call has no lead".to_owned())
    }

    /// Runs `command` on the call's lead, keeping the lead's views current.
    async fn on_lead(&self, command: LeadCommand) -> Result<(), String> {
        let lead = self.lead()?;
        parley_shared::leadviews::run_lead(&self.ports, &self.tenant()?, lead, command, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Scores `assessment` by the tenant's rules and records it on the lead.
    async fn qualify(&self, assessment: Assessment) -> Result<String, String> {
        let qualification = qualify::score(assessment, &self.qualification);
        self.on_lead(qualification.command()).await?;
        self.log.act(BrainAct::Qualified {
            temperature: qualification.temperature,
            score: qualification.score,
        });
        Ok(format!(
            "qualified {:?} at {}",
            qualification.temperature, qualification.score
        )
        .to_lowercase())
    }

    /// Books `at` (local time) if it is to come and inside the agent's hours; else
    /// says why not and which open time is nearest. The appointment's id, and what
    /// was booked.
    async fn book(
        &self,
        title: String,
        at: NaiveDateTime,
        duration_minutes: u32,
        kind: MeetingKind,
    ) -> Result<(AppointmentId, String), String> {
        let booked = self.try_book(title, at, duration_minutes, kind).await;
        self.log.act(BrainAct::Booked {
            at,
            kind,
            ok: booked.is_ok(),
        });
        if let Ok((id, _)) = &booked {
            self.log.booked(id.clone(), at);
        }
        booked
    }

    async fn try_book(
        &self,
        title: String,
        at: NaiveDateTime,
        duration_minutes: u32,
        kind: MeetingKind,
    ) -> Result<(AppointmentId, String), String> {
        let now = self.local_now();
        if at < now {
            return Err(format!("{} has already passed", self.speak(at)));
        }
        if !self.hours.is_open_at(at) {
            return Err(match self.hours.next_open(at) {
                Some(open) => format!(
                    "closed {}; the nearest open time is {}",
                    self.speak(at),
                    self.offer(open)
                ),
                None => format!("closed {}", self.speak(at)),
            });
        }
        let length = Duration::minutes(i64::from(duration_minutes));
        if let Some(closing) = closes_before(&self.hours, at, at + length) {
            let taken = self.taken_around(at).await?;
            return Err(format!(
                "the meeting would run past closing at {}; {}",
                self.speak_time(closing),
                self.nearest_free_said(at, length, &taken, "the nearest time it fits is")
            ));
        }
        let taken = self.taken_around(at).await?;
        let starts_at = self.to_utc(at);
        if taken
            .iter()
            .any(|(start, end)| *start < starts_at + length && starts_at < *end)
        {
            return Err(format!(
                "{} is already booked; {}",
                self.speak(at),
                self.nearest_free_said(at, length, &taken, "the nearest free time is")
            ));
        }
        let lead_id = self.lead()?.clone();
        let id = AppointmentId::new();
        let command = AppointmentCommand::Book {
            lead_id,
            call_id: Some(self.call_id.clone()),
            agent_id: self.agent_id.clone(),
            title,
            starts_at,
            duration_minutes,
            kind,
        };
        appointmentviews::run_appointment(&self.ports, &self.ctx, &id, command)
            .await
            .map_err(|e| e.to_string())?;
        self.settle_race(&id, at, length).await?;
        let booked = format!("booked appointment {id} for {}", self.speak(at));
        Ok((id, booked))
    }

    /// Two calls may book the agent's same time at once, each checking before the
    /// other's booking shows. Looking again once ours shows settles it: of two racing
    /// bookings, the one that looks last sees both and withdraws (both may, neither
    /// keeps the other's time), so two live appointments of one agent never overlap.
    /// That holds on the embedded store; on DynamoDB, once its index has caught up
    /// with both (normally well under a second).
    async fn settle_race(
        &self,
        id: &AppointmentId,
        at: NaiveDateTime,
        length: Duration,
    ) -> Result<(), String> {
        let Some(agent) = &self.agent_id else {
            return Ok(());
        };
        let start = self.to_utc(at);
        let longest = Duration::minutes(i64::from(*DURATION_MINUTES.end()));
        let query = appointmentviews::starting_query(
            &self.tenant()?,
            Some(agent),
            start - longest,
            Some(start + length),
        );
        let found = appointmentviews::all_in(&*self.ports.views, query, MAX_CALENDAR_PAGES)
            .await
            .map_err(|e| e.to_string())?;
        let raced = found.iter().any(|other| {
            &other.id != id && other.is_live() && other.overlaps(start, start + length)
        });
        if !raced {
            return Ok(());
        }
        tracing::warn!(
            tenant_id = %self.ctx.tenant_id,
            call_id = %self.call_id,
            appointment_id = %id,
            "another call booked the agent's same time at once: withdrawing this booking"
        );
        let withdraw = AppointmentCommand::Cancel {
            reason: "withdrawn: another call booked the agent's same time at once".into(),
        };
        appointmentviews::run_appointment(&self.ports, &self.ctx, id, withdraw)
            .await
            .map_err(|e| e.to_string())?;
        let taken = self.taken_around(at).await?;
        Err(format!(
            "{} was booked by another call just now; {}",
            self.speak(at),
            self.nearest_free_said(at, length, &taken, "the nearest free time is")
        ))
    }

    /// The agent's live (not cancelled) appointments, in UTC, that could take any time
    /// a booking at `from` (local) or the nearest free time after it might need: from
    /// the longest meeting before `from` to the end of the search for a free time.
    async fn taken_around(
        &self,
        from: NaiveDateTime,
    ) -> Result<Vec<Stretch<DateTime<Utc>>>, String> {
        let longest = Duration::minutes(i64::from(*DURATION_MINUTES.end()));
        let until = from + Duration::days(FREE_SEARCH_DAYS) + longest;
        self.taken(self.to_utc(from) - longest, self.to_utc(until))
            .await
    }

    /// The agent's live appointments starting from `from` to `to`. A scope with no
    /// agent (a call whose agent is not known) checks no overlaps: it has no one's
    /// calendar to check, and the tenant's as a whole would refuse meetings that
    /// different people could take.
    async fn taken(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Stretch<DateTime<Utc>>>, String> {
        let Some(agent) = &self.agent_id else {
            return Ok(Vec::new());
        };
        let query = appointmentviews::starting_query(&self.tenant()?, Some(agent), from, Some(to));
        let found = appointmentviews::all_in(&*self.ports.views, query, MAX_CALENDAR_PAGES)
            .await
            .map_err(|e| {
                tracing::warn!(
                    tenant_id = %self.ctx.tenant_id,
                    call_id = %self.call_id,
                    error = %e,
                    "the agent's appointments could not be read"
                );
                "the agent's calendar cannot be read just now; try again".to_owned()
            })?;
        Ok(found
            .iter()
            .filter(|a| a.is_live())
            .map(|a| (a.starts_at, a.ends_at))
            .collect())
    }

    /// The first local time at or after `from`, in steps of [`FREE_STEP_MINUTES`] (and
    /// from each opening), where a meeting of `length` is open all along and clear of
    /// `taken`; within [`FREE_SEARCH_DAYS`].
    fn nearest_free(
        &self,
        from: NaiveDateTime,
        length: Duration,
        taken: &[Stretch<DateTime<Utc>>],
    ) -> Option<NaiveDateTime> {
        let step = Duration::minutes(FREE_STEP_MINUTES);
        let limit = from + Duration::days(FREE_SEARCH_DAYS);
        let mut at = from;
        while at <= limit {
            if !self.hours.is_open_at(at) {
                at = self.hours.next_open(at)?;
                continue;
            }
            if let Some(closing) = closes_before(&self.hours, at, at + length) {
                // No later start in this stretch fits either: on to the next opening.
                at = self.hours.next_open(closing)?;
                continue;
            }
            let start = self.to_utc(at);
            let busy_until = taken
                .iter()
                .filter(|(s, e)| *s < start + length && start < *e)
                .map(|(_, e)| *e)
                .max();
            match busy_until {
                // Whole steps past the end of what is in the way.
                Some(until) => {
                    let minutes = (until - start).num_minutes();
                    let steps = (minutes + FREE_STEP_MINUTES - 1) / FREE_STEP_MINUTES;
                    at += step * i32::try_from(steps.max(1)).unwrap_or(1);
                }
                None => return Some(at),
            }
        }
        None
    }

    /// The nearest free time as a refusal offers it: `lead` and the time, or that
    /// nothing is free.
    fn nearest_free_said(
        &self,
        from: NaiveDateTime,
        length: Duration,
        taken: &[Stretch<DateTime<Utc>>],
        lead: &str,
    ) -> String {
        match self.nearest_free(from, length, taken) {
            Some(free) => format!("{lead} {}", self.offer(free)),
            None => format!(
                "nothing is free for {} minutes within {FREE_SEARCH_DAYS} days",
                length.num_minutes()
            ),
        }
    }

    async fn transfer(&self, mode: TransferMode, reason: &str) -> Result<String, String> {
        let event = CallEvent::TransferRequested {
            mode: mode.as_str().to_owned(),
            reason: reason.to_owned(),
        };
        crate::call::record(&self.ports, &self.ctx, &self.call_id, event).await?;
        self.log.act(BrainAct::TransferAsked {
            mode,
            reason: reason.to_owned(),
        });
        let mode = mode.as_str();
        Ok(format!(
            "a {mode} transfer to a person ({reason}) once the line ends; tell the caller \
             you are passing them to a colleague"
        ))
    }

    /// Asks for a callback at `at` (local), or as soon as the lead may be called.
    async fn callback(&self, at: Option<NaiveDateTime>) -> Result<String, String> {
        let now = self.local_now();
        let local = at.filter(|at| *at > now).unwrap_or(now);
        let command = LeadCommand::RequestCallback {
            at: self.to_utc(local),
            call_id: Some(self.call_id.clone()),
        };
        self.on_lead(command).await?;
        self.log.act(BrainAct::CallbackAsked { at: Some(local) });
        Ok(match at {
            Some(_) => format!("callback scheduled for {}", self.speak(local)),
            None => "callback scheduled as soon as possible".to_owned(),
        })
    }

    /// Queues a confirmation to the lead, of the appointment booked during the call
    /// when there was one: `text`, or a plain one naming the appointment's time.
    async fn confirm(&self, channel: Channel, text: Option<String>) -> Result<String, String> {
        let lead_id = self.lead()?.clone();
        let booking = self.log.last_booking();
        let text = text
            .map(|t| t.trim().chars().take(MAX_TEXT_CHARS).collect::<String>())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| match &booking {
                Some((_, at)) => format!(
                    "Your appointment is confirmed for {}.",
                    at.format("%A %-d %B at %H:%M")
                ),
                None => "Thank you for your call. We look forward to speaking again.".into(),
            });
        let appointment_id = booking.map(|(id, _)| id);
        let job = ConfirmationJob {
            tenant_id: self.tenant()?,
            call_id: self.call_id.clone(),
            lead_id,
            appointment_id: appointment_id.clone(),
            channel,
            text,
        };
        // Queued before it is recorded: a confirmation the call's history shows is one
        // the sender has.
        self.ports
            .message_queue
            .send(&job.to_body(), std::time::Duration::ZERO)
            .await
            .map_err(|e| e.to_string())?;
        let name = channel.as_str();
        let event = CallEvent::ConfirmationQueued {
            channel: name.to_owned(),
            appointment_id,
        };
        crate::call::record(&self.ports, &self.ctx, &self.call_id, event).await?;
        self.log.act(BrainAct::ConfirmationQueued { channel });
        Ok(format!("a confirmation by {name} is on its way"))
    }

    /// The call ends after the goodbye.
    fn end(&self, outcome: Option<String>) -> String {
        let said = ended(outcome.as_deref());
        self.log.act(BrainAct::Ended { outcome });
        said
    }
}

fn ended(outcome: Option<&str>) -> String {
    match outcome {
        Some(outcome) => format!("the call ends after the goodbye ({outcome})"),
        None => "the call ends after the goodbye".to_owned(),
    }
}

/// The tool a flow action stands for, by the name a model would call it.
fn tool_name(action: &FiredAction) -> &'static str {
    tool_id(match action {
        FiredAction::Qualify { .. } => ToolName::QualifyLead,
        FiredAction::Book { .. } => ToolName::BookAppointment,
        FiredAction::Transfer { .. } => ToolName::TransferToHuman,
        FiredAction::End { .. } => ToolName::EndCall,
        FiredAction::SendConfirmation { .. } => ToolName::SendConfirmation,
        FiredAction::Callback { .. } => ToolName::ScheduleCallback,
    })
}

/// Parley's tools offered to a language model for one call.
pub struct CallTools {
    scope: CallScope,
    /// The tools offered; a flow's node may narrow them.
    offered: Vec<ToolName>,
}

/// The tools a model is offered when nothing narrows them.
pub const ALL_TOOLS: [ToolName; 7] = [
    ToolName::QualifyLead,
    ToolName::CheckAvailability,
    ToolName::BookAppointment,
    ToolName::SendConfirmation,
    ToolName::ScheduleCallback,
    ToolName::TransferToHuman,
    ToolName::EndCall,
];

impl CallTools {
    pub fn new(scope: CallScope) -> CallTools {
        CallTools {
            scope,
            offered: ALL_TOOLS.to_vec(),
        }
    }

    /// Offers only `tools` (a flow node's scope).
    pub fn only(mut self, tools: &[ToolName]) -> CallTools {
        self.offered.retain(|t| tools.contains(t));
        self
    }

    async fn run(&self, tool: ToolName, arguments: &str) -> Result<ToolOutput, String> {
        let args: Value = if arguments.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(arguments).map_err(|e| format!("arguments: not JSON ({e})"))?
        };
        if !args.is_object() {
            return Err("arguments: expected a JSON object".to_owned());
        }
        let scope = &self.scope;
        let content = match tool {
            ToolName::QualifyLead => {
                let answers = QualifyArgs::from_value(&args).map_err(|e| e.to_string())?;
                let today = scope.local_now().date();
                let assessment =
                    qualify::assess_answers(&answers, today).map_err(|e| e.to_string())?;
                scope.qualify(assessment).await?
            }
            ToolName::CheckAvailability => {
                let a: AvailabilityArgs = parse(args)?;
                availability(scope, &required("date", a.date)?).await?
            }
            ToolName::BookAppointment => {
                let a: BookArgs = parse(args)?;
                let at = local_time("start", &required("start", a.start)?)?;
                let minutes = a.duration_minutes.unwrap_or(DEFAULT_MEETING_MINUTES);
                if !DURATION_MINUTES.contains(&minutes) {
                    return Err(format!(
                        "duration_minutes: must be {} to {}",
                        DURATION_MINUTES.start(),
                        DURATION_MINUTES.end()
                    ));
                }
                let title = a
                    .title
                    .map(|t| t.trim().chars().take(MAX_TITLE_CHARS).collect::<String>())
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| "Appointment".to_owned());
                let kind = a.kind.unwrap_or(MeetingKind::InPerson);
                scope.book(title, at, minutes, kind).await?.1
            }
            ToolName::SendConfirmation => {
                let a: ConfirmArgs = parse(args)?;
                scope
                    .confirm(a.channel.unwrap_or(Channel::Sms), None)
                    .await?
            }
            ToolName::ScheduleCallback => {
                let a: CallbackArgs = parse(args)?;
                let at = a.at.as_deref().map(|at| local_time("at", at)).transpose()?;
                scope.callback(at).await?
            }
            ToolName::TransferToHuman => {
                let a: TransferArgs = parse(args)?;
                let reason = a
                    .reason
                    .map(|r| r.trim().chars().take(200).collect::<String>())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "caller_request".to_owned());
                let content = scope
                    .transfer(a.mode.unwrap_or(TransferMode::Warm), &reason)
                    .await?;
                return Ok(ToolOutput {
                    content,
                    end_call: true,
                });
            }
            ToolName::EndCall => {
                let a: EndArgs = parse(args)?;
                let outcome = a.outcome.map(|o| o.trim().chars().take(80).collect());
                return Ok(ToolOutput {
                    content: scope.end(outcome),
                    end_call: true,
                });
            }
            ToolName::SaveSlot => return Err("save_slot is only offered within a flow".into()),
        };
        Ok(content.into())
    }
}

#[async_trait]
impl Tools for CallTools {
    fn specs(&self) -> Vec<ToolSpec> {
        self.offered.iter().filter_map(|t| spec(*t)).collect()
    }

    async fn call(&self, call: &ToolCall) -> ToolOutput {
        let tool = self
            .offered
            .iter()
            .copied()
            .find(|t| tool_id(*t) == call.name);
        let result = match tool {
            Some(tool) => self.run(tool, &call.arguments).await,
            None => Err(format!(
                "there is no tool named {}; the tools are {}",
                call.name,
                self.offered
                    .iter()
                    .map(|t| tool_id(*t))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        match result {
            Ok(output) => output,
            Err(error) => self.scope.reported(&call.name, Err(error)).into(),
        }
    }
}

/// A tool's name as the model calls it.
pub fn tool_id(tool: ToolName) -> &'static str {
    match tool {
        ToolName::SaveSlot => "save_slot",
        ToolName::QualifyLead => qualify::QUALIFY_LEAD_TOOL,
        ToolName::CheckAvailability => "check_availability",
        ToolName::BookAppointment => "book_appointment",
        ToolName::SendConfirmation => "send_confirmation",
        ToolName::ScheduleCallback => "schedule_callback",
        ToolName::TransferToHuman => "transfer_to_human",
        ToolName::EndCall => "end_call",
    }
}

/// The tool's description and JSON Schema, as the model is shown them.
fn spec(tool: ToolName) -> Option<ToolSpec> {
    let local = "Local date and time, YYYY-MM-DDTHH:MM (24-hour clock).";
    let (description, parameters) = match tool {
        ToolName::SaveSlot => return None,
        ToolName::QualifyLead => (
            "Record how qualified the lead is once you have learnt their budget, authority, \
             need and timeline. Quote the caller's own words.",
            qualify::qualify_lead_tool_schema(),
        ),
        ToolName::CheckAvailability => (
            "The free times on a day: the opening hours less what is already booked, to \
             offer the caller times that are free.",
            json!({
                "type": "object",
                "properties": {"date": {"type": "string", "description": "YYYY-MM-DD"}},
                "required": ["date"],
            }),
        ),
        ToolName::BookAppointment => (
            "Book an appointment once the caller has agreed a day and time. Refused for \
             times past, closed, running past closing or already booked, with the nearest \
             time that works to offer instead.",
            json!({
                "type": "object",
                "properties": {
                    "start": {"type": "string", "description": local},
                    "duration_minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                    "kind": {"type": "string", "enum": ["in_person", "phone", "video"]},
                    "title": {"type": "string", "description": "What the appointment is for."},
                },
                "required": ["start"],
            }),
        ),
        ToolName::SendConfirmation => (
            "Send the caller a confirmation of the booking by text message.",
            json!({
                "type": "object",
                "properties": {"channel": {"type": "string", "enum": ["sms", "whatsapp"]}},
            }),
        ),
        ToolName::ScheduleCallback => (
            "Arrange for the caller to be called back, at the time they asked for or as \
             soon as possible.",
            json!({
                "type": "object",
                "properties": {"at": {"type": "string", "description": local}},
            }),
        ),
        ToolName::TransferToHuman => (
            "Hand the caller to a person: when they ask for one, in an emergency, or when \
             you cannot help. Tell the caller first; the call is passed on after your reply.",
            json!({
                "type": "object",
                "properties": {
                    "mode": {"type": "string", "enum": ["warm", "cold"]},
                    "reason": {"type": "string"},
                },
                "required": ["reason"],
            }),
        ),
        ToolName::EndCall => (
            "End the call after your goodbye, once the conversation is over.",
            json!({
                "type": "object",
                "properties": {
                    "outcome": {
                        "type": "string",
                        "description": "What the call came to, e.g. not_interested, \
                                        wrong_number, callback_requested, booked.",
                    },
                },
            }),
        ),
    };
    Some(ToolSpec {
        name: tool_id(tool).to_owned(),
        description: description.to_owned(),
        parameters,
    })
}

// Required fields are options too, so that a missing one is named like any other.
#[derive(Deserialize)]
struct AvailabilityArgs {
    date: Option<String>,
}

#[derive(Deserialize)]
struct BookArgs {
    start: Option<String>,
    duration_minutes: Option<u32>,
    kind: Option<MeetingKind>,
    title: Option<String>,
}

#[derive(Deserialize)]
struct ConfirmArgs {
    channel: Option<Channel>,
}

#[derive(Deserialize)]
struct CallbackArgs {
    at: Option<String>,
}

#[derive(Deserialize)]
struct TransferArgs {
    mode: Option<TransferMode>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct EndArgs {
    outcome: Option<String>,
}

/// The arguments as `T`; the error names the field that does not fit.
fn parse<T: serde::de::DeserializeOwned>(args: Value) -> Result<T, String> {
    serde_path_to_error::deserialize(args).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => e.inner().to_string(),
            _ => format!("{path}: {}", e.inner()),
        }
    })
}

/// A required argument's value; missing or `null` is an error naming it.
fn required<T>(field: &str, value: Option<T>) -> Result<T, String> {
    value.ok_or_else(|| format!("{field}: required"))
}

/// A local date and time as a model writes it.
fn local_time(field: &str, text: &str) -> Result<NaiveDateTime, String> {
    let text = text.trim();
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .ok_or_else(|| format!("{field}: expected YYYY-MM-DDTHH:MM"))
}

/// The closing time of the open stretch `start` falls in, when it comes before `end`;
/// `None` when it is open all the way (always, for an agent with no hours). Spans that
/// touch or overlap run on into each other, and a day open to its last minute runs on
/// into a next day that opens at midnight.
fn closes_before(hours: &Week, start: NaiveDateTime, end: NaiveDateTime) -> Option<NaiveDateTime> {
    if hours.is_empty() {
        return None;
    }
    let mut open_until = start;
    while open_until < end {
        let date = open_until.date();
        let time = open_until.time();
        let further = hours
            .day(date.weekday())
            .iter()
            .filter(|s| s.open <= time && time < s.close)
            .map(|s| s.close)
            .max();
        if let Some(close) = further {
            open_until = date.and_time(close);
            continue;
        }
        let midnight = date.succ_opt()?.and_time(NaiveTime::MIN);
        if midnight - open_until <= Duration::minutes(1) && hours.is_open_at(midnight) {
            open_until = midnight;
        } else {
            return Some(open_until);
        }
    }
    None
}

/// `spans` with `taken` cut out of them, in order.
fn cut(
    mut spans: Vec<Stretch<NaiveDateTime>>,
    taken: &[Stretch<NaiveDateTime>],
) -> Vec<Stretch<NaiveDateTime>> {
    for (busy_from, busy_to) in taken {
        spans = spans
            .into_iter()
            .flat_map(|(open, close)| {
                let before = (open, close.min(*busy_from));
                let after = (open.max(*busy_to), close);
                [before, after]
            })
            .filter(|(open, close)| open < close)
            .collect();
    }
    spans.sort();
    spans
}

/// The free spans of `date`: its opening hours (all day for an agent with none) less
/// what has passed and the agent's appointments; the next free time when none is left.
async fn availability(scope: &CallScope, date: &str) -> Result<String, String> {
    let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
        .map_err(|_| "date: expected YYYY-MM-DD".to_owned())?;
    let now = scope.local_now();
    if day < now.date() {
        return Ok(format!("{day} has passed"));
    }
    let hours = &scope.hours;
    let midnight = day.and_time(NaiveTime::MIN);
    let next_midnight = midnight + Duration::days(1);
    let spans: Vec<Stretch<NaiveDateTime>> = match hours.is_empty() {
        true => vec![(midnight, next_midnight)],
        false => hours
            .day(day.weekday())
            .iter()
            .map(|s| (day.and_time(s.open), day.and_time(s.close)))
            .collect(),
    };
    // Today, only what is left of the day is open to offer.
    let left: Vec<Stretch<NaiveDateTime>> = spans
        .iter()
        .map(|(open, close)| (*open.max(&now), *close))
        .filter(|(open, close)| open < close)
        .collect();
    let longest = Duration::minutes(i64::from(*DURATION_MINUTES.end()));
    let taken: Vec<Stretch<NaiveDateTime>> = scope
        .taken(
            scope.to_utc(midnight) - longest,
            scope.to_utc(next_midnight),
        )
        .await?
        .into_iter()
        .map(|(start, end)| (scope.to_local(start), scope.to_local(end)))
        .collect();
    if hours.is_empty() && taken.is_empty() {
        return Ok(format!("{day}: open all day"));
    }
    let free = cut(left.clone(), &taken);
    if !free.is_empty() {
        let open: Vec<String> = free
            .iter()
            .map(|(open, close)| {
                let close = match *close == next_midnight {
                    true => "24:00".to_owned(),
                    false => close.format("%H:%M").to_string(),
                };
                format!("{}–{close}", open.format("%H:%M"))
            })
            .collect();
        return Ok(format!("{day}: open {}", open.join(", ")));
    }
    let closed = match (left.is_empty(), spans.is_empty()) {
        // Open hours remain, but every minute of them is booked.
        (false, _) => "fully booked",
        (true, false) if day == now.date() => "closed for the rest of the day",
        _ => "closed",
    };
    let from = midnight.max(now);
    let length = Duration::minutes(i64::from(DEFAULT_MEETING_MINUTES));
    let taken = scope.taken_around(from).await?;
    Ok(match scope.nearest_free(from, length, &taken) {
        Some(free) if left.is_empty() => {
            format!("{day}: {closed}; the next opening is {}", scope.offer(free))
        }
        Some(free) => format!(
            "{day}: {closed}; the next free time is {}",
            scope.offer(free)
        ),
        None => format!("{day}: {closed}"),
    })
}
