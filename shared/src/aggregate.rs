//! Running commands against streams: load a stream, fold its events into state, let the
//! state decide on the command, append what it decided with the version it saw, and on
//! a concurrent write start over from a fresh read.
//!
//! Streams belong to one tenant (every event carries it). A command from another tenant
//! finds the stream empty-handed: [`CommandError::NotFound`], never a hint that it
//! exists.

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::error::StoreError;
use crate::event::{DomainEvent, Metadata, NewEvent, StreamId, decode};
use crate::eventstore::{EventStore, ExpectedVersion};

/// A stream's state and its rules: `handle` decides, `apply` records.
pub trait Aggregate: Default + Send + Sync {
    type Event: DomainEvent;
    type Command: Clone + Send + Sync;
    type Error: std::error::Error + Send + Sync + 'static;

    /// Checks `command` against the current state and returns the events it causes
    /// (none when it changes nothing, such as a status that arrives late).
    fn handle(
        &self,
        command: Self::Command,
        now: DateTime<Utc>,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Never fails: events are facts.
    fn apply(&mut self, event: &Self::Event);

    /// The state after `events`, from the start.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self
    where
        Self::Event: 'a,
    {
        let mut state = Self::default();
        for event in events {
            state.apply(event);
        }
        state
    }
}

/// A stream as read back.
#[derive(Debug)]
pub struct Loaded<A> {
    pub state: A,
    /// How many events the stream holds (0: it does not exist).
    pub version: u64,
    /// The tenant of the stream's events; `None` for a stream with no events.
    pub tenant_id: Option<String>,
}

/// Who is acting and why: becomes the metadata of every event the command emits.
#[derive(Clone, Debug)]
pub struct Context {
    pub tenant_id: String,
    pub correlation_id: String,
    /// Makes a retried request (a webhook redelivered, an SQS message received twice)
    /// change nothing the second time.
    pub idempotency_key: Option<String>,
}

/// The result of a command that went through.
#[derive(Debug)]
pub struct Executed<A: Aggregate> {
    pub events: Vec<A::Event>,
    /// The stream's version after the command.
    pub version: u64,
    /// The idempotency key had been used already: nothing new was written.
    pub duplicate: bool,
    pub state: A,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The command breaks a rule of the stream.
    #[error(transparent)]
    Rejected(E),
    /// No such stream for this tenant.
    #[error("{stream} not found")]
    NotFound { stream: StreamId },
    /// Writers kept racing on the stream past the retry limit.
    #[error("{stream} kept changing under {attempts} attempts; try again")]
    Contended { stream: StreamId, attempts: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often a command is re-decided after losing a race before giving up.
const MAX_ATTEMPTS: u32 = 10;

/// Reads a stream and folds it. A stream of another tenant reads as not found.
pub async fn load<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
    tenant_id: &str,
) -> Result<Loaded<A>, CommandError<A::Error>> {
    let loaded = load_any::<A>(store, stream).await?;
    match &loaded.tenant_id {
        Some(owner) if owner != tenant_id => Err(CommandError::NotFound {
            stream: stream.clone(),
        }),
        _ => Ok(loaded),
    }
}

/// Reads a stream and folds it whatever its tenant: for the admin and for projections.
pub async fn load_any<A: Aggregate>(
    store: &dyn EventStore,
    stream: &StreamId,
) -> Result<Loaded<A>, StoreError> {
    let recorded = store.read_stream(stream, 1).await?;
    let mut state = A::default();
    let mut tenant_id = None;
    let mut version = 0;
    for event in &recorded {
        version = event.version;
        tenant_id.get_or_insert_with(|| event.meta.tenant_id.clone());
        if let Some(domain) = decode::<A::Event>(event)? {
            state.apply(&domain);
        }
    }
    Ok(Loaded {
        state,
        version,
        tenant_id,
    })
}

/// Runs `command` against `stream` for `ctx.tenant_id`: decide on the current state,
/// append with the version seen, and on a conflict re-read and decide again.
pub async fn execute<A: Aggregate>(
    store: &dyn EventStore,
    clock: &dyn Clock,
    stream: &StreamId,
    ctx: &Context,
    command: A::Command,
) -> Result<Executed<A>, CommandError<A::Error>> {
    execute_with(store, clock, stream, ctx, command, true).await
}

/// [`execute`] for streams that change hands between tenants (a phone number): the
/// stream is not scoped to its first tenant, and the aggregate's own rules decide who
/// may act. Events still carry `ctx.tenant_id`.
pub async fn execute_unscoped<A: Aggregate>(
    store: &dyn EventStore,
    clock: &dyn Clock,
    stream: &StreamId,
    ctx: &Context,
    command: A::Command,
) -> Result<Executed<A>, CommandError<A::Error>> {
    execute_with(store, clock, stream, ctx, command, false).await
}

async fn execute_with<A: Aggregate>(
    store: &dyn EventStore,
    clock: &dyn Clock,
    stream: &StreamId,
    ctx: &Context,
    command: A::Command,
    scoped: bool,
) -> Result<Executed<A>, CommandError<A::Error>> {
    let read = |store, stream| async move {
        if scoped {
            load::<A>(store, stream, &ctx.tenant_id).await
        } else {
            Ok(load_any::<A>(store, stream).await?)
        }
    };
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            backoff(attempt).await;
        }
        let Loaded {
            mut state, version, ..
        } = read(store, stream).await?;
        let now = clock.now();
        let events = state
            .handle(command.clone(), now)
            .map_err(CommandError::Rejected)?;
        if events.is_empty() {
            return Ok(Executed {
                events,
                version,
                duplicate: false,
                state,
            });
        }
        let meta = Metadata {
            tenant_id: ctx.tenant_id.clone(),
            correlation_id: ctx.correlation_id.clone(),
            occurred_at: now,
        };
        let new_events = events
            .iter()
            .map(|e| NewEvent::from_domain(e, meta.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        match store
            .append(
                stream,
                ExpectedVersion::Exact(version),
                new_events,
                ctx.idempotency_key.as_deref(),
            )
            .await
        {
            Ok(appended) if appended.duplicate => {
                // The first delivery already wrote its events; report the stream as it is.
                let current = read(store, stream).await?;
                return Ok(Executed {
                    events: Vec::new(),
                    version: current.version,
                    duplicate: true,
                    state: current.state,
                });
            }
            Ok(appended) => {
                for event in &events {
                    state.apply(event);
                }
                return Ok(Executed {
                    events,
                    version: appended.last_version,
                    duplicate: false,
                    state,
                });
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Contended {
        stream: stream.clone(),
        attempts: MAX_ATTEMPTS,
    })
}

/// A random wait before re-deciding, growing with each lost race, so that writers who
/// collided do not collide again in lock-step.
async fn backoff(attempt: u32) {
    let ceiling_ms = (2u64 << attempt.min(6)).min(100);
    let wait = rand::random_range(0..=ceiling_ms);
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
}
