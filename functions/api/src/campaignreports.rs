//! What a campaign has done so far, read from its lead views: the leads page by page
//! (filtered by status and temperature), the campaign's analytics, and an export of
//! every call it placed (CSV or JSON).
//!
//! Every number here comes from the `leads` views (one per lead, with its attempts and
//! dial state), so the reports agree with the lead list by construction. The tenant
//! reads its own campaigns and the admin reads any; another tenant's campaign is 404.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use parley_shared::domain::call::CallStatus;
use parley_shared::domain::lead::{LeadStatus, Temperature};
use parley_shared::domain::{CampaignId, TenantId};
use parley_shared::leadviews::{leads_partition, leads_status_partition};
use parley_shared::readmodel::{Index, MAX_PAGE, Query as ViewQuery, View};
use parley_shared::views::CALLS;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Caller;
use crate::campaigns::visible;
use crate::error::ApiError;
use crate::{AppState, Page, PageParams, fill_page};

// ---------------------------------------------------------------------------------
// The lead view body, as `parley_shared::leadviews::lead_json` writes it.
// ---------------------------------------------------------------------------------

/// The parts of a lead view the reports read.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LeadBody {
    id: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    name: Option<String>,
    status: LeadStatus,
    #[serde(default)]
    temperature: Option<Temperature>,
    #[serde(default)]
    do_not_call: bool,
    #[serde(default)]
    attempts: Vec<AttemptBody>,
    dial: DialBody,
}

#[derive(Clone, Debug, Deserialize)]
struct AttemptBody {
    attempt: u32,
    call_id: String,
    /// The call's final status; `None` while the attempt is in flight.
    #[serde(default)]
    status: Option<CallStatus>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    duration_secs: Option<u32>,
    #[serde(default)]
    answered_by_machine: bool,
}

#[derive(Clone, Debug, Deserialize)]
struct DialBody {
    state: DialState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DialState {
    Waiting,
    Calling,
    Resolved,
}

/// How one call of a campaign ended, as the reports count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    /// A person answered.
    Answered,
    /// The call completed but a machine answered.
    Voicemail,
    NoAnswer,
    Busy,
    /// Failed or canceled.
    Failed,
    /// Not ended yet.
    InProgress,
}

impl AttemptBody {
    fn outcome(&self) -> Outcome {
        match self.status {
            Some(CallStatus::Completed) if self.answered_by_machine => Outcome::Voicemail,
            Some(CallStatus::Completed) => Outcome::Answered,
            Some(CallStatus::NoAnswer) => Outcome::NoAnswer,
            Some(CallStatus::Busy) => Outcome::Busy,
            Some(CallStatus::Failed | CallStatus::Canceled) => Outcome::Failed,
            // An attempt only ends with a final status; anything else is still going.
            None
            | Some(
                CallStatus::Requested
                | CallStatus::Queued
                | CallStatus::Initiated
                | CallStatus::Ringing
                | CallStatus::InProgress,
            ) => Outcome::InProgress,
        }
    }
}

/// A lead view's body, or a 500 naming the view in the log: our own projection wrote
/// it, so a body that does not decode is corruption, not bad input.
fn decode_lead(view: &View) -> Result<LeadBody, ApiError> {
    serde_json::from_value(view.body.clone()).map_err(|e| {
        tracing::error!(key = %view.key, error = %e, "lead view does not decode");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    })
}

/// A value as the API spells it (`"hot"`, `"QUALIFIED"`), from a query parameter.
fn from_wire<T: DeserializeOwned>(value: &str) -> Option<T> {
    serde_json::from_value(Value::String(value.to_owned())).ok()
}

/// A query parameter that was given and not left blank (`?status=` means no filter).
fn given(param: &Option<String>) -> Option<&str> {
    param.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

// ---------------------------------------------------------------------------------
// Reading the campaign's leads
// ---------------------------------------------------------------------------------

/// Every lead of a campaign, a store page at a time, so that the analytics hold one
/// page in memory however large the campaign.
struct LeadScan {
    tenant: String,
    query: ViewQuery,
    done: bool,
}

impl LeadScan {
    fn new(campaign: &CampaignId, tenant: &TenantId) -> Self {
        let mut query = ViewQuery::new(Index::First, leads_partition(campaign));
        query.limit = MAX_PAGE;
        LeadScan {
            tenant: tenant.to_string(),
            query,
            done: false,
        }
    }

    /// The next page of leads, `None` after the last.
    async fn next_page(&mut self, state: &AppState) -> Result<Option<Vec<LeadBody>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let page = state.ports.views.query(&self.query).await?;
        match page.next {
            Some(next) => self.query.cursor = Some(next),
            None => self.done = true,
        }
        let mut leads = Vec::with_capacity(page.views.len());
        for view in &page.views {
            let lead = decode_lead(view)?;
            // The partition is the campaign's, and the campaign is the tenant's; this
            // only keeps a mis-projected view from crossing tenants.
            if lead.tenant_id.as_deref() == Some(self.tenant.as_str()) {
                leads.push(lead);
            }
        }
        Ok(Some(leads))
    }
}

