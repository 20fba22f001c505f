//! Placing an outbound call at the tenant's carrier: which of the tenant's numbers it
//! goes out from, the tenant's account at that carrier, and the carrier's answer, the
//! same for a call asked for through the API and a campaign's dial job.

use std::time::Duration;

use crate::StoreError;
use crate::aggregate::load_any;
use crate::backend::Ports;
use crate::domain::call::Carrier;
use crate::domain::number::{self, Number};
use crate::domain::{AgentId, CallId, PhoneNumber, TenantId};
use crate::exotel::{self, rest::ConnectCall, rest::ExotelClient, rest::ExotelError};
use crate::readmodel::{Index, Query};
use crate::secrets::{SecretStore, SecretString};
use crate::twilio::rest::{
    ALL_STATUS_CALLBACK_EVENTS, CreateCall, Credentials, TwilioClient, TwilioError,
};

/// Where a tenant's carrier secret `item` is kept (`tenant/<id>/twilio-auth-token`).
pub fn secret_name(tenant: &TenantId, item: &str) -> String {
    format!("tenant/{tenant}/{item}")
}

/// Why a call cannot be placed before the carrier is even asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// `field` of the request is at fault (`from`: no usable number or account).
    #[error("{field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn invalid(field: &'static str, reason: &str) -> OutboundError {
    OutboundError::Invalid {
        field,
        reason: reason.to_owned(),
    }
}

/// The number a call goes out from: `from`, if the tenant owns it, else the first of
/// the tenant's numbers routed to `agent`.
pub async fn caller_id(
    ports: &Ports,
    tenant: &TenantId,
    agent: &AgentId,
    from: Option<&str>,
) -> Result<(PhoneNumber, Carrier), OutboundError> {
    if let Some(raw) = from {
        let number = PhoneNumber::normalise(raw, None).map_err(|e| OutboundError::Invalid {
            field: "from",
            reason: e.reason,
        })?;
        let owned = load_any::<Number>(&*ports.events, &number::stream(&number))
            .await?
            .state;
        return match (owned.owner.as_ref(), owned.carrier) {
            (Some(owner), Some(carrier)) if owner == tenant => Ok((number, carrier)),
            _ => Err(invalid("from", "is not one of your phone numbers")),
        };
    }
    // The API's list of the tenant's numbers (see the phone-numbers routes).
    let mut query = Query::new(Index::First, format!("phone_numbers#{tenant}"));
    query.limit = 200;
    let page = ports.views.query(&query).await?;
    page.views
        .iter()
        .find(|v| v.body["agent_id"].as_str() == Some(&agent.to_string()))
        .and_then(|v| {
            let number = PhoneNumber::parse(v.body["number"].as_str()?).ok()?;
            let carrier: Carrier = serde_json::from_value(v.body["carrier"].clone()).ok()?;
            Some((number, carrier))
        })
        .ok_or_else(|| {
            invalid(
                "from",
                "the agent has no phone number: assign one or give from",
            )
        })
}

/// The tenant's Twilio account, if its credentials are stored.
pub async fn twilio_credentials(
    secrets: &dyn SecretStore,
    tenant: &TenantId,
) -> Result<Option<Credentials>, StoreError> {
    let sid = secrets
        .get(&secret_name(tenant, "twilio-account-sid"))
        .await?;
    let token = secrets
        .get(&secret_name(tenant, "twilio-auth-token"))
        .await?;
    Ok(match (sid, token) {
        (Some(sid), Some(auth_token)) => Some(Credentials {
            account_sid: sid.expose().to_owned(),
            auth_token,
        }),
        _ => None,
    })
}

/// Makes the tenant a Twilio-shaped account for the simulated carrier the first time
/// one of its simulated numbers dials, unless it already has Twilio credentials. The
/// simulator signs its webhooks with the token it is presented, so the webhooks check
/// them exactly as Twilio's.
pub async fn simulated_credentials(
    secrets: &dyn SecretStore,
    tenant: &TenantId,
) -> Result<Credentials, StoreError> {
    if let Some(creds) = twilio_credentials(secrets, tenant).await? {
        return Ok(creds);
    }
    let account_sid = format!("AC{}", uuid::Uuid::new_v4().simple());
    let token = SecretString::new(uuid::Uuid::new_v4().simple().to_string());
    secrets
        .put(
            &secret_name(tenant, "twilio-account-sid"),
            &SecretString::new(account_sid.clone()),
        )
        .await?;
    secrets
        .put(&secret_name(tenant, "twilio-auth-token"), &token)
        .await?;
    Ok(Credentials {
        account_sid,
        auth_token: token,
    })
}

