//! Voice activity detection on the caller's audio, and the turn detector built on it.
//!
//! [`VoiceDetector`] scores each 16 ms frame of the caller's audio with `earshot`, a
//! small pure-Rust neural detector that runs at 16 kHz (the call's audio is resampled
//! to it). It was chosen by measurement against an energy threshold and WebRTC's VAD:
//! see `examples/vad_measure.rs` and the README. Audio below a silence gate is not
//! scored at all, which saves most of the cost on a call. [`Turns`] turns those frame verdicts
//! into "the caller started talking" (barge-in) and "the caller's turn ended", with
//! hysteresis so that neither flaps. `Turns` is pure: it only sees verdicts and times.

use crate::resample::{ResampleError, Resampler};

/// Length of one detector frame, in milliseconds.
pub const FRAME_MS: u32 = 16;
/// The detector's rate and frame length in samples at that rate.
const DETECTOR_RATE: u32 = 16_000;
const FRAME_SAMPLES: usize = 256;
/// The probability at and above which a frame counts as speech, unless configured.
/// 0.6 rather than earshot's suggested 0.5: as good on clean speech, and far fewer
/// false alarms in loud noise (F1 0.90 against 0.83 at 10 dB SNR; `vad_measure`).
pub const DEFAULT_THRESHOLD: f32 = 0.6;

#[derive(Debug, thiserror::Error)]
pub enum VadError {
    #[error("voice detection cannot take audio at {rate} Hz: {source}")]
    Rate {
        rate: u32,
        #[source]
        source: ResampleError,
    },
    #[error("invalid speech threshold {0}: must be between 0 and 1")]
    Threshold(f32),
    #[error("invalid silence gate {0} dBFS: must be between -120 and 0")]
    Gate(f32),
}

/// The verdict on one frame of the caller's audio.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    /// Where the frame starts, in milliseconds since the first sample fed.
    pub at_ms: u64,
    pub duration_ms: u32,
    /// The detector's score, from 0 (no voice) to 1 (voice).
    pub probability: f32,
    /// Whether `probability` reached the threshold.
    pub speech: bool,
}

impl Frame {
    /// Where the frame ends, in milliseconds since the first sample fed.
    pub fn end_ms(&self) -> u64 {
        self.at_ms + u64::from(self.duration_ms)
    }
}

/// Audio at or below this level (RMS, dB below full scale) is silence without asking
/// the detector: digital silence and the comfort noise of mobile lines sit far below
/// it, telephone speech tens of dB above. Not scoring it is most of the detector's
/// cost on a call, since the caller mostly listens. Measured in `vad_measure`.
pub const DEFAULT_GATE_DBFS: f32 = -60.0;

/// Scores the caller's audio, fed in chunks of any size at the call's rate.
///
/// Audio is looked at in 20 ms blocks (so the verdicts do not depend on how it was
/// chunked). A block at or below the gate is not resampled: it becomes silence at the
/// detector's rate, keeping time. A detector frame at or below the gate is silence
/// without being scored, and the detector's context, which then misses that audio,
/// restarts at the next frame it scores, as at the start of a stream.
pub struct VoiceDetector {
    /// `None` when the call is already at 16 kHz.
    resampler: Option<Resampler>,
    detector: Box<earshot::Detector>,
    /// The call's rate, and samples per 20 ms block at it.
    rate: u32,
    block: usize,
    /// Input not yet a whole block (less than a block between calls).
    unblocked: Vec<i16>,
    /// 16 kHz samples not yet scored (less than a frame between calls).
    pending: Vec<i16>,
    threshold: f32,
    /// Mean square (of 16-bit samples) at and below which audio is silence; `None`
    /// scores everything.
    gate: Option<u64>,
    /// Input samples taken and 16 kHz samples made, so silence keeps time.
    fed: u64,
    made: u64,
    /// The resampler's stream was ended at a quiet block (its tail flushed).
    in_gap: bool,
    /// Frames left unscored since the detector last scored one.
    skipped: usize,
    frames: u64,
    scored: u64,
}

impl std::fmt::Debug for VoiceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDetector")
            .field("resampler", &self.resampler)
            .field("threshold", &self.threshold)
            .field("gate", &self.gate)
            .field("frames", &self.frames)
            .field("scored", &self.scored)
            .finish_non_exhaustive()
    }
}