// ---------------------------------------------------------------------------------
// GET /v1/campaigns/{id}/leads
// ---------------------------------------------------------------------------------

/// `?status=&temperature=` on the lead list.
#[derive(Debug, Deserialize)]
pub struct LeadFilter {
    status: Option<String>,
    temperature: Option<String>,
}

impl LeadFilter {
    fn status(&self) -> Result<Option<LeadStatus>, ApiError> {
        given(&self.status)
            .map(|s| {
                from_wire(s).ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "must be NEW, CONTACTED, QUALIFIED, MEETING_SCHEDULED, CLOSED_WON or CLOSED_LOST",
                    )
                })
            })
            .transpose()
    }

    fn temperature(&self) -> Result<Option<Temperature>, ApiError> {
        given(&self.temperature)
            .map(|t| {
                from_wire(t)
                    .ok_or_else(|| ApiError::invalid("temperature", "must be hot, warm or cold"))
            })
            .transpose()
    }
}

/// `GET /v1/campaigns/{id}/leads`: the campaign's leads in lead id order. `status`
/// uses its own index; `temperature` is filtered while reading, and the page is filled
/// up to `limit` from further store pages (at most [`MAX_FILL_PAGES`]), so a short
/// page with a `next_cursor` means the scan stopped early, not that nothing is left.
pub async fn leads(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
    Query(filter): Query<LeadFilter>,
) -> Result<Json<Page>, ApiError> {
    let (campaign_id, _, _) = visible(&state, &caller, &id).await?;
    let query = match filter.status()? {
        Some(status) => ViewQuery::new(Index::Second, leads_status_partition(&campaign_id, status)),
        None => ViewQuery::new(Index::First, leads_partition(&campaign_id)),
    };
    let query = page.query(query)?;
    let temperature = filter.temperature()?;
    let keep = |view: &View| {
        let has = view.body.get("temperature").and_then(Value::as_str);
        temperature.is_none() || has.and_then(from_wire::<Temperature>) == temperature
    };
    Ok(Json(Page::from(fill_page(&state, query, keep).await?)))
}

// ---------------------------------------------------------------------------------
// GET /v1/campaigns/{id}/analytics
// ---------------------------------------------------------------------------------

/// A campaign's numbers, from its lead views.
#[derive(Debug, PartialEq, Serialize)]
pub(crate) struct Analytics {
    campaign_id: String,
    leads: LeadCounts,
    calls: CallCounts,
    /// Answered calls over ended calls; `None` until a call has ended.
    answer_rate: Option<f64>,
    talk_time_secs: TalkTime,
    temperature: TemperatureCounts,
    /// Calls started per day, in the campaign's time zone, oldest first.
    calls_per_day: Vec<DayCount>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
struct LeadCounts {
    total: u64,
    /// At least one attempt started.
    called: u64,
    /// A person answered at least one attempt.
    answered: u64,
    resolved: u64,
    waiting: u64,
    calling: u64,
    do_not_call: u64,
}

#[derive(Debug, Default, PartialEq, Serialize)]
struct CallCounts {
    total: u64,
    answered: u64,
    voicemail: u64,
    no_answer: u64,
    busy: u64,
    failed: u64,
    in_progress: u64,
}

#[derive(Debug, PartialEq, Serialize)]
struct TalkTime {
    /// Seconds of answered calls (a machine's time is not talk).
    total: u64,
    /// Over the answered calls whose duration the carrier reported.
    average: Option<f64>,
}

#[derive(Debug, Default, PartialEq, Serialize)]
struct TemperatureCounts {
    hot: u64,
    warm: u64,
    cold: u64,
}

#[derive(Debug, PartialEq, Serialize)]
struct DayCount {
    date: String,
    calls: u64,
}

/// The analytics folded over leads one at a time: pure, no I/O. `Z` is the campaign's
/// time zone, in which calls are dated.
#[derive(Debug)]
pub(crate) struct Tally<Z: chrono::TimeZone> {
    zone: Z,
    leads: LeadCounts,
    calls: CallCounts,
    talk_secs: u64,
    timed_answers: u64,
    temperature: TemperatureCounts,
    per_day: BTreeMap<NaiveDate, u64>,
}

impl<Z: chrono::TimeZone> Tally<Z> {
    /// An empty tally that dates calls in `zone` (the campaign's).
    pub(crate) fn new(zone: Z) -> Self {
        Tally {
            zone,
            leads: LeadCounts::default(),
            calls: CallCounts::default(),
            talk_secs: 0,
            timed_answers: 0,
            temperature: TemperatureCounts::default(),
            per_day: BTreeMap::new(),
        }
    }

