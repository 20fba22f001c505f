//! The media task's load generator and benchmark: simulated Twilio callers over
//! loopback, at several concurrency levels, against a media task of its own.
//!
//! For each level the example starts a fresh media task in a child process (itself,
//! re-run with `--serve`): an embedded store in a temporary folder, one agent, one
//! call and stream token per caller, and the real `service` on a loopback port, its
//! vendors pointed at local servers that speak Deepgram's, OpenAI's and ElevenLabs'
//! wire protocols (`parley-vendors`), which run here in the parent with the callers.
//! So the child's CPU time (`/proc/<pid>/stat`) and resident memory
//! (`/proc/<pid>/status`) are the media task's alone.
//!
//! Each caller connects as Twilio does, waits for the greeting to finish, says a
//! phrase (real speech made once with flite, sent as 20 ms μ-law frames in real
//! time), waits for the answer to play out, and so on for `--turns` turns, then hangs
//! up; its phone plays the agent's audio in real time and echoes marks as they play.
//! Calls start spread evenly over `--ramp-ms`.
//!
//! Per level it reports: the cores the media task used and its resident memory per
//! call while every call was live; the platform's added latency from the task's own
//! `/metrics` histograms (`turn_to_brain`, `voice_to_wire`, and `response`), as
//! quantiles interpolated within buckets the way Prometheus' `histogram_quantile`
//! does; the response as the callers heard it (end of their speech to the answer's
//! first audio), exactly; and the vendor servers' own time for an answer and its first
//! audio, asked of them directly alongside the calls, so what the task adds to its
//! `response` can be told from what the servers take.
//!
//! ```sh
//! cargo run --release -p parley-media --example load -- --calls 1,50,100,200,300 --turns 3
//! # one core for the task, the other for the callers and vendor servers (README):
//! cargo run --release -p parley-media --example load -- --calls 1,50,100,150,200,300 \
//!     --turns 3 --task-cpus 0 --caller-cpus 1 --server-threads 1 --repeat 3
//! ```
//! Options: `--calls` (levels, comma-separated), `--turns` (per call), `--server-threads`
//! (the media task's runtime workers; default: every core), `--caller-threads` (this
//! side's; default: every core), `--ramp-ms` (spread of call starts; default 2000),
//! `--task-cpus` and `--caller-cpus` (pin the media task and this side to CPUs, as
//! `taskset` lists them, so they do not compete), `--voice-chunk-bytes` (how the local
//! ElevenLabs streams its audio; 800 bytes, 100 ms, by default), `--dump-metrics`
//! (print the task's `/metrics` after each level), `--repeat` (run each level this many
//! times and report the run the least disturbed by other processes on the machine).

// The whole-call tests' store scene: an agent and the calls requested for it.
#[path = "../tests/common/mod.rs"]
mod common;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::Scene;
use futures_util::{SinkExt, StreamExt};
use parley_media::call::{Calls, OneVoice, Vendors};
use parley_media::llm::openai::OpenAiChat;
use parley_media::resample::Resampler;
use parley_media::server::{MediaState, service};
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::tts::elevenlabs::{ElevenLabs, ElevenLabsVoice};
use parley_media::vendor::Endpoint;
use parley_shared::domain::agent::AgentSettings;
use parley_shared::domain::call::Carrier;
use parley_shared::secrets::SecretString;
use parley_vendors::{deepgram, elevenlabs, openai_chat};
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "load-generator-stream-secret-0123456789";
const TENANT: &str = "tenant-load";
const GREETING: &str = "Hello, this is Parley. How can I help?";
/// What the callers say, in turn (each about two seconds).
const PHRASES: [&str; 3] = [
    "I would like to book a table for four people tomorrow.",
    "Seven in the evening would be perfect.",
    "My name is Alex Morgan, thank you.",
];
/// One Twilio media frame: 20 ms of μ-law at 8 kHz.
const FRAME: Duration = Duration::from_millis(20);
const FRAME_BYTES: usize = 160;
/// A caller speaks once the agent has been quiet this long.
const QUIET: Duration = Duration::from_millis(300);
/// A greeting or an answer that has not started by then is a failure.
const WAIT: Duration = Duration::from_secs(20);
/// Frames quieter than this RMS at the ends of a phrase are trimmed, so "the end of
/// the caller's speech" is the end of its voice (the Deepgram server counts frames
/// above 500 as speech).
const TRIM_RMS: f64 = 300.0;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--serve") {
        return serve(ServeOptions::parse(&args)?);
    }
    let options = Options::parse(&args)?;
    if let Some(cpus) = &options.caller_cpus {
        // Before the runtime starts, so that every thread inherits it.
        pin(std::process::id(), cpus)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.caller_threads)
        .enable_all()
        .build()?;
    runtime.block_on(drive(options))
}

