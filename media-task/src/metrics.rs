//! The media task's `/metrics`: Prometheus text, for dashboards and autoscaling on live
//! calls.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A counter family's labels: a vendor error's vendor, a refusal's reason.
type Labels = Vec<(&'static str, &'static str)>;

/// Why a new stream was turned away before its WebSocket upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The task holds as many calls as it may.
    Full,
    /// The task is stopping: live calls finish, new ones go elsewhere.
    Draining,
}

impl Refusal {
    /// The `reason` label, and the refused response's body.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Full => "full",
            Refusal::Draining => "draining",
        }
    }
}

/// Every counter the sessions update, and the registry that writes them out.
pub struct Metrics {
    registry: Registry,
    pub live_calls: Gauge,
    pub calls: Counter,
    pub frames_in: Counter,
    pub frames_out: Counter,
    pub turns: Counter,
    pub barge_ins: Counter,
    vendor_errors: Family<Labels, Counter>,
    /// New streams turned away, by reason; each reason's counter is held so counting
    /// a refusal (many of them, under overload) allocates nothing.
    refused_full: Counter,
    refused_draining: Counter,
    /// The caller's turn ended → the brain was asked (the platform's own work).
    pub turn_to_brain: Histogram,
    /// The voice's first byte of an utterance → its first frame sent to the carrier.
    pub voice_to_wire: Histogram,
    /// The caller's turn ended → the agent's first frame of the answer sent.
    pub response: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("parley_media");
        let live_calls = Gauge::default();
        let calls = Counter::default();
        let frames_in = Counter::default();
        let frames_out = Counter::default();
        let turns = Counter::default();
        let barge_ins = Counter::default();
        let vendor_errors = Family::<Labels, Counter>::default();
        let streams_refused = Family::<Labels, Counter>::default();
        // Both reasons are written from the start (at 0), so a rate over them exists
        // before the first refusal.
        let refused_full = streams_refused
            .get_or_create(&vec![("reason", Refusal::Full.as_str())])
            .clone();
        let refused_draining = streams_refused
            .get_or_create(&vec![("reason", Refusal::Draining.as_str())])
            .clone();
        // The platform's own latency is tens of µs to a few ms, and its p99 is what
        // matters: steps of 1.5× from 10 µs (to ~2.9 s) resolve it to within a
        // quarter either way. Responses: steps of 1.25× from 10 ms (to ~25 s), fine
        // enough to see a p95 move by tens of milliseconds.
        let turn_to_brain = Histogram::new(exponential_buckets(0.000_01, 1.5, 32));
        let voice_to_wire = Histogram::new(exponential_buckets(0.000_01, 1.5, 32));
        let response = Histogram::new(exponential_buckets(0.01, 1.25, 36));
        registry.register("live_calls", "Calls being held now", live_calls.clone());
        registry.register("calls", "Calls admitted", calls.clone());
        registry.register(
            "frames_in",
            "Caller audio frames received",
            frames_in.clone(),
        );
        registry.register("frames_out", "Agent audio frames sent", frames_out.clone());
        registry.register("turns", "Caller turns answered", turns.clone());
        registry.register(
            "barge_ins",
            "Times a caller talked over the agent",
            barge_ins.clone(),
        );
        registry.register(
            "vendor_errors",
            "Vendor failures, by vendor",
            vendor_errors.clone(),
        );
        registry.register(
            "streams_refused",
            "New streams refused before their upgrade, by reason",
            streams_refused,
        );
        registry.register(
            "turn_to_brain_seconds",
            "From the end of the caller's turn to the brain being asked",
            turn_to_brain.clone(),
        );
        registry.register(
            "voice_to_wire_seconds",
            "From a voice's first audio of an utterance to its first frame sent",
            voice_to_wire.clone(),
        );
        registry.register(
            "response_seconds",
            "From the end of the caller's turn to the first frame of the answer sent",
            response.clone(),
        );
        Metrics {
            registry,
            live_calls,
            calls,
            frames_in,
            frames_out,
            turns,
            barge_ins,
            vendor_errors,
            refused_full,
            refused_draining,
            turn_to_brain,
            voice_to_wire,
            response,
        }
    }

    pub fn vendor_error(&self, vendor: &'static str) {
        self.vendor_errors
            .get_or_create(&vec![("vendor", vendor)])
            .inc();
    }

    /// Counts a new stream refused before its upgrade.
    pub fn refused(&self, why: Refusal) {
        match why {
            Refusal::Full => self.refused_full.inc(),
            Refusal::Draining => self.refused_draining.inc(),
        };
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