    pub(crate) fn add(&mut self, lead: &LeadBody) {
        self.add_lead(lead);
        for attempt in &lead.attempts {
            self.add_call(attempt);
        }
    }

    fn add_lead(&mut self, lead: &LeadBody) {
        let counts = &mut self.leads;
        counts.total += 1;
        counts.called += u64::from(!lead.attempts.is_empty());
        let answered = lead
            .attempts
            .iter()
            .any(|a| a.outcome() == Outcome::Answered);
        counts.answered += u64::from(answered);
        counts.do_not_call += u64::from(lead.do_not_call);
        match lead.dial.state {
            DialState::Waiting => counts.waiting += 1,
            DialState::Calling => counts.calling += 1,
            DialState::Resolved => counts.resolved += 1,
        }
        match lead.temperature {
            Some(Temperature::Hot) => self.temperature.hot += 1,
            Some(Temperature::Warm) => self.temperature.warm += 1,
            Some(Temperature::Cold) => self.temperature.cold += 1,
            None => {}
        }
    }

    fn add_call(&mut self, attempt: &AttemptBody) {
        let calls = &mut self.calls;
        calls.total += 1;
        match attempt.outcome() {
            Outcome::Answered => {
                calls.answered += 1;
                if let Some(secs) = attempt.duration_secs {
                    self.talk_secs += u64::from(secs);
                    self.timed_answers += 1;
                }
            }
            Outcome::Voicemail => calls.voicemail += 1,
            Outcome::NoAnswer => calls.no_answer += 1,
            Outcome::Busy => calls.busy += 1,
            Outcome::Failed => calls.failed += 1,
            Outcome::InProgress => calls.in_progress += 1,
        }
        // Attempts recorded before start times were kept have no day to count on.
        if let Some(started) = attempt.started_at {
            let day = started.with_timezone(&self.zone).date_naive();
            *self.per_day.entry(day).or_default() += 1;
        }
    }