/// Reads `--name value` pairs.
fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number(args: &[String], name: &str, default: usize) -> Result<usize> {
    flag(args, name).map_or(Ok(default), |v| {
        v.parse()
            .with_context(|| format!("{name}: not a whole number: {v}"))
    })
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

struct Options {
    levels: Vec<usize>,
    turns: usize,
    server_threads: usize,
    caller_threads: usize,
    ramp: Duration,
    /// CPUs (as `taskset` lists them) for the media task and for this side.
    task_cpus: Option<String>,
    caller_cpus: Option<String>,
    /// Bytes a chunk of the voice's streamed audio (the ElevenLabs server's default
    /// when unset: 800, 100 ms).
    voice_chunk_bytes: Option<usize>,
    /// Runs of each level; the one least disturbed by other processes is reported.
    repeat: usize,
    dump_metrics: bool,
}

/// Keeps every thread of `pid` on `cpus`.
fn pin(pid: u32, cpus: &str) -> Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["--all-tasks", "--pid", "--cpu-list", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .context("running taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset could not pin to CPUs {cpus}");
    }
    Ok(())
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let levels = flag(args, "--calls")
            .unwrap_or("1,50,100,200,300")
            .split(',')
            .map(|l| {
                l.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| anyhow!("--calls: {l:?} is not a positive number"))
            })
            .collect::<Result<Vec<_>>>()?;
        let turns = number(args, "--turns", 3)?.max(1);
        Ok(Options {
            levels,
            turns,
            server_threads: number(args, "--server-threads", cores())?.max(1),
            caller_threads: number(args, "--caller-threads", cores())?.max(1),
            ramp: Duration::from_millis(number(args, "--ramp-ms", 2_000)? as u64),
            task_cpus: flag(args, "--task-cpus").map(str::to_owned),
            caller_cpus: flag(args, "--caller-cpus").map(str::to_owned),
            voice_chunk_bytes: flag(args, "--voice-chunk-bytes")
                .map(|_| number(args, "--voice-chunk-bytes", 0))
                .transpose()?,
            repeat: number(args, "--repeat", 1)?.max(1),
            dump_metrics: args.iter().any(|a| a == "--dump-metrics"),
        })
    }
}

// ---------------------------------------------------------------------------------
// The media task's side (the child process).

struct ServeOptions {
    calls: usize,
    threads: usize,
    deepgram: String,
    chat: String,
    voice: String,
    cpus: Option<String>,
}

impl ServeOptions {
    fn parse(args: &[String]) -> Result<ServeOptions> {
        let url = |name: &str| {
            flag(args, name)
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("{name} is required with --serve"))
        };
        Ok(ServeOptions {
            calls: number(args, "--calls", 1)?,
            threads: number(args, "--threads", cores())?.max(1),
            deepgram: url("--deepgram")?,
            chat: url("--chat")?,
            voice: url("--voice")?,
            cpus: flag(args, "--cpus").map(str::to_owned),
        })
    }
}

