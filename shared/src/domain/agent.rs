//! The `agent/<id>` stream: a voice agent's settings. Who it is (name, language,
//! voice), what it says first, how it behaves (prompt, limits, recording), when it
//! answers (business hours in its time zone) and what happens otherwise.

use chrono::{DateTime, Datelike, NaiveDateTime, NaiveTime, Utc, Weekday};
use serde::{Deserialize, Serialize};

use super::values::{PhoneNumber, TimeZone, ValueError, name};
use crate::aggregate::Aggregate;
use crate::event::DomainEvent;
use crate::flow::{Flow, Industry};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    Active,
    Inactive,
    #[default]
    PendingSetup,
}

/// How the carrier's audio reaches the agent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationMode {
    /// Raw audio over a media stream: Parley does speech recognition and synthesis.
    #[default]
    MediaStream,
    /// Twilio ConversationRelay: Twilio does speech, Parley exchanges text.
    ConversationRelay,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceProvider {
    /// The offline engine of the local stack.
    #[default]
    Flite,
    ElevenLabs,
    Cartesia,
    Openai,
    /// Twilio's own voices (ConversationRelay and `<Say>`).
    Twilio,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Voice {
    #[serde(default)]
    pub provider: VoiceProvider,
    #[serde(default)]
    pub voice_id: String,
    #[serde(default = "Voice::default_speed")]
    pub speed: f64,
}

impl Voice {
    fn default_speed() -> f64 {
        1.0
    }
}

impl Default for Voice {
    fn default() -> Self {
        Voice {
            provider: VoiceProvider::Flite,
            voice_id: "slt".into(),
            speed: 1.0,
        }
    }
}

/// One vendor as an agent uses it, where it differs from the deployment's: its own
/// endpoint (a regional one, Groq, a self-hosted OpenAI-compatible server), the tenant's
/// own key, its own model. Anything unset is the deployment's.
///
/// The key is named, never held: settings live in events, and keys only in the secret
/// store, under the tenant (`PUT /v1/tenants/{id}/vendor-keys/{name}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorChoice {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The name of one of the tenant's vendor keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// The vendors an agent chooses for itself; each unset one is the deployment's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentVendors {
    /// Deepgram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_to_text: Option<VendorChoice>,
    /// Any OpenAI-compatible chat-completions server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_model: Option<VendorChoice>,
    /// The vendor of `voice.provider` (ElevenLabs, Cartesia or OpenAI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VendorChoice>,
}

impl AgentVendors {
    pub fn is_empty(&self) -> bool {
        self == &AgentVendors::default()
    }

    /// Every choice with its field path, for checks and lookups.
    pub fn choices(&self) -> impl Iterator<Item = (&'static str, &VendorChoice)> {
        [
            ("vendors.speech_to_text", self.speech_to_text.as_ref()),
            ("vendors.language_model", self.language_model.as_ref()),
            ("vendors.voice", self.voice.as_ref()),
        ]
        .into_iter()
        .filter_map(|(field, choice)| choice.map(|c| (field, c)))
    }
}

/// Whether `name` can name a tenant's vendor key: 1 to 64 of `a-z`, `0-9` and `-`,
/// starting with a letter or digit.
pub fn is_vendor_key_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}

impl VendorChoice {
    /// Checks the choice; errors name `{field}.base_url` and the like.
    fn validated(mut self, field: &'static str) -> Result<Self, ValueError> {
        let invalid = |reason: String| ValueError { field, reason };
        if let Some(raw) = self.base_url.take() {
            let raw = raw.trim();
            let url = reqwest::Url::parse(raw).map_err(|e| invalid(format!("base_url: {e}")))?;
            if !matches!(url.scheme(), "https" | "http" | "wss" | "ws") {
                return Err(invalid(
                    "base_url: must be an https, http, wss or ws URL".into(),
                ));
            }
            // Settings are stored in events: a key in the URL would be a secret in them.
            if !url.username().is_empty() || url.password().is_some() {
                return Err(invalid(
                    "base_url: must not hold credentials; store the key as a vendor key".into(),
                ));
            }
            if url.query().is_some() || url.fragment().is_some() || raw.len() > 500 {
                return Err(invalid(
                    "base_url: must be at most 500 characters, without query or fragment".into(),
                ));
            }
            self.base_url = Some(raw.trim_end_matches('/').to_owned());
        }
        if let Some(key) = &self.key
            && !is_vendor_key_name(key)
        {
            return Err(invalid(format!(
                "key: {key:?} is not a vendor key name (a-z, 0-9 and -, at most 64)"
            )));
        }
        if let Some(model) = self.model.take() {
            let model = model.trim();
            if model.is_empty() || model.len() > 200 || model.chars().any(char::is_control) {
                return Err(invalid(
                    "model: must be 1 to 200 printable characters".into(),
                ));
            }
            self.model = Some(model.to_owned());
        }
        Ok(self)
    }
}

