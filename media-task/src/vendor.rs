//! What every speech and language vendor client shares: where the vendor is, the key
//! that opens it, and how a call to it can fail.
//!
//! Each vendor is reached at a base URL that defaults to the vendor's own and can be
//! pointed elsewhere (`DEEPGRAM_BASE_URL`, `OPENAI_BASE_URL`, ...): a local llama.cpp
//! or vLLM server, a proxy, or, in tests, a local server speaking the vendor's wire
//! protocol.

use std::time::Duration;

use parley_shared::secrets::SecretString;

/// Where a vendor is and the key it takes. The key is only ever handed to the vendor.
#[derive(Clone)]
pub struct Endpoint {
    /// Without a trailing slash.
    pub base_url: String,
    pub api_key: SecretString,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .finish()
    }
}

impl Endpoint {
    pub fn new(base_url: &str, api_key: SecretString) -> Endpoint {
        Endpoint {
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
        }
    }

    /// `<PREFIX>_BASE_URL` (else `default_base`) and `<PREFIX>_API_KEY` from the
    /// environment; `None` when there is no key.
    pub fn from_env(prefix: &str, default_base: &str) -> Option<Endpoint> {
        Account::from_env(prefix, default_base).endpoint()
    }
}

/// A vendor as the deployment configures it in the environment: where it is, the
/// key if one is set, and the model if one is named. Agents' own choices fall back to
/// it (see `crate::choice`).
#[derive(Clone, Debug)]
pub struct Account {
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: Option<String>,
}

impl Account {
    /// `<PREFIX>_BASE_URL` (else `default_base`), `<PREFIX>_API_KEY` and
    /// `<PREFIX>_MODEL` (or `_MODEL_ID`, as the voice vendors name theirs).
    pub fn from_env(prefix: &str, default_base: &str) -> Account {
        let var = |name: &str| {
            std::env::var(format!("{prefix}_{name}"))
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Account {
            base_url: var("BASE_URL").unwrap_or_else(|| default_base.to_owned()),
            api_key: var("API_KEY").map(SecretString::new),
            model: var("MODEL").or_else(|| var("MODEL_ID")),
        }
    }

    /// The endpoint, when there is a key to open it.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let key = self.api_key.clone()?;
        Some(Endpoint::new(&self.base_url, key))
    }
}

/// How long a vendor may take to start answering before the attempt counts as failed.
pub const FIRST_BYTE_WITHIN: Duration = Duration::from_secs(5);

/// A vendor call that failed. Messages never hold the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendorError {
    #[error("{vendor}: cannot connect: {detail}")]
    Connect {
        vendor: &'static str,
        detail: String,
    },
    #[error("{vendor}: HTTP {status}: {detail}")]
    Status {
        vendor: &'static str,
        status: u16,
        detail: String,
    },
    #[error("{vendor}: no answer in time")]
    Timeout { vendor: &'static str },
    /// The vendor said something this client cannot read.
    #[error("{vendor}: {detail}")]
    Protocol {
        vendor: &'static str,
        detail: String,
    },
    /// The stream ended before the vendor said it was done.
    #[error("{vendor}: the stream ended early")]
    Closed { vendor: &'static str },
}

impl VendorError {
    /// Worth one more try: the network, a timeout, rate limiting or the vendor's own
    /// trouble; not a refused key or a bad request.
    pub fn is_retryable(&self) -> bool {
        match self {
            VendorError::Connect { .. }
            | VendorError::Timeout { .. }
            | VendorError::Closed { .. } => true,
            VendorError::Status { status, .. } => *status == 429 || *status >= 500,
            VendorError::Protocol { .. } => false,
        }
    }

    pub fn vendor(&self) -> &'static str {
        match self {
            VendorError::Connect { vendor, .. }
            | VendorError::Status { vendor, .. }
            | VendorError::Timeout { vendor }
            | VendorError::Protocol { vendor, .. }
            | VendorError::Closed { vendor } => vendor,
        }
    }
}