/// Runs the media task until its standard input closes (the parent is done with it).
fn serve(options: ServeOptions) -> Result<()> {
    if let Some(cpus) = &options.cpus {
        pin(std::process::id(), cpus)?;
    }
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()?;
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<()>();
    // Standard input is read on a thread of its own: the runtime has no stdin support.
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let result = runtime.block_on(serve_calls(&options, dir.path(), closed_rx));
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

fn agent_settings() -> AgentSettings {
    let mut settings = AgentSettings::named("Reception");
    settings.inbound_greeting = GREETING.into();
    settings.system_prompt = Some("You take restaurant bookings.".into());
    settings
}

async fn serve_calls(
    options: &ServeOptions,
    dir: &Path,
    closed: tokio::sync::oneshot::Receiver<()>,
) -> Result<()> {
    let scene = Scene::in_dir(dir, TENANT, agent_settings()).await;
    let mut announced = String::new();
    for _ in 0..options.calls {
        let call_id = scene.call(Carrier::Twilio, None).await;
        let token = scene.token(SECRET, &call_id, 60);
        writeln!(announced, "call {call_id} {token}")?;
    }
    let ports = scene.ports.clone();

    let stt = DeepgramStt::new(Endpoint::new(
        &options.deepgram,
        SecretString::new(deepgram::KEY.into()),
    ));
    let llm = OpenAiChat::new(
        Endpoint::new(&options.chat, SecretString::new(openai_chat::KEY.into())),
        "load-model",
    );
    let tts = ElevenLabs::new(
        Endpoint::new(
            &options.voice,
            SecretString::new(elevenlabs::DEFAULT_KEY.into()),
        ),
        ElevenLabsVoice::new("voice-1"),
    );
    let vendors = Vendors::new(
        Arc::new(stt),
        Arc::new(llm),
        Arc::new(OneVoice(Arc::new(tts))),
    );
    // The load decides how many calls, not the task's default cap.
    let state = MediaState::new(ports.clock.clone(), SecretString::new(SECRET.into()))
        .with_calls(Calls { ports, vendors })
        .with_max_calls(options.calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    print!("{announced}");
    println!("ready");
    tokio::select! {
        served = axum::serve(axum::serve::ListenerExt::tap_io(listener, |tcp| { let _ = tcp.set_nodelay(true); }), service(state)) => served?,
        _ = closed => {}
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// The load generator's side (the parent process).

async fn drive(options: Options) -> Result<()> {
    let speech = Arc::new(
        tokio::task::spawn_blocking(|| Speech::synthesise(&PHRASES))
            .await
            .context("synthesising speech")??,
    );
    let deepgram = deepgram::start(Vec::new()).await?;
    let chat = openai_chat::start().await?;
    let voice = elevenlabs::start().await?;
    if let Some(bytes) = options.voice_chunk_bytes {
        voice.set_chunk_bytes(bytes);
    }
    let vendors = [
        ("--deepgram", deepgram.url()),
        ("--chat", chat.url()),
        ("--voice", voice.url()),
    ];
    println!(
        "{}; {}; media task on {} runtime threads, callers and vendor servers on {}; \
         {} turns a call, starts spread over {} ms",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d"),
        options.server_threads,
        options.caller_threads,
        options.turns,
        options.ramp.as_millis(),
    );
    let mut rows = Vec::new();
    for &calls in &options.levels {
        let mut runs = Vec::new();
        for _ in 0..options.repeat {
            let row = level(calls, &options, &speech, &vendors).await?;
            println!("{}", row.detail());
            if options.repeat > 1 {
                println!("{}", row.line());
            }
            runs.push(row);
        }
        // Other work on the machine delays the task's calls; of repeated runs the one
        // it disturbed least is kept (chosen by that load, not by the figures).
        let quietest = runs.into_iter().min_by(|a, b| {
            let others = |r: &Row| r.cores.as_ref().map_or(f64::INFINITY, |c| c.others);
            others(a).total_cmp(&others(b))
        });
        rows.extend(quietest);
    }
    println!();
    println!("{}", Row::HEADER);
    for row in &rows {
        println!("{}", row.line());
    }
    drop((deepgram, chat, voice));
    Ok(())
}

/// The callers' speech, ready to send: base64 payloads of 20 ms μ-law frames.
struct Speech {
    silence: String,
    phrases: Vec<Vec<String>>,
}

impl Speech {
    fn synthesise(texts: &[&str]) -> Result<Speech> {
        let dir = tempfile::tempdir()?;
        let wav = dir.path().join("phrase.wav");
        let mut phrases = Vec::new();
        for text in texts {
            let status = std::process::Command::new("flite")
                .args(["-voice", "slt", "-t", text, "-o"])
                .arg(&wav)
                .status()
                .context("running flite (Debian package flite)")?;
            if !status.success() {
                bail!("flite failed: {status}");
            }
            let mut reader = hound::WavReader::open(&wav)?;
            let rate = reader.spec().sample_rate;
            let samples = reader.samples::<i16>().collect::<Result<Vec<i16>, _>>()?;
            let mut pcm = Vec::new();
            let mut resampler = Resampler::new(rate, 8_000)?;
            resampler.process(&samples, &mut pcm);
            resampler.flush(&mut pcm);
            let voiced = |frame: &[i16]| {
                let energy: f64 = frame.iter().map(|&s| f64::from(s).powi(2)).sum();
                (energy / frame.len().max(1) as f64).sqrt() > TRIM_RMS
            };
            let frames: Vec<&[i16]> = pcm.chunks(FRAME_BYTES).collect();
            let first = frames.iter().position(|f| voiced(f)).unwrap_or(0);
            let last = frames.iter().rposition(|f| voiced(f)).unwrap_or(0);
            let payloads = frames
                .get(first..=last)
                .unwrap_or_default()
                .iter()
                .map(|frame| {
                    let mut mulaw: Vec<u8> = frame
                        .iter()
                        .map(|&s| parley_media::g711::ulaw_encode(s))
                        .collect();
                    mulaw.resize(FRAME_BYTES, 0xFF);
                    STANDARD.encode(mulaw)
                })
                .collect::<Vec<_>>();
            if payloads.is_empty() {
                bail!("flite said nothing for {text:?}");
            }
            phrases.push(payloads);
        }
        Ok(Speech {
            silence: STANDARD.encode([0xFFu8; FRAME_BYTES]),
            phrases,
        })
    }
}

/// One level's figures.
struct Row {
    calls: usize,
    answered: usize,
    asked: usize,
    failed: usize,
    failures: Vec<String>,
    /// CPU use while every call was live; `None` when they never all were at once.
    cores: Option<Cores>,
    rss_base_kib: u64,
    rss_live_kib: u64,
    rss_peak_kib: u64,
    turn_to_brain: [f64; 3],
    voice_to_wire: [f64; 3],
    response: [f64; 3],
    heard: [f64; 3],
    /// The vendor servers' own time for an answer, probed alongside the calls.
    vendors: [f64; 3],
    turns_metric: f64,
    vendor_errors: Vec<(String, f64)>,
}

impl Row {
    const HEADER: &str = "| calls | turns answered | failed calls | media task cores | calls per core \
        | memory per call (all live) | peak memory per call | turn end → brain asked p50 / p95 / p99 \
        | voice's first byte → first frame sent p50 / p95 / p99 | response (task) p50 / p95 / p99 \
        | response (caller heard) p50 / p95 / p99 | vendor servers' own time p50 / p95 / p99 \
        | load generator cores | other processes' cores |\n\
        | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |";

    fn per_call_kib(&self, kib: u64) -> f64 {
        kib.saturating_sub(self.rss_base_kib) as f64 / self.calls as f64
    }

    fn line(&self) -> String {
        let (task, callers, others) = match &self.cores {
            Some(c) => (
                format!("{:.3}", c.task),
                format!("{:.2}", c.generator),
                format!("{:.2}", c.others),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let per_core = match &self.cores {
            Some(c) if c.task > 0.0 => format!("{:.0}", self.calls as f64 / c.task),
            _ => "–".into(),
        };
        format!(
            "| {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.calls,
            self.answered,
            self.asked,
            self.failed,
            task,
            per_core,
            kib(self.per_call_kib(self.rss_live_kib)),
            kib(self.per_call_kib(self.rss_peak_kib)),
            three(&self.turn_to_brain),
            three(&self.voice_to_wire),
            three(&self.response),
            three(&self.heard),
            three(&self.vendors),
            callers,
            others,
        )
    }

    fn detail(&self) -> String {
        let mut out = format!(
            "{} calls: {} of {} turns answered ({} counted by the task), {} failed; \
             task memory {} before the calls, {} with all live, {} at peak",
            self.calls,
            self.answered,
            self.asked,
            self.turns_metric,
            self.failed,
            kib(self.rss_base_kib as f64),
            kib(self.rss_live_kib as f64),
            kib(self.rss_peak_kib as f64),
        );
        if let Some(c) = &self.cores {
            let _ = write!(
                out,
                "; cores with all live: task {:.3}, load generator {:.2}, other processes {:.2}",
                c.task, c.generator, c.others
            );
        }
        for (vendor, count) in &self.vendor_errors {
            let _ = write!(out, "; vendor errors {vendor}: {count}");
        }
        for failure in self.failures.iter().take(5) {
            let _ = write!(out, "\n  failed: {failure}");
        }
        out
    }
}

fn kib(kib: f64) -> String {
    if kib >= 10.0 * 1024.0 {
        format!("{:.1} MiB", kib / 1024.0)
    } else {
        format!("{kib:.0} KiB")
    }
}

fn seconds(s: f64) -> String {
    if s.is_nan() {
        "–".into()
    } else if s < 0.001 {
        format!("{:.0} µs", s * 1e6)
    } else if s < 0.1 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{:.0} ms", s * 1e3)
    }
}

fn three(q: &[f64; 3]) -> String {
    format!("{} / {} / {}", seconds(q[0]), seconds(q[1]), seconds(q[2]))
}

const QUANTILES: [f64; 3] = [0.50, 0.95, 0.99];

/// Runs one level: a fresh media task, `calls` callers, the figures.
async fn level(
    calls: usize,
    options: &Options,
    speech: &Arc<Speech>,
    vendors: &[(&str, String)],
) -> Result<Row> {
    let mut command = tokio::process::Command::new(std::env::current_exe()?);
    command
        .args(["--serve", "--calls", &calls.to_string()])
        .args(["--threads", &options.server_threads.to_string()]);
    for (name, url) in vendors {
        command.args([name, url.as_str()]);
    }
    if let Some(cpus) = &options.task_cpus {
        command.args(["--cpus", cpus]);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the media task")?;
    let pid = child.id().context("the media task has no pid")?;
    let stdout = child.stdout.take().context("the media task's output")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut addr = None;
    let mut dials = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(120), lines.next_line())
            .await
            .context("the media task took too long to start")??
            .context("the media task stopped before it was ready")?;
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("listening"), Some(a), None) => addr = Some(a.to_owned()),
            (Some("call"), Some(id), Some(token)) => dials.push((id.to_owned(), token.to_owned())),
            (Some("ready"), None, None) => break,
            _ => bail!("the media task said {line:?}"),
        }
    }
    let addr = addr.context("the media task never said where it listens")?;
    // Let start-up settle before taking the memory baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_base_kib = status_kib(pid, "VmRSS")?;

    let live = Arc::new(AtomicUsize::new(0));
    let mut callers = tokio::task::JoinSet::new();
    let url = format!("ws://{addr}/media/twilio");
    let vendor = |name: &str| {
        vendors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, url)| url.clone())
            .with_context(|| format!("no {name} server"))
    };
    let stop_probe = Arc::new(AtomicBool::new(false));
    let probe = tokio::spawn(probe_vendors(
        vendor("--chat")?,
        vendor("--voice")?,
        stop_probe.clone(),
    ));
    let t0 = Instant::now();
    for (i, (call_id, token)) in dials.into_iter().enumerate() {
        let dial = Dial {
            url: url.clone(),
            stream_sid: format!("MZload{i:06}"),
            call_sid: format!("CAload{i:06}"),
            call_id,
            token,
        };
        let at = t0 + options.ramp.mul_f64(i as f64 / calls as f64);
        let speech = speech.clone();
        let live = live.clone();
        let turns = options.turns;
        callers.spawn(async move {
            tokio::time::sleep_until(at).await;
            caller(dial, speech, turns, live).await
        });
    }

    // Watch the task while the calls run: its memory and CPU while all are live.
    let ticks = clock_ticks();
    let mut full: Option<(Instant, Cpu)> = None;
    let mut cores = None;
    let mut rss_live_kib = 0;
    let mut outcomes = Vec::new();
    let mut watch = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            joined = callers.join_next() => match joined {
                Some(outcome) => outcomes.push(outcome.context("a caller panicked")?),
                None => break,
            },
            _ = watch.tick() => {
                let now_live = live.load(Ordering::Relaxed);
                if full.is_none() && cores.is_none() && now_live == calls {
                    full = Some((Instant::now(), Cpu::read(pid)?));
                }
                if full.is_some() {
                    rss_live_kib = rss_live_kib.max(status_kib(pid, "VmRSS")?);
                }
                if let Some((since, before)) = full.as_ref().filter(|_| now_live < calls) {
                    let wall = since.elapsed().as_secs_f64();
                    let after = Cpu::read(pid)?;
                    cores = Some(after.cores_since(before, wall, ticks));
                    full = None;
                }
            }
        }
    }
    stop_probe.store(true, Ordering::Relaxed);
    let mut probed = probe.await.context("the vendor probe panicked")?;
    probed.sort_by(f64::total_cmp);
    // The last calls may all end between two looks.
    if let Some((since, before)) = full.take() {
        let wall = since.elapsed().as_secs_f64();
        cores = Some(Cpu::read(pid)?.cores_since(&before, wall, ticks));
    }
    let rss_peak_kib = status_kib(pid, "VmHWM")?;
    let metrics = reqwest::get(format!("http://{addr}/metrics"))
        .await?
        .text()
        .await?;
    if options.dump_metrics {
        println!("{metrics}");
    }
    // Closing its input stops the media task.
    drop(child.stdin.take());
    if tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .is_err()
    {
        child.kill().await?;
    }

    let mut heard: Vec<f64> = outcomes
        .iter()
        .flat_map(|o| o.heard.iter().copied())
        .collect();
    heard.sort_by(f64::total_cmp);
    let failures: Vec<String> = outcomes.iter().filter_map(|o| o.failure.clone()).collect();
    let quantiles = |name: &str| {
        let h = Buckets::read(&metrics, name);
        QUANTILES.map(|q| h.quantile(q))
    };
    Ok(Row {
        calls,
        answered: outcomes.iter().map(|o| o.answered).sum(),
        asked: calls * options.turns,
        failed: failures.len(),
        failures,
        cores,
        rss_base_kib,
        rss_live_kib: if rss_live_kib == 0 {
            rss_peak_kib
        } else {
            rss_live_kib
        },
        rss_peak_kib,
        turn_to_brain: quantiles("parley_media_turn_to_brain_seconds"),
        voice_to_wire: quantiles("parley_media_voice_to_wire_seconds"),
        response: quantiles("parley_media_response_seconds"),
        heard: QUANTILES.map(|q| exact_quantile(&heard, q)),
        vendors: QUANTILES.map(|q| exact_quantile(&probed, q)),
        turns_metric: sample(&metrics, "parley_media_turns_total").unwrap_or(f64::NAN),
        vendor_errors: metrics
            .lines()
            .filter_map(|l| l.strip_prefix("parley_media_vendor_errors_total{"))
            .filter_map(|l| {
                let (labels, value) = l.split_once("} ")?;
                Some((labels.to_owned(), value.trim().parse().ok()?))
            })
            .collect(),
    })
}