/// What a caller meets when the agent does not answer (inactive, or outside hours).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum AfterHours {
    /// Say `message`, then record a voicemail.
    Voicemail { message: String },
    /// Put the caller through to a person.
    Forward { number: PhoneNumber },
    /// Say `message` and hang up.
    MessageAndHangUp { message: String },
}

impl Default for AfterHours {
    fn default() -> Self {
        AfterHours::Voicemail {
            message:
                "Sorry, we can't take your call right now. Please leave a message after the tone."
                    .into(),
        }
    }
}

/// One opening span of a day, `HH:MM` to `HH:MM` local time, close after open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Span {
    pub open: NaiveTime,
    pub close: NaiveTime,
}

/// When the agent answers: spans per weekday in a time zone. An empty week means
/// always open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    pub time_zone: TimeZone,
    #[serde(default)]
    pub week: Week,
    #[serde(default)]
    pub after_hours: AfterHours,
}

/// Opening spans per weekday; a day left out is closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Week {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub monday: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tuesday: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wednesday: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thursday: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub friday: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saturday: Vec<Span>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sunday: Vec<Span>,
}

impl Week {
    pub fn day(&self, day: Weekday) -> &[Span] {
        match day {
            Weekday::Mon => &self.monday,
            Weekday::Tue => &self.tuesday,
            Weekday::Wed => &self.wednesday,
            Weekday::Thu => &self.thursday,
            Weekday::Fri => &self.friday,
            Weekday::Sat => &self.saturday,
            Weekday::Sun => &self.sunday,
        }
    }

    fn days(&self) -> impl Iterator<Item = (Weekday, &[Span])> {
        [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ]
        .into_iter()
        .map(|d| (d, self.day(d)))
    }

    pub fn is_empty(&self) -> bool {
        self.days().all(|(_, spans)| spans.is_empty())
    }

    /// Whether local time `at` falls inside an opening span; an empty week is always
    /// open.
    pub fn is_open_at(&self, at: NaiveDateTime) -> bool {
        self.is_empty() || {
            let time = at.time();
            self.day(at.weekday())
                .iter()
                .any(|s| s.open <= time && time < s.close)
        }
    }

    /// The first local moment at or after `at` that is open: `at` itself when open,
    /// else the next span's opening within a week; `None` for a week with no spans
    /// that ever open (it cannot happen for a validated week that is not empty).
    pub fn next_open(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        if self.is_open_at(at) {
            return Some(at);
        }
        (0..=7).find_map(|days| {
            let date = at.date().checked_add_days(chrono::Days::new(days))?;
            let mut opens: Vec<NaiveTime> =
                self.day(date.weekday()).iter().map(|s| s.open).collect();
            opens.sort();
            opens
                .into_iter()
                .map(|open| date.and_time(open))
                .find(|start| *start >= at)
        })
    }
}

impl BusinessHours {
    /// Whether `at` falls inside an opening span, in the hours' own time zone.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        if self.week.is_empty() {
            return true;
        }
        self.week
            .is_open_at(at.with_timezone(&self.time_zone.tz()).naive_local())
    }
}

impl Default for BusinessHours {
    fn default() -> Self {
        BusinessHours {
            time_zone: TimeZone::parse("UTC").unwrap_or_else(|_| unreachable!("UTC is a zone")),
            week: Week::default(),
            after_hours: AfterHours::default(),
        }
    }
}