impl VoiceDetector {
    /// A detector for audio at `sample_rate` (8, 16, 22.05 or 24 kHz), with the
    /// default threshold and gate.
    pub fn new(sample_rate: u32) -> Result<VoiceDetector, VadError> {
        let resampler = if sample_rate == DETECTOR_RATE {
            None
        } else {
            Some(
                Resampler::new(sample_rate, DETECTOR_RATE).map_err(|source| VadError::Rate {
                    rate: sample_rate,
                    source,
                })?,
            )
        };
        let block = sample_rate as usize / 50;
        Ok(VoiceDetector {
            resampler,
            detector: earshot::Detector::default_boxed(),
            rate: sample_rate,
            block,
            unblocked: Vec::with_capacity(block),
            // Room for a 20 ms block at 24 kHz resampled, plus a frame's remainder.
            pending: Vec::with_capacity(4 * FRAME_SAMPLES),
            threshold: DEFAULT_THRESHOLD,
            gate: Some(mean_square(DEFAULT_GATE_DBFS)),
            fed: 0,
            made: 0,
            in_gap: false,
            skipped: 0,
            frames: 0,
            scored: 0,
        })
    }

    /// Sets the probability at and above which a frame is speech.
    pub fn with_threshold(mut self, threshold: f32) -> Result<VoiceDetector, VadError> {
        if !(0.0..=1.0).contains(&threshold) {
            return Err(VadError::Threshold(threshold));
        }
        self.threshold = threshold;
        Ok(self)
    }

    /// Sets the level (dBFS, from -120 to 0) at and below which audio is silence
    /// without being scored; `None` scores every frame.
    pub fn with_gate(mut self, dbfs: Option<f32>) -> Result<VoiceDetector, VadError> {
        self.gate = match dbfs {
            None => None,
            Some(level) if (-120.0..=0.0).contains(&level) => Some(mean_square(level)),
            Some(level) => return Err(VadError::Gate(level)),
        };
        Ok(self)
    }

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// How many frames the detector has scored (the rest were under the gate).
    pub fn scored(&self) -> u64 {
        self.scored
    }

    /// Feeds the next samples of the caller's audio and calls `on_frame` for each
    /// frame they complete, in order.
    pub fn push(&mut self, samples: &[i16], mut on_frame: impl FnMut(Frame)) {
        let mut rest = samples;
        if !self.unblocked.is_empty() {
            let take = (self.block - self.unblocked.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.unblocked.extend_from_slice(head);
            rest = tail;
            if self.unblocked.len() < self.block {
                return;
            }
            let whole = std::mem::take(&mut self.unblocked);
            self.feed_block(&whole, &mut on_frame);
            self.unblocked = whole;
            self.unblocked.clear();
        }
        let mut blocks = rest.chunks_exact(self.block);
        for block in &mut blocks {
            self.feed_block(block, &mut on_frame);
        }
        self.unblocked.extend_from_slice(blocks.remainder());
    }

    fn feed_block(&mut self, block: &[i16], on_frame: &mut impl FnMut(Frame)) {
        let before = self.pending.len();
        self.fed += block.len() as u64;
        match self.resampler.as_mut() {
            None => self.pending.extend_from_slice(block),
            Some(resampler) if quiet(self.gate, block) => {
                if !self.in_gap {
                    resampler.flush(&mut self.pending);
                    self.in_gap = true;
                }
                // Silence for the block, keeping the 16 kHz timeline in step with the
                // input (the flushed tail may have run a sample ahead).
                let due = self.fed * u64::from(DETECTOR_RATE) / u64::from(self.rate);
                let made = self.made + (self.pending.len() - before) as u64;
                let zeros = due.saturating_sub(made) as usize;
                self.pending.resize(self.pending.len() + zeros, 0);
            }
            Some(resampler) => {
                // After a gap the flushed resampler starts a new stream here.
                self.in_gap = false;
                resampler.process(block, &mut self.pending);
            }
        }
        self.made += (self.pending.len() - before) as u64;
        self.score(on_frame);
    }

    fn score(&mut self, on_frame: &mut impl FnMut(Frame)) {
        let mut done = 0;
        while let Some(frame) = self.pending.get(done..done + FRAME_SAMPLES) {
            let probability = if quiet(self.gate, frame) {
                self.skipped += 1;
                0.0
            } else {
                // The detector's context (its last frames and its memory) has not seen
                // the quiet stretch: replay it as silence, up to the point where more
                // would no longer change the detector's state.
                for _ in 0..self.skipped.min(CATCH_UP_FRAMES) {
                    self.detector.predict_i16(&SILENT_FRAME);
                }
                self.skipped = 0;
                self.scored += 1;
                self.detector.predict_i16(frame)
            };
            on_frame(Frame {
                at_ms: self.frames * u64::from(FRAME_MS),
                duration_ms: FRAME_MS,
                probability,
                speech: probability >= self.threshold,
            });
            self.frames += 1;
            done += FRAME_SAMPLES;
        }
        self.pending.drain(..done);
    }
}

/// Silent frames replayed to the detector after a quiet stretch.
const CATCH_UP_FRAMES: usize = 16;
const SILENT_FRAME: [i16; FRAME_SAMPLES] = [0; FRAME_SAMPLES];

/// The mean square of 16-bit samples at `dbfs` RMS.
fn mean_square(dbfs: f32) -> u64 {
    let rms = 32768.0 * 10f64.powf(f64::from(dbfs) / 20.0);
    (rms * rms) as u64
}

/// Whether `samples` are at or below the gate's mean square.
fn quiet(gate: Option<u64>, samples: &[i16]) -> bool {
    let Some(gate) = gate else {
        return false;
    };
    let energy: u64 = samples
        .iter()
        .map(|&s| (i64::from(s) * i64::from(s)) as u64)
        .sum();
    energy <= gate * samples.len() as u64
}

/// What the turn detector saw the caller do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TurnEvent {
    /// The caller started talking at `at_ms` (the start of the speech, reported once
    /// it has lasted `min_speech_ms`).
    SpeechStarted { at_ms: u64 },
    /// The caller stopped talking at `at_ms` (the end of the last speech, reported once
    /// `silence_ms` of silence followed it).
    SpeechEnded { at_ms: u64 },
}