/// How long the vendor servers themselves take for one answer, seen from this process
/// while the calls run (so with its load): a chat answer streamed whole, then its
/// speech's first audio, as the task asks for them. What the task's `response` adds
/// beyond this is the platform's.
async fn probe_vendors(chat: String, voice: String, stop: Arc<AtomicBool>) -> Vec<f64> {
    let http = reqwest::Client::new();
    let mut took = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match probe_once(&http, &chat, &voice).await {
            Ok(seconds) => took.push(seconds),
            Err(e) => eprintln!("vendor probe failed: {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    took
}

async fn probe_once(http: &reqwest::Client, chat: &str, voice: &str) -> Result<f64> {
    let started = Instant::now();
    let mut answer = http
        .post(format!("{chat}/chat/completions"))
        .bearer_auth(openai_chat::KEY)
        .json(&serde_json::json!({
            "model": "probe", "stream": true,
            "messages": [{"role": "user", "content": "utterance 100"}],
        }))
        .send()
        .await?
        .error_for_status()?;
    while answer.chunk().await?.is_some() {}
    let mut speech = http
        .post(format!(
            "{voice}/v1/text-to-speech/voice-1/stream?output_format=ulaw_8000"
        ))
        .header("xi-api-key", elevenlabs::DEFAULT_KEY)
        .json(&serde_json::json!({"text": "You said: utterance 100.", "model_id": "probe"}))
        .send()
        .await?
        .error_for_status()?;
    speech.chunk().await?;
    Ok(started.elapsed().as_secs_f64())
}

/// A point of the process's CPU time and the machine's.
struct Cpu {
    /// The media task's user and system time, in clock ticks.
    task: u64,
    /// This process's (callers and vendor servers).
    own: u64,
    /// The machine's busy and total time over all cores, in clock ticks.
    machine_busy: u64,
    machine_total: u64,
}

impl Cpu {
    fn read(pid: u32) -> Result<Cpu> {
        let (machine_busy, machine_total) = machine_ticks()?;
        Ok(Cpu {
            task: process_ticks(&format!("/proc/{pid}/stat"))?,
            own: process_ticks("/proc/self/stat")?,
            machine_busy,
            machine_total,
        })
    }

    /// Cores used since `before`.
    fn cores_since(&self, before: &Cpu, wall: f64, ticks: f64) -> Cores {
        let per = |a: u64, b: u64| a.saturating_sub(b) as f64 / ticks / wall.max(1e-9);
        let total = self.machine_total.saturating_sub(before.machine_total) as f64;
        let busy = self.machine_busy.saturating_sub(before.machine_busy) as f64;
        let busy_cores = if total > 0.0 {
            busy / total * machine_cpus() as f64
        } else {
            f64::NAN
        };
        let task = per(self.task, before.task);
        let generator = per(self.own, before.own);
        Cores {
            task,
            generator,
            others: (busy_cores - task - generator).max(0.0),
        }
    }
}

/// Cores in use over a stretch of time.
struct Cores {
    /// The media task.
    task: f64,
    /// This process: the callers and the vendor servers.
    generator: f64,
    /// Everything else on the machine.
    others: f64,
}

/// utime + stime of a process, all threads (fields 14 and 15 of `stat`).
fn process_ticks(path: &str) -> Result<u64> {
    let stat = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name may hold spaces; fields are counted after its closing bracket.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("an odd stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {} of {path}", i + 3))
    };
    // After the name, the state is field 3: utime (14) and stime (15) are 11 and 12 on.
    Ok(field(11)? + field(12)?)
}