/// A tenant's account at the carrier a call goes out through.
pub enum Account {
    Twilio(Credentials),
    /// The local stack's simulated carrier, which speaks Twilio's REST API.
    Simulated(Credentials),
    Exotel {
        creds: exotel::rest::Credentials,
        /// The flow whose Voicebot applet streams the call to Parley.
        flow_url: String,
        status_callback: String,
    },
}

/// What places calls: the carriers' clients and the URL they call Parley back on.
#[derive(Clone)]
pub struct Dialing {
    pub twilio: TwilioClient,
    pub exotel: ExotelClient,
    /// How carriers reach Parley's webhooks.
    pub public_url: String,
    /// The simulated carrier's Twilio-shaped API: only the local stack has one.
    pub simulated: Option<TwilioClient>,
}

/// One call to place.
pub struct Placement<'a> {
    pub call_id: &'a CallId,
    pub from: &'a PhoneNumber,
    pub to: &'a PhoneNumber,
    pub record: bool,
    pub max_call_seconds: u32,
}

/// How long the phone rings before the call counts as not answered.
const RING_SECONDS: u32 = 30;

impl Dialing {
    /// The carriers' clients for `config`, each waiting at most `timeout` for an answer.
    pub fn new(config: &crate::config::Config, timeout: Duration) -> Result<Dialing, String> {
        let mut exotel = ExotelClient::new(timeout).map_err(|e| e.to_string())?;
        if let Some(url) = &config.exotel_api_url {
            exotel = exotel
                .with_base_url(url.clone())
                .map_err(|e| e.to_string())?;
        }
        Ok(Dialing {
            twilio: TwilioClient::new(config.twilio_api_url.clone(), timeout)
                .map_err(|e| e.to_string())?,
            exotel,
            public_url: config.public_url.clone(),
            simulated: None,
        })
    }

    /// The tenant's account at `carrier`, or an error naming what is missing.
    pub async fn account(
        &self,
        secrets: &dyn SecretStore,
        tenant: &TenantId,
        carrier: Carrier,
    ) -> Result<Account, OutboundError> {
        match carrier {
            Carrier::Twilio => twilio_credentials(secrets, tenant)
                .await?
                .map(Account::Twilio)
                .ok_or_else(|| invalid("from", "no Twilio credentials stored for this tenant")),
            Carrier::Exotel => self.exotel_account(secrets, tenant).await,
            Carrier::Simulated if self.simulated.is_some() => Ok(Account::Simulated(
                simulated_credentials(secrets, tenant).await?,
            )),
            Carrier::Simulated => Err(invalid(
                "from",
                "the simulated carrier runs only in the local stack (parley dev)",
            )),
        }
    }

    async fn exotel_account(
        &self,
        secrets: &dyn SecretStore,
        tenant: &TenantId,
    ) -> Result<Account, OutboundError> {
        let get = |item: &'static str| async move { secrets.get(&secret_name(tenant, item)).await };
        let missing = || {
            invalid(
                "from",
                "no Exotel credentials and flow stored for this tenant",
            )
        };
        let sid = get("exotel-account-sid").await?.ok_or_else(missing)?;
        let subdomain = get("exotel-subdomain").await?.ok_or_else(missing)?;
        let api_key = get("exotel-api-key").await?.ok_or_else(missing)?;
        let api_token = get("exotel-api-token").await?.ok_or_else(missing)?;
        let app = get("exotel-flow-app-id").await?.ok_or_else(missing)?;
        let webhook_secret = secrets
            .get(&exotel::webhook_secret_name(tenant))
            .await?
            .ok_or_else(missing)?;
        let account_sid = sid.expose().to_owned();
        Ok(Account::Exotel {
            flow_url: format!(
                "http://my.exotel.com/{account_sid}/exoml/start_voice/{}",
                app.expose()
            ),
            status_callback: exotel::status_callback_url(&self.public_url, tenant, &webhook_secret),
            creds: exotel::rest::Credentials {
                account_sid,
                api_key,
                api_token,
                subdomain: subdomain.expose().to_owned(),
            },
        })
    }