/// Everything an agent is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub name: String,
    #[serde(default)]
    pub status: AgentStatus,
    /// BCP 47, such as `en-US`.
    #[serde(default = "AgentSettings::default_language")]
    pub language: String,
    /// Spoken when the agent answers a call; may hold `{lead_name}`-style fields.
    #[serde(default = "AgentSettings::default_inbound_greeting")]
    pub inbound_greeting: String,
    /// Spoken when a call the agent placed is answered.
    #[serde(default = "AgentSettings::default_outbound_greeting")]
    pub outbound_greeting: String,
    /// The agent's own prompt (a template, like the greetings); `None` uses its
    /// industry's default prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// The agent's line of business: it picks the default prompt and, for an agent with
    /// no flow of its own, the scripted flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<Industry>,
    /// Speak from the industry's default prompt even when `system_prompt` is set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_default_prompt: bool,
    /// The agent's scripted flow: its whole brain with no language model, and each
    /// node's scope (prompt and tools) with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<Flow>,
    #[serde(default)]
    pub voice: Voice,
    #[serde(default)]
    pub mode: ConversationMode,
    #[serde(default)]
    pub business_hours: BusinessHours,
    /// People the agent hands callers to, in order of preference.
    #[serde(default)]
    pub escalation_numbers: Vec<PhoneNumber>,
    #[serde(default = "AgentSettings::default_true")]
    pub recording: bool,
    #[serde(default = "AgentSettings::default_max_call_seconds")]
    pub max_call_seconds: u32,
    #[serde(default = "AgentSettings::default_max_turns")]
    pub max_turns: u32,
    /// Vendors of the agent's own choosing, where not the deployment's.
    #[serde(default, skip_serializing_if = "AgentVendors::is_empty")]
    pub vendors: AgentVendors,
}

impl AgentSettings {
    fn default_language() -> String {
        "en-US".into()
    }
    fn default_inbound_greeting() -> String {
        "Hello, thanks for calling. How can I help you today?".into()
    }
    fn default_outbound_greeting() -> String {
        "Hi {lead_name}, this is an automated assistant calling. Do you have a minute?".into()
    }
    fn default_true() -> bool {
        true
    }
    fn default_max_call_seconds() -> u32 {
        900
    }
    fn default_max_turns() -> u32 {
        60
    }

    /// The prompt the agent speaks from (a template): its own, or its industry's.
    pub fn prompt(&self) -> Option<&str> {
        let default = self.industry.map(Industry::prompt);
        match (&self.system_prompt, self.use_default_prompt) {
            (Some(own), false) => Some(own.as_str()),
            _ => default,
        }
    }

    /// The flow the agent follows: its own, or its industry's shipped one.
    pub fn script(&self) -> Option<Flow> {
        self.script_ref().cloned()
    }

    /// [`AgentSettings::script`] without copying it.
    pub fn script_ref(&self) -> Option<&Flow> {
        self.flow
            .as_ref()
            .or_else(|| self.industry.map(Flow::shipped))
    }

    /// Settings with this name and every default.
    pub fn named(agent_name: &str) -> Self {
        AgentSettings {
            name: agent_name.into(),
            status: AgentStatus::default(),
            language: Self::default_language(),
            inbound_greeting: Self::default_inbound_greeting(),
            outbound_greeting: Self::default_outbound_greeting(),
            system_prompt: None,
            industry: None,
            use_default_prompt: false,
            flow: None,
            voice: Voice::default(),
            mode: ConversationMode::default(),
            business_hours: BusinessHours::default(),
            escalation_numbers: Vec::new(),
            recording: true,
            max_call_seconds: Self::default_max_call_seconds(),
            max_turns: Self::default_max_turns(),
            vendors: AgentVendors::default(),
        }
    }