/// The machine's busy and total CPU ticks, from the first line of `/proc/stat`.
fn machine_ticks() -> Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let values: Vec<u64> = stat
        .lines()
        .next()
        .context("an empty /proc/stat")?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // idle and iowait are the 4th and 5th.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Ok((total.saturating_sub(idle), total))
}

/// The machine's CPUs (not only those this process may use, as
/// `available_parallelism` counts once pinned).
fn machine_cpus() -> usize {
    std::fs::read_to_string("/proc/stat")
        .map(|stat| {
            stat.lines()
                .filter(|l| {
                    l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit)
                })
                .count()
        })
        .unwrap_or(0)
        .max(1)
}

/// Clock ticks a second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A `kB` line of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {key} for the media task"))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", {:.0} GiB", kib / 1024.0 / 1024.0)
        });
    format!("machine: {cpu}, {} cores{memory}", machine_cpus())
}

/// A histogram from the Prometheus text: `(upper bound, cumulative count)`, in order.
struct Buckets(Vec<(f64, f64)>);

impl Buckets {
    fn read(text: &str, name: &str) -> Buckets {
        let prefix = format!("{name}_bucket{{");
        let mut buckets: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix(prefix.as_str()))
            .filter_map(|l| {
                let (labels, value) = l.split_once("} ")?;
                let le = labels
                    .split(',')
                    .find_map(|label| label.strip_prefix("le=\""))?
                    .trim_end_matches('"');
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                let count: f64 = value.split_whitespace().next()?.parse().ok()?;
                Some((le, count))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Buckets(buckets)
    }

    /// As Prometheus' `histogram_quantile`: linear within the bucket the rank falls
    /// in (from 0 for the first); in the `+Inf` bucket, the highest finite bound.
    fn quantile(&self, q: f64) -> f64 {
        let Some(&(_, total)) = self.0.last() else {
            return f64::NAN;
        };
        if total <= 0.0 {
            return f64::NAN;
        }
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in &self.0 {
            if count >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                if count == lower.1 {
                    return le;
                }
                return lower.0 + (le - lower.0) * (rank - lower.1) / (count - lower.1);
            }
            lower = (le, count);
        }
        lower.0
    }
}