    pub(crate) fn finish(self, campaign: &CampaignId) -> Analytics {
        let ended = self.calls.total - self.calls.in_progress;
        let answer_rate = (ended > 0).then(|| self.calls.answered as f64 / ended as f64);
        let average =
            (self.timed_answers > 0).then(|| self.talk_secs as f64 / self.timed_answers as f64);
        Analytics {
            campaign_id: campaign.to_string(),
            leads: self.leads,
            calls: self.calls,
            answer_rate,
            talk_time_secs: TalkTime {
                total: self.talk_secs,
                average,
            },
            temperature: self.temperature,
            calls_per_day: self
                .per_day
                .into_iter()
                .map(|(day, calls)| DayCount {
                    date: day.format("%Y-%m-%d").to_string(),
                    calls,
                })
                .collect(),
        }
    }
}

/// `GET /v1/campaigns/{id}/analytics`.
pub async fn analytics(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Analytics>, ApiError> {
    let (campaign_id, tenant, campaign) = visible(&state, &caller, &id).await?;
    // Every campaign is created with its settings; one without is not one to report on.
    let settings = campaign
        .settings
        .as_ref()
        .ok_or_else(|| ApiError::not_found("campaign"))?;
    let mut tally = Tally::new(settings.time_zone.tz());
    let mut scan = LeadScan::new(&campaign_id, &tenant);
    while let Some(leads) = scan.next_page(&state).await? {
        leads.iter().for_each(|lead| tally.add(lead));
    }
    Ok(Json(tally.finish(&campaign_id)))
}

// ---------------------------------------------------------------------------------
// GET /v1/campaigns/{id}/export
// ---------------------------------------------------------------------------------

/// The export's columns, in order; the JSON rows have the same keys.
const COLUMNS: [&str; 15] = [
    "lead_id",
    "phone",
    "name",
    "attempt",
    "attempts",
    "call_id",
    "status",
    "outcome",
    "started_at",
    "ended_at",
    "duration_secs",
    "lead_status",
    "temperature",
    "recording_url",
    "transcript_url",
];

/// One call of the campaign, with its lead.
#[derive(Debug, Serialize)]
struct ExportRow {
    lead_id: String,
    phone: Option<String>,
    name: Option<String>,
    attempt: u32,
    /// How many attempts the lead has had in all.
    attempts: usize,
    call_id: String,
    status: Option<CallStatus>,
    outcome: Outcome,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    duration_secs: Option<u32>,
    lead_status: LeadStatus,
    temperature: Option<Temperature>,
    /// Links to the call's recording and transcript, signed as the export is made.
    recording_url: Option<String>,
    transcript_url: Option<String>,
}

/// The export rows of one lead (one per attempt), without links yet.
fn rows_of(lead: &LeadBody) -> Vec<ExportRow> {
    lead.attempts
        .iter()
        .map(|a| ExportRow {
            lead_id: lead.id.clone(),
            phone: lead.phone.clone(),
            name: lead.name.clone(),
            attempt: a.attempt,
            attempts: lead.attempts.len(),
            call_id: a.call_id.clone(),
            status: a.status,
            outcome: a.outcome(),
            started_at: a.started_at,
            ended_at: a.ended_at,
            duration_secs: a.duration_secs,
            lead_status: lead.status,
            temperature: lead.temperature,
            recording_url: None,
            transcript_url: None,
        })
        .collect()
}

/// The row's CSV cells, in [`COLUMNS`] order, spelled as in the JSON export and
/// guarded against formulas.
fn csv_cells(row: &ExportRow) -> Vec<String> {
    // Plain fields and string-named enums: serialising cannot fail.
    let json = serde_json::to_value(row).unwrap_or_default();
    COLUMNS
        .iter()
        .map(|column| match json.get(*column) {
            Some(Value::String(text)) => defuse(text),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        })
        .collect()
}

/// A text cell that a spreadsheet would run as a formula gets a leading `'`, so that
/// a lead named `=HYPERLINK(…)` is shown, not followed. E.164 numbers (`+` then
/// digits) are numbers, not formulas, and stay as they are.
fn defuse(text: &str) -> String {
    let e164 =
        text.len() > 1 && text.starts_with('+') && text[1..].bytes().all(|b| b.is_ascii_digit());
    let risky = text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !e164 {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// `?format=` on the export.
#[derive(Debug, Deserialize)]
pub struct ExportParams {
    format: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
}

impl ExportParams {
    fn format(&self) -> Result<Format, ApiError> {
        match given(&self.format) {
            None | Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            Some(_) => Err(ApiError::invalid("format", "must be csv or json")),
        }
    }
}

/// `GET /v1/campaigns/{id}/export?format=csv|json`: one row per call, leads never
/// called left out, in lead id then attempt order.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let (campaign_id, tenant, _) = visible(&state, &caller, &id).await?;
    let format = params.format()?;
    let mut rows = Vec::new();
    let mut scan = LeadScan::new(&campaign_id, &tenant);
    while let Some(leads) = scan.next_page(&state).await? {
        for lead in &leads {
            for mut row in rows_of(lead) {
                (row.recording_url, row.transcript_url) =
                    media_links(&state, &caller, &tenant, &row.call_id).await?;
                rows.push(row);
            }
        }
    }
    match format {
        Format::Json => Ok(Json(serde_json::json!({ "rows": rows })).into_response()),
        Format::Csv => csv_response(&campaign_id, &rows),
    }
}

/// Links to the recording and transcript of `call_id`, if its call view has them. The
/// admin never sees recordings or transcripts (see [`Caller::Admin`]), and a view of
/// another tenant's call is ignored.
async fn media_links(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    call_id: &str,
) -> Result<(Option<String>, Option<String>), ApiError> {
    if matches!(caller, Caller::Admin) {
        return Ok((None, None));
    }
    let Some(view) = state.ports.views.get(CALLS, call_id).await? else {
        return Ok((None, None));
    };
    if view.body.get("tenant_id").and_then(Value::as_str) != Some(&tenant.to_string()) {
        return Ok((None, None));
    }
    Ok((
        crate::calls::signed(state, tenant, &view.body["recording_key"]).await?,
        crate::calls::signed(state, tenant, &view.body["transcript_key"]).await?,
    ))
}

fn csv_response(campaign: &CampaignId, rows: &[ExportRow]) -> Result<Response, ApiError> {
    let failed = |e: &dyn std::fmt::Display| {
        tracing::error!(error = %e, "export CSV failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    };
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(COLUMNS).map_err(|e| failed(&e))?;
    for row in rows {
        out.write_record(csv_cells(row)).map_err(|e| failed(&e))?;
    }
    let bytes = out.into_inner().map_err(|e| failed(&e))?;
    let disposition = format!("attachment; filename=\"campaign-{campaign}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone as _;
    use parley_shared::domain::dialplan::{Dial, Resolution};
    use parley_shared::domain::lead::{Attempt, Lead};
    use parley_shared::domain::{CallId, LeadId, PhoneNumber, TimeZone};
    use parley_shared::leadviews::lead_json;
    use serde_json::json;

    use super::*;

    fn at(h: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, h, 0, 0).unwrap()
    }

    fn attempt(
        number: u32,
        outcome: Option<CallStatus>,
        secs: Option<u32>,
        machine: bool,
        started: DateTime<Utc>,
    ) -> Attempt {
        Attempt {
            number,
            call_id: CallId::new(),
            outcome,
            started_at: Some(started),
            ended_at: outcome.map(|_| started + chrono::Duration::minutes(2)),
            duration_secs: secs,
            machine,
        }
    }

    /// A lead view body exactly as the projection writes it.
    fn lead(
        phone: &str,
        attempts: Vec<Attempt>,
        temperature: Option<Temperature>,
        dial: Dial,
    ) -> LeadBody {
        let tenant = TenantId::new();
        let lead = Lead {
            exists: true,
            campaign_id: Some(CampaignId::new()),
            phone: PhoneNumber::parse(phone).ok(),
            name: Some("Ann".into()),
            time_zone: None,
            fields: BTreeMap::new(),
            status: LeadStatus::New,
            attempts,
            temperature,
            score: None,
            do_not_call: matches!(dial, Dial::Resolved(Resolution::DoNotCall)),
            ..Lead::default()
        };
        let mut body = lead_json(&LeadId::new(), &tenant, &lead, &dial);
        body["stream_version"] = json!(7);
        serde_json::from_value(body).unwrap()
    }

    /// The analytics of `leads` for `campaign`, dating calls in `zone`.
    fn analytics_of<Z: chrono::TimeZone>(
        campaign: &CampaignId,
        zone: Z,
        leads: &[LeadBody],
    ) -> Analytics {
        let mut tally = Tally::new(zone);
        for lead in leads {
            tally.add(lead);
        }
        tally.finish(campaign)
    }

    fn waiting() -> Dial {
        Dial::Due {
            attempt: 2,
            at: at(10, 9),
        }
    }

    #[test]
    fn a_known_mix_adds_up() {
        use CallStatus::*;
        // 03:30 UTC on the 3rd is still the 2nd in New York.
        let late = Utc.with_ymd_and_hms(2026, 3, 3, 3, 30, 0).unwrap();
        let leads = vec![
            lead(
                "+14155550101",
                vec![attempt(1, Some(Completed), Some(120), false, at(14, 2))],
                Some(Temperature::Hot),
                Dial::Resolved(Resolution::Answered),
            ),
            lead(
                "+14155550102",
                vec![attempt(1, Some(Completed), Some(25), true, at(14, 2))],
                None,
                waiting(),
            ),
            lead(
                "+14155550103",
                vec![
                    attempt(1, Some(Busy), None, false, at(14, 2)),
                    attempt(2, Some(Completed), Some(60), false, at(15, 3)),
                ],
                Some(Temperature::Cold),
                Dial::Resolved(Resolution::Answered),
            ),
            lead(
                "+14155550104",
                vec![
                    attempt(1, Some(NoAnswer), None, false, late),
                    attempt(2, Some(Canceled), None, false, at(15, 3)),
                ],
                None,
                Dial::Resolved(Resolution::Failed),
            ),
            lead(
                "+14155550105",
                vec![],
                None,
                Dial::Resolved(Resolution::DoNotCall),
            ),
            lead(
                "+14155550106",
                vec![attempt(1, None, None, false, at(15, 3))],
                Some(Temperature::Warm),
                Dial::InFlight {
                    attempt: 1,
                    call_id: CallId::new(),
                    since: Some(at(15, 3)),
                },
            ),
        ];
        let campaign = CampaignId::new();
        let zone = TimeZone::parse("America/New_York").unwrap().tz();
        let got = serde_json::to_value(analytics_of(&campaign, zone, &leads)).unwrap();
        assert_eq!(
            got,
            json!({
                "campaign_id": campaign.to_string(),
                "leads": {"total": 6, "called": 5, "answered": 2, "resolved": 4, "waiting": 1, "calling": 1, "do_not_call": 1},
                "calls": {"total": 7, "answered": 2, "voicemail": 1, "no_answer": 1, "busy": 1, "failed": 1, "in_progress": 1},
                "answer_rate": 2.0 / 6.0,
                "talk_time_secs": {"total": 180, "average": 90.0},
                "temperature": {"hot": 1, "warm": 1, "cold": 1},
                "calls_per_day": [{"date": "2026-03-02", "calls": 4}, {"date": "2026-03-03", "calls": 3}],
            })
        );
    }

    #[test]
    fn no_calls_means_no_rates() {
        let campaign = CampaignId::new();
        let zone = TimeZone::parse("Europe/London").unwrap().tz();
        let none = analytics_of(&campaign, zone, &[]);
        assert_eq!(none.answer_rate, None);
        assert_eq!(
            none.talk_time_secs,
            TalkTime {
                total: 0,
                average: None
            }
        );
        assert!(none.calls_per_day.is_empty());
        // Only a call in flight: nothing has ended yet.
        let flying = lead(
            "+14155550106",
            vec![attempt(1, None, None, false, at(9, 2))],
            None,
            waiting(),
        );
        let one = analytics_of(&campaign, zone, &[flying]);
        assert_eq!((one.calls.in_progress, one.answer_rate), (1, None));
    }

    #[test]
    fn an_answered_call_without_a_duration_does_not_drag_the_average() {
        use CallStatus::Completed;
        let leads = vec![
            lead(
                "+14155550101",
                vec![attempt(1, Some(Completed), Some(100), false, at(9, 2))],
                None,
                waiting(),
            ),
            lead(
                "+14155550102",
                vec![attempt(1, Some(Completed), None, false, at(9, 2))],
                None,
                waiting(),
            ),
        ];
        let got = analytics_of(&CampaignId::new(), Utc, &leads);
        assert_eq!(got.calls.answered, 2);
        assert_eq!(
            got.talk_time_secs,
            TalkTime {
                total: 100,
                average: Some(100.0)
            }
        );
    }

    #[test]
    fn formulas_are_defused_but_phone_numbers_are_not() {
        for (text, want) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1+2", "'+1+2"),
            ("+", "'+"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("+14155550101", "+14155550101"),
            ("Ann = Bob", "Ann = Bob"),
            ("", ""),
        ] {
            assert_eq!(defuse(text), want, "{text:?}");
        }
    }

    #[test]
    fn csv_cells_follow_the_json_keys() {
        let mut rows = rows_of(&lead(
            "+14155550101",
            vec![attempt(
                1,
                Some(CallStatus::Completed),
                Some(25),
                true,
                at(9, 2),
            )],
            Some(Temperature::Hot),
            waiting(),
        ));
        let row = rows.remove(0);
        let json = serde_json::to_value(&row).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut columns = COLUMNS.to_vec();
        columns.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, columns);
        let cells = csv_cells(&row);
        assert_eq!(cells[1], "+14155550101");
        assert_eq!(cells[3..5], ["1", "1"]);
        assert_eq!(cells[6..8], ["completed", "voicemail"]);
        assert_eq!(cells[8], json["started_at"].as_str().unwrap());
        assert_eq!(cells[10..13], ["25", "NEW", "hot"]);
        assert_eq!(cells[13..], ["", ""]);
    }

    #[test]
    fn params_name_their_field() {
        let filter = LeadFilter {
            status: Some("WON".into()),
            temperature: Some("tepid".into()),
        };
        assert_eq!(
            filter.status().unwrap_err().field.as_deref(),
            Some("status")
        );
        assert_eq!(
            filter.temperature().unwrap_err().field.as_deref(),
            Some("temperature")
        );
        let fine = LeadFilter {
            status: Some("CLOSED_WON".into()),
            temperature: Some("".into()),
        };
        assert_eq!(fine.status().unwrap(), Some(LeadStatus::ClosedWon));
        assert_eq!(fine.temperature().unwrap(), None);
        let xml = ExportParams {
            format: Some("xml".into()),
        };
        assert_eq!(xml.format().unwrap_err().field.as_deref(), Some("format"));
        assert_eq!(ExportParams { format: None }.format().unwrap(), Format::Csv);
    }
}