/// How [`Turns`] decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TurnConfig {
    /// Speech must last this long to count as the caller starting to talk (counting
    /// speech frames only, across gaps of up to `onset_gap_ms`).
    pub min_speech_ms: u32,
    /// Silence this long ends the caller's turn.
    pub silence_ms: u32,
    /// Non-speech gaps up to this long before `min_speech_ms` is reached pause the
    /// count instead of restarting it, so a frame or two scored just under the
    /// threshold mid-word do not delay barge-in.
    pub onset_gap_ms: u32,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            min_speech_ms: 200,
            silence_ms: 500,
            onset_gap_ms: 48,
        }
    }
}

/// The turn detector: frame verdicts in, [`TurnEvent`]s out.
#[derive(Clone, Debug)]
pub struct Turns {
    config: TurnConfig,
    state: State,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// The caller is silent; `onset` is speech seen but not yet long enough.
    Silent { onset: Option<Onset> },
    /// The caller is talking; `last_speech_end` is where speech was last heard.
    Talking { last_speech_end: u64 },
}

#[derive(Clone, Copy, Debug)]
struct Onset {
    start: u64,
    last_speech_end: u64,
    /// Speech heard since `start`, not counting the gaps.
    speech_ms: u64,
}

impl Turns {
    /// A turn detector with these two settings and the default onset gap.
    pub fn new(min_speech_ms: u32, silence_ms: u32) -> Turns {
        Turns::with_config(TurnConfig {
            min_speech_ms,
            silence_ms,
            ..TurnConfig::default()
        })
    }

    pub fn with_config(config: TurnConfig) -> Turns {
        Turns {
            config,
            state: State::Silent { onset: None },
        }
    }

    pub fn config(&self) -> TurnConfig {
        self.config
    }

    /// Whether the caller is talking (a start was reported and no end since).
    pub fn talking(&self) -> bool {
        matches!(self.state, State::Talking { .. })
    }

    /// Takes the next frame's verdict (frames in time order) and says what changed.
    pub fn feed(&mut self, frame: &Frame) -> Option<TurnEvent> {
        let end = frame.end_ms();
        match (&mut self.state, frame.speech) {
            (State::Silent { onset }, true) => {
                let o = onset.get_or_insert(Onset {
                    start: frame.at_ms,
                    last_speech_end: frame.at_ms,
                    speech_ms: 0,
                });
                o.speech_ms += u64::from(frame.duration_ms);
                o.last_speech_end = end;
                if o.speech_ms >= u64::from(self.config.min_speech_ms) {
                    let at_ms = o.start;
                    self.state = State::Talking {
                        last_speech_end: end,
                    };
                    return Some(TurnEvent::SpeechStarted { at_ms });
                }
                None
            }
            (State::Silent { onset }, false) => {
                if let Some(o) = onset
                    && end.saturating_sub(o.last_speech_end) > u64::from(self.config.onset_gap_ms)
                {
                    *onset = None;
                }
                None
            }
            (State::Talking { last_speech_end }, true) => {
                *last_speech_end = end;
                None
            }
            (State::Talking { last_speech_end }, false) => {
                let last = *last_speech_end;
                if end.saturating_sub(last) >= u64::from(self.config.silence_ms) {
                    self.state = State::Silent { onset: None };
                    return Some(TurnEvent::SpeechEnded { at_ms: last });
                }
                None
            }
        }
    }
}

impl Default for Turns {
    fn default() -> Self {
        Turns::with_config(TurnConfig::default())
    }
}