/// The value of an unlabelled sample, such as `parley_media_turns_total`.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The `q` quantile of sorted values, by the nearest rank.
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(f64::NAN)
}

// ---------------------------------------------------------------------------------
// One simulated Twilio caller: leaner than `parley_vendors::twilio_caller` (frames
// written from ready base64, replies read without building JSON trees) and timing
// the answers it hears.

struct Dial {
    url: String,
    stream_sid: String,
    call_sid: String,
    call_id: String,
    token: String,
}

#[derive(Default)]
struct Outcome {
    answered: usize,
    /// Seconds from the end of the caller's speech to the answer's first audio.
    heard: Vec<f64>,
    failure: Option<String>,
}

/// A frame from the media task, read only as far as the caller needs.
#[derive(Deserialize)]
struct Outgoing<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow, default)]
    media: Option<Payload<'a>>,
    #[serde(borrow, default)]
    mark: Option<Name<'a>>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Name<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

/// Counts a call as live from its `start` until it hangs up or fails.
struct Live(Arc<AtomicUsize>);

impl Live {
    fn enter(live: &Arc<AtomicUsize>) -> Live {
        live.fetch_add(1, Ordering::Relaxed);
        Live(live.clone())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The phone's playout of the agent's audio: played at 8,000 bytes a second from when
/// it arrives; marks are echoed when the audio before them has played.
struct Phone {
    until: Instant,
    heard: bool,
    marks: VecDeque<(Instant, String)>,
}

impl Phone {
    fn play(&mut self, now: Instant, bytes: usize) {
        self.until = self.until.max(now) + Duration::from_micros(bytes as u64 * 125);
        self.heard = true;
    }

    fn quiet(&self, now: Instant) -> bool {
        self.heard && now.saturating_duration_since(self.until) >= QUIET
    }
}

enum Phase {
    Greeting {
        since: Instant,
    },
    Saying {
        turn: usize,
        frame: usize,
    },
    Answer {
        turn: usize,
        said: Instant,
        heard: bool,
    },
}

async fn caller(dial: Dial, speech: Arc<Speech>, turns: usize, live: Arc<AtomicUsize>) -> Outcome {
    let mut outcome = Outcome::default();
    if let Err(e) = converse(&dial, &speech, turns, &live, &mut outcome).await {
        outcome.failure = Some(format!("{}: {e:#}", dial.call_sid));
    }
    outcome
}

/// The length of base64 text once decoded.
fn decoded_len(b64: &str) -> usize {
    let pad = b64.bytes().rev().take_while(|&b| b == b'=').count();
    (b64.len() / 4 * 3).saturating_sub(pad)
}

async fn converse(
    dial: &Dial,
    speech: &Speech,
    turns: usize,
    live: &Arc<AtomicUsize>,
    outcome: &mut Outcome,
) -> Result<()> {
    let (socket, _) = tokio_tungstenite::connect_async(&dial.url)
        .await
        .context("connecting")?;
    let (mut tx, mut rx) = socket.split();
    let sid = dial.stream_sid.as_str();
    tx.send(Message::text(
        r#"{"event":"connected","protocol":"Call","version":"1.0.0"}"#,
    ))
    .await?;
    let start = serde_json::json!({
        "event": "start", "sequenceNumber": "1", "streamSid": sid,
        "start": {
            "streamSid": sid, "accountSid": "ACload", "callSid": dial.call_sid,
            "tracks": ["inbound"],
            "customParameters": {
                "token": dial.token, "call_id": dial.call_id, "tenant_id": TENANT,
            },
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    });
    tx.send(Message::text(start.to_string())).await?;
    let live = Live::enter(live);

    let mut seq = 1u64;
    let mut chunk = 0u64;
    let mut phone = Phone {
        until: Instant::now(),
        heard: false,
        marks: VecDeque::new(),
    };
    let mut phase = Phase::Greeting {
        since: Instant::now(),
    };
    let mut tick = tokio::time::interval(FRAME);
    // Like a real phone line, frames late from a busy machine are sent at once.
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mark = |seq: u64, name: &str| {
        let name = serde_json::Value::from(name);
        Message::text(format!(
            r#"{{"event":"mark","sequenceNumber":"{seq}","streamSid":"{sid}","mark":{{"name":{name}}}}}"#
        ))
    };
    loop {
        tokio::select! {
            incoming = rx.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => bail!("the media task closed the stream: {frame:?}"),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => bail!("socket: {e}"),
                    None => bail!("the media task dropped the stream"),
                };
                let now = Instant::now();
                let frame: Outgoing = serde_json::from_str(text.as_str())
                    .with_context(|| format!("an unreadable frame: {}", text.as_str()))?;
                match frame.event.as_ref() {
                    "media" => {
                        if let Phase::Answer { said, heard: heard @ false, .. } = &mut phase {
                            *heard = true;
                            outcome.heard.push(now.duration_since(*said).as_secs_f64());
                        }
                        phone.play(now, frame.media.map_or(0, |m| decoded_len(&m.payload)));
                    }
                    "mark" => {
                        if let Some(m) = frame.mark {
                            phone.marks.push_back((phone.until, m.name.into_owned()));
                        }
                    }
                    "clear" => {
                        phone.until = now;
                        while let Some((_, name)) = phone.marks.pop_front() {
                            seq += 1;
                            tx.send(mark(seq, &name)).await?;
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now = Instant::now();
                while phone.marks.front().is_some_and(|(at, _)| *at <= now) {
                    if let Some((_, name)) = phone.marks.pop_front() {
                        seq += 1;
                        tx.send(mark(seq, &name)).await?;
                    }
                }
                // What this frame carries, moving through the phases as they end.
                let payload = loop {
                    match &mut phase {
                        Phase::Greeting { since } => {
                            if phone.quiet(now) {
                                phase = Phase::Saying { turn: 0, frame: 0 };
                                continue;
                            }
                            if now.duration_since(*since) > WAIT {
                                bail!("no greeting within {WAIT:?}");
                            }
                            break speech.silence.as_str();
                        }
                        Phase::Saying { turn, frame } => {
                            let frames = &speech.phrases[*turn % speech.phrases.len()];
                            let Some(payload) = frames.get(*frame) else {
                                bail!("a phrase with no audio");
                            };
                            *frame += 1;
                            if *frame == frames.len() {
                                phase = Phase::Answer { turn: *turn, said: now, heard: false };
                            }
                            break payload.as_str();
                        }
                        Phase::Answer { turn, said, heard } => {
                            if !*heard && now.duration_since(*said) > WAIT {
                                bail!("turn {} not answered within {WAIT:?}", *turn + 1);
                            }
                            if *heard && phone.quiet(now) {
                                outcome.answered += 1;
                                if *turn + 1 < turns {
                                    phase = Phase::Saying { turn: *turn + 1, frame: 0 };
                                    continue;
                                }
                                seq += 1;
                                let stop = format!(
                                    r#"{{"event":"stop","sequenceNumber":"{seq}","streamSid":"{sid}","stop":{{"accountSid":"ACload","callSid":"{}"}}}}"#,
                                    dial.call_sid
                                );
                                tx.send(Message::text(stop)).await?;
                                drop(live);
                                // The task closes the stream once the call is kept.
                                let closing = async {
                                    while let Some(Ok(message)) = rx.next().await {
                                        if matches!(message, Message::Close(_)) {
                                            break;
                                        }
                                    }
                                };
                                let _ = tokio::time::timeout(Duration::from_secs(10), closing).await;
                                return Ok(());
                            }
                            break speech.silence.as_str();
                        }
                    }
                };
                chunk += 1;
                seq += 1;
                let media = format!(
                    r#"{{"event":"media","sequenceNumber":"{seq}","streamSid":"{sid}","media":{{"track":"inbound","chunk":"{chunk}","timestamp":"{}","payload":"{payload}"}}}}"#,
                    (chunk - 1) * 20
                );
                tx.send(Message::text(media)).await?;
            }
        }
    }
}