    /// Asks the carrier to place the call; its id there and its first status.
    pub async fn place(
        &self,
        account: &Account,
        call: &Placement<'_>,
    ) -> Result<(String, String), Refusal> {
        match account {
            Account::Twilio(creds) => self.place_twilio(&self.twilio, creds, call).await,
            Account::Simulated(creds) => match &self.simulated {
                Some(client) => self.place_twilio(client, creds, call).await,
                None => Err(Refusal {
                    kind: RefusalKind::Rejected {
                        field: Some("from"),
                    },
                    code: None,
                    message: "the simulated carrier runs only in the local stack".into(),
                }),
            },
            Account::Exotel {
                creds,
                flow_url,
                status_callback,
            } => {
                let connect = ConnectCall {
                    from: call.to.as_str().to_owned(),
                    caller_id: call.from.as_str().to_owned(),
                    url: Some(flow_url.clone()),
                    custom_field: Some(exotel::custom_field(call.call_id)),
                    status_callback: Some(status_callback.clone()),
                    status_callback_events: exotel::rest::ALL_STATUS_CALLBACK_EVENTS
                        .iter()
                        .map(|e| e.to_string())
                        .collect(),
                    status_callback_content_type: Some(exotel::rest::STATUS_CALLBACK_JSON.into()),
                    record: call.record,
                    time_limit_secs: Some(call.max_call_seconds),
                    timeout_secs: Some(RING_SECONDS),
                    ..ConnectCall::default()
                };
                self.exotel
                    .connect_call(creds, &connect)
                    .await
                    .map(|c| (c.sid, c.status.unwrap_or_default()))
                    .map_err(Refusal::from)
            }
        }
    }

    /// The Twilio-speaking client for calls on `carrier`: Twilio's, or the simulated
    /// carrier's where the stack has one; `None` for Exotel.
    pub fn twilio_client(&self, carrier: Carrier) -> Option<&TwilioClient> {
        match carrier {
            Carrier::Twilio => Some(&self.twilio),
            Carrier::Simulated => self.simulated.as_ref(),
            Carrier::Exotel => None,
        }
    }

    async fn place_twilio(
        &self,
        client: &TwilioClient,
        creds: &Credentials,
        call: &Placement<'_>,
    ) -> Result<(String, String), Refusal> {
        let base = &self.public_url;
        let call_id = call.call_id;
        let place = CreateCall {
            to: call.to.as_str().to_owned(),
            from: call.from.as_str().to_owned(),
            url: format!("{base}/webhooks/twilio/voice?call_id={call_id}"),
            status_callback: Some(format!("{base}/webhooks/twilio/status?call_id={call_id}")),
            status_callback_events: ALL_STATUS_CALLBACK_EVENTS
                .iter()
                .map(|e| e.to_string())
                .collect(),
            machine_detection: Some("DetectMessageEnd".into()),
            async_amd: true,
            async_amd_status_callback: Some(format!(
                "{base}/webhooks/twilio/amd?call_id={call_id}"
            )),
            record: call.record,
            recording_status_callback: call
                .record
                .then(|| format!("{base}/webhooks/twilio/recording?call_id={call_id}")),
            timeout_secs: Some(RING_SECONDS),
        };
        client
            .create_call(creds, &place)
            .await
            .map(|c| (c.sid, c.status))
            .map_err(Refusal::from)
    }
}

/// Why a carrier did not place a call, whichever carrier it was.
#[derive(Debug)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub code: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The carrier said no; `field` names the request field at fault, if known.
    Rejected { field: Option<&'static str> },
    /// No answer: the call may still have been placed.
    Timeout,
    /// The carrier could not be reached or answered nonsense.
    Unavailable,
}

impl From<TwilioError> for Refusal {
    fn from(e: TwilioError) -> Self {
        let kind = match &e {
            TwilioError::Api { .. }
                if e.is_invalid_number() || e.is_unreachable() || e.is_geo_blocked() =>
            {
                RefusalKind::Rejected { field: Some("to") }
            }
            TwilioError::Api { status: 401, .. } => RefusalKind::Rejected {
                field: Some("from"),
            },
            TwilioError::Api { .. } => RefusalKind::Rejected { field: None },
            TwilioError::Timeout { .. } | TwilioError::Transport { .. } => RefusalKind::Timeout,
            TwilioError::Unavailable { .. }
            | TwilioError::BadResponse { .. }
            | TwilioError::Invalid { .. } => RefusalKind::Unavailable,
        };
        Refusal {
            kind,
            code: e.code().map(|c| c.to_string()),
            message: e.to_string(),
        }
    }
}

impl From<ExotelError> for Refusal {
    fn from(e: ExotelError) -> Self {
        let kind = match &e {
            ExotelError::Api {
                status: 401 | 403, ..
            } => RefusalKind::Rejected {
                field: Some("from"),
            },
            ExotelError::Api { .. } => RefusalKind::Rejected { field: Some("to") },
            ExotelError::Timeout { .. } | ExotelError::Transport { .. } => RefusalKind::Timeout,
            ExotelError::Unavailable { .. }
            | ExotelError::BadResponse { .. }
            | ExotelError::Invalid { .. } => RefusalKind::Unavailable,
        };
        Refusal {
            kind,
            code: e.code().map(str::to_owned),
            message: e.to_string(),
        }
    }
}