    /// Checks every field, naming the first that is wrong (with its path, such as
    /// `business_hours.week.monday[0]`). Returns the settings with names trimmed.
    pub fn validated(mut self) -> Result<Self, ValueError> {
        self.name = name("name", &self.name, 200)?;
        let lang_ok = (2..=35).contains(&self.language.len())
            && self.language.split('-').all(|p| {
                !p.is_empty() && p.len() <= 8 && p.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !lang_ok {
            return Err(ValueError {
                field: "language",
                reason: format!("{:?} is not a BCP 47 tag such as en-US", self.language),
            });
        }
        bounded("inbound_greeting", &self.inbound_greeting, 1000)?;
        bounded("outbound_greeting", &self.outbound_greeting, 1000)?;
        if let Some(prompt) = &self.system_prompt {
            bounded("system_prompt", prompt, 20_000)?;
        }
        if self.use_default_prompt && self.industry.is_none() {
            return Err(ValueError {
                field: "use_default_prompt",
                reason: "needs an industry, whose prompt it is".into(),
            });
        }
        if let Some(flow) = &self.flow {
            flow_fits(flow)?;
        }
        if !(0.5..=2.0).contains(&self.voice.speed) {
            return Err(ValueError {
                field: "voice.speed",
                reason: "must be between 0.5 and 2.0".into(),
            });
        }
        if self.voice.voice_id.len() > 200 {
            return Err(ValueError {
                field: "voice.voice_id",
                reason: "must be at most 200 characters".into(),
            });
        }
        for (day, spans) in self.business_hours.week.days() {
            for span in spans {
                if span.close <= span.open {
                    return Err(ValueError {
                        field: "business_hours.week",
                        reason: format!(
                            "on {day:?} a span closes ({}) before it opens ({})",
                            span.close, span.open
                        ),
                    });
                }
            }
        }
        match &self.business_hours.after_hours {
            AfterHours::Voicemail { message } | AfterHours::MessageAndHangUp { message } => {
                bounded("business_hours.after_hours.message", message, 1000)?;
            }
            AfterHours::Forward { .. } => {}
        }
        if self.escalation_numbers.len() > 10 {
            return Err(ValueError {
                field: "escalation_numbers",
                reason: "at most 10".into(),
            });
        }
        if !(30..=4 * 3600).contains(&self.max_call_seconds) {
            return Err(ValueError {
                field: "max_call_seconds",
                reason: "must be between 30 and 14400".into(),
            });
        }
        if !(1..=500).contains(&self.max_turns) {
            return Err(ValueError {
                field: "max_turns",
                reason: "must be between 1 and 500".into(),
            });
        }
        let vendors = std::mem::take(&mut self.vendors);
        self.vendors = AgentVendors {
            speech_to_text: vendors
                .speech_to_text
                .map(|c| c.validated("vendors.speech_to_text"))
                .transpose()?,
            language_model: vendors
                .language_model
                .map(|c| c.validated("vendors.language_model"))
                .transpose()?,
            voice: vendors
                .voice
                .map(|c| c.validated("vendors.voice"))
                .transpose()?,
        };
        if self.vendors.voice.is_some()
            && matches!(
                self.voice.provider,
                VoiceProvider::Flite | VoiceProvider::Twilio
            )
        {
            return Err(ValueError {
                field: "vendors.voice",
                reason: "the voice's provider (flite or twilio) is not a vendor with an endpoint"
                    .into(),
            });
        }
        Ok(self)
    }
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), ValueError> {
    if value.trim().is_empty() || value.chars().count() > max {
        return Err(ValueError {
            field,
            reason: format!("must be 1 to {max} characters"),
        });
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentEvent {
    AgentCreated {
        settings: AgentSettings,
    },
    /// The whole new settings: an agent's configuration is small and read whole.
    AgentSettingsChanged {
        settings: AgentSettings,
    },
    AgentDeleted,
    #[serde(other)]
    Unknown,
}

impl DomainEvent for AgentEvent {
    const CATEGORY: &'static str = "agent";
    const SCHEMA_VERSION: u32 = 1;

    fn is_unknown(&self) -> bool {
        matches!(self, AgentEvent::Unknown)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AgentCommand {
    Create { settings: AgentSettings },
    Change { settings: AgentSettings },
    Delete,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentError {
    #[error("the agent already exists")]
    AlreadyExists,
    #[error("the agent does not exist")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValueError),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Agent {
    pub exists: bool,
    pub deleted: bool,
    pub settings: Option<AgentSettings>,
}

impl Aggregate for Agent {
    type Event = AgentEvent;
    type Command = AgentCommand;
    type Error = AgentError;

    fn handle(
        &self,
        command: AgentCommand,
        _now: DateTime<Utc>,
    ) -> Result<Vec<AgentEvent>, AgentError> {
        match command {
            AgentCommand::Create { .. } if self.exists => Err(AgentError::AlreadyExists),
            AgentCommand::Create { settings } => Ok(vec![AgentEvent::AgentCreated {
                settings: settings.validated()?,
            }]),
            _ if !self.exists || self.deleted => Err(AgentError::NotFound),
            AgentCommand::Change { settings } => {
                let settings = settings.validated()?;
                if self.settings.as_ref() == Some(&settings) {
                    return Ok(vec![]);
                }
                Ok(vec![AgentEvent::AgentSettingsChanged { settings }])
            }
            AgentCommand::Delete => Ok(vec![AgentEvent::AgentDeleted]),
        }
    }

    fn apply(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::AgentCreated { settings }
            | AgentEvent::AgentSettingsChanged { settings } => {
                self.exists = true;
                self.settings = Some(settings.clone());
            }
            AgentEvent::AgentDeleted => self.deleted = true,
            AgentEvent::Unknown => {}
        }
    }
}

/// An agent's flow is kept whole in its events: valid, and small enough for an event
/// store item (DynamoDB's limit is 400 KB a record).
fn flow_fits(flow: &Flow) -> Result<(), ValueError> {
    flow.validate().map_err(|e| ValueError {
        field: "flow",
        reason: e.to_string(),
    })?;
    let size = serde_json::to_vec(flow).map_or(usize::MAX, |json| json.len());
    if size > MAX_FLOW_BYTES {
        return Err(ValueError {
            field: "flow",
            reason: format!("is {size} bytes as JSON; at most {MAX_FLOW_BYTES}"),
        });
    }
    Ok(())
}

/// The largest flow an agent may hold, as JSON.
pub const MAX_FLOW_BYTES: usize = 128 * 1024;

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;
    use crate::domain::testing::{given, when};

    fn span(open: &str, close: &str) -> Span {
        Span {
            open: open.parse().unwrap(),
            close: close.parse().unwrap(),
        }
    }

    #[test]
    fn settings_parse_with_defaults_and_validate() {
        let settings: AgentSettings =
            serde_json::from_value(serde_json::json!({"name": "  Riley "})).unwrap();
        let settings = settings.validated().unwrap();
        assert_eq!(settings.name, "Riley");
        assert_eq!(settings.language, "en-US");
        assert!(settings.recording);
        assert_eq!(settings.status, AgentStatus::PendingSetup);
    }

    #[test]
    fn the_prompt_and_flow_come_from_the_agent_or_its_industry() {
        let mut settings = AgentSettings::named("Riley");
        assert_eq!((settings.prompt(), settings.script()), (None, None));
        settings.industry = Some(Industry::RealEstate);
        assert_eq!(settings.prompt(), Some(Industry::RealEstate.prompt()));
        assert_eq!(
            settings.script(),
            Some(Flow::default_for(Industry::RealEstate))
        );
        settings.system_prompt = Some("Be brief.".into());
        assert_eq!(settings.prompt(), Some("Be brief."));
        settings.use_default_prompt = true;
        assert_eq!(settings.prompt(), Some(Industry::RealEstate.prompt()));
        let own = Flow::default_for(Industry::Appointments);
        settings.flow = Some(own.clone());
        assert_eq!(settings.script(), Some(own));
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(json["industry"], "real_estate");
        let back: AgentSettings = serde_json::from_value(json).unwrap();
        assert_eq!(back.validated().unwrap(), settings);
    }

    #[test]
    fn a_flow_must_be_valid_and_fit_an_event() {
        let mut settings = AgentSettings::named("Riley");
        let mut flow = Flow::default_for(Industry::Appointments);
        flow.start = "nowhere".into();
        settings.flow = Some(flow);
        let err = settings.clone().validated().unwrap_err();
        assert_eq!(err.field, "flow");
        assert!(err.reason.contains("start"), "{}", err.reason);

        // Valid, but 40 nodes of 4 KB each.
        let words = "word ".repeat(790);
        let mut yaml = String::from("name: long\nstart: n0\nnodes:\n");
        for i in 0..40 {
            let next = i + 1;
            yaml += &format!(
                "  n{i}:\n    say: {}\n    next: [{{goto: n{next}}}]\n",
                words.trim()
            );
        }
        yaml += "  n40:\n    say: Goodbye.\n    on_enter: [end]\n";
        let big = Flow::parse_yaml(&yaml).unwrap();
        settings.flow = Some(big);
        let err = settings.clone().validated().unwrap_err();
        assert_eq!(err.field, "flow");
        assert!(err.reason.contains("bytes"), "{}", err.reason);

        settings.flow = None;
        settings.use_default_prompt = true;
        assert_eq!(
            settings.validated().unwrap_err().field,
            "use_default_prompt"
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        type Mutation = Box<dyn Fn(&mut AgentSettings)>;
        let cases: Vec<(&str, Mutation)> = vec![
            ("name", Box::new(|s| s.name = " ".into())),
            (
                "language",
                Box::new(|s| s.language = "english please".into()),
            ),
            (
                "inbound_greeting",
                Box::new(|s| s.inbound_greeting = "".into()),
            ),
            ("voice.speed", Box::new(|s| s.voice.speed = 3.0)),
            ("max_call_seconds", Box::new(|s| s.max_call_seconds = 5)),
            ("max_turns", Box::new(|s| s.max_turns = 0)),
            (
                "business_hours.week",
                Box::new(|s| {
                    s.business_hours.week.monday = vec![span("17:00", "09:00")];
                }),
            ),
        ];
        for (field, mutate) in cases {
            let mut settings = AgentSettings::named("Riley");
            mutate(&mut settings);
            assert_eq!(settings.validated().unwrap_err().field, field);
        }
        let unknown = serde_json::from_value::<AgentSettings>(
            serde_json::json!({"name": "x", "colour": "red"}),
        );
        assert!(unknown.unwrap_err().to_string().contains("colour"));
    }

    #[test]
    fn business_hours_are_judged_in_their_time_zone() {
        let mut hours = BusinessHours {
            time_zone: TimeZone::parse("America/New_York").unwrap(),
            ..BusinessHours::default()
        };
        assert!(hours.is_open(Utc::now()), "no spans: always open");
        hours.week.monday = vec![span("09:00", "17:00")];
        // Monday 2026-03-09 13:59 UTC is 09:59 in New York (EDT, after the March change).
        assert!(hours.is_open(Utc.with_ymd_and_hms(2026, 3, 9, 13, 59, 0).unwrap()));
        // 12:59 UTC is 08:59 there: closed.
        assert!(!hours.is_open(Utc.with_ymd_and_hms(2026, 3, 9, 12, 59, 0).unwrap()));
        // Closing time is exclusive; Tuesday has no spans.
        assert!(!hours.is_open(Utc.with_ymd_and_hms(2026, 3, 9, 21, 0, 0).unwrap()));
        assert!(!hours.is_open(Utc.with_ymd_and_hms(2026, 3, 10, 14, 0, 0).unwrap()));
    }

    #[test]
    fn the_next_opening_is_found_later_that_day_or_on_the_next_open_day() {
        let at = |d: u32, h: u32, m: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 11, d)
                .unwrap()
                .and_hms_opt(h, m, 0)
                .unwrap()
        };
        let mut week = Week::default();
        assert_eq!(
            week.next_open(at(21, 3, 0)),
            Some(at(21, 3, 0)),
            "always open"
        );
        // Monday to Friday 9–12 and 13–17 (23 November 2026 is a Monday).
        let days = [span("13:00", "17:00"), span("09:00", "12:00")];
        for day in [
            &mut week.monday,
            &mut week.tuesday,
            &mut week.wednesday,
            &mut week.thursday,
            &mut week.friday,
        ] {
            *day = days.to_vec();
        }
        assert!(week.is_open_at(at(23, 9, 0)));
        assert!(!week.is_open_at(at(23, 12, 30)));
        assert!(!week.is_open_at(at(23, 17, 0)), "closing time is closed");
        assert_eq!(week.next_open(at(23, 10, 15)), Some(at(23, 10, 15)));
        // Lunch: the afternoon span, though it is listed first.
        assert_eq!(week.next_open(at(23, 12, 30)), Some(at(23, 13, 0)));
        // Early: that morning; late: the next morning.
        assert_eq!(week.next_open(at(24, 7, 0)), Some(at(24, 9, 0)));
        assert_eq!(week.next_open(at(24, 18, 0)), Some(at(25, 9, 0)));
        // Friday evening and the weekend: Monday.
        assert_eq!(week.next_open(at(27, 17, 30)), Some(at(30, 9, 0)));
        assert_eq!(week.next_open(at(29, 11, 0)), Some(at(30, 9, 0)));
    }

    #[test]
    fn a_deleted_agent_takes_no_changes() {
        let created = AgentEvent::AgentCreated {
            settings: AgentSettings::named("Riley"),
        };
        let agent = given::<Agent>(&[created.clone(), AgentEvent::AgentDeleted]);
        assert_eq!(
            when(
                &agent,
                AgentCommand::Change {
                    settings: AgentSettings::named("Sam")
                }
            ),
            Err(AgentError::NotFound)
        );
        let live = given::<Agent>(&[created]);
        assert_eq!(
            when(
                &live,
                AgentCommand::Change {
                    settings: AgentSettings::named("Riley")
                }
            )
            .unwrap(),
            vec![]
        );
        assert_eq!(
            when(
                &live,
                AgentCommand::Change {
                    settings: AgentSettings::named("Sam")
                }
            )
            .unwrap()
            .len(),
            1
        );
    }

    fn with_vendors(vendors: serde_json::Value) -> Result<AgentSettings, ValueError> {
        let mut body = serde_json::to_value(AgentSettings::named("Riley")).unwrap();
        body["voice"] = serde_json::json!({"provider": "eleven_labs", "voice_id": "v1"});
        body["vendors"] = vendors;
        serde_json::from_value::<AgentSettings>(body)
            .unwrap()
            .validated()
    }

    #[test]
    fn an_agents_own_vendors_are_checked_field_by_field_and_hold_no_secret() {
        let ok = with_vendors(serde_json::json!({
            "language_model": {
                "base_url": " https://api.groq.com/openai/v1/ ",
                "key": "groq-main",
                "model": " llama-3.3-70b-versatile "
            },
            "speech_to_text": {"base_url": "wss://api.eu.deepgram.com"},
            "voice": {"key": "elevenlabs"}
        }))
        .unwrap();
        let llm = ok.vendors.language_model.as_ref().unwrap();
        assert_eq!(
            llm.base_url.as_deref(),
            Some("https://api.groq.com/openai/v1")
        );
        assert_eq!(llm.model.as_deref(), Some("llama-3.3-70b-versatile"));
        assert_eq!(ok.vendors.choices().count(), 3);

        let refused = [
            (
                serde_json::json!({"language_model": {"base_url": "https://sk-abc:x@api.example.com/v1"}}),
                "vendors.language_model",
                "credentials",
            ),
            (
                serde_json::json!({"language_model": {"base_url": "ftp://example.com"}}),
                "vendors.language_model",
                "https",
            ),
            (
                serde_json::json!({"speech_to_text": {"base_url": "not a url"}}),
                "vendors.speech_to_text",
                "base_url",
            ),
            (
                serde_json::json!({"language_model": {"base_url": "https://x.example/v1?key=sk"}}),
                "vendors.language_model",
                "query",
            ),
            (
                serde_json::json!({"voice": {"key": "Bad Name"}}),
                "vendors.voice",
                "key",
            ),
            (
                serde_json::json!({"language_model": {"model": "  "}}),
                "vendors.language_model",
                "model",
            ),
        ];
        for (vendors, field, says) in refused {
            let err = with_vendors(vendors.clone()).unwrap_err();
            assert_eq!(err.field, field, "{vendors}");
            assert!(err.reason.contains(says), "{vendors}: {}", err.reason);
        }
        // A key itself is not a setting at all.
        let mut body = serde_json::to_value(AgentSettings::named("Riley")).unwrap();
        body["vendors"] = serde_json::json!({"language_model": {"api_key": "sk-123"}});
        assert!(serde_json::from_value::<AgentSettings>(body).is_err());

        // The offline voice has no endpoint to choose.
        let mut flite = AgentSettings::named("Riley");
        flite.vendors.voice = Some(VendorChoice::default());
        assert_eq!(flite.validated().unwrap_err().field, "vendors.voice");

        // Settings without vendors read and write as before.
        let plain = serde_json::to_value(AgentSettings::named("Riley")).unwrap();
        assert!(plain.get("vendors").is_none());
        assert!(is_vendor_key_name("groq-2") && !is_vendor_key_name("-x"));
        assert!(!is_vendor_key_name("") && !is_vendor_key_name(&"a".repeat(65)));
    }
}
