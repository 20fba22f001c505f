//! Voice activity detection on the caller's audio, and the turn detector built on it.
//!
//! [`VoiceDetector`] scores each 16 ms frame of the caller's audio with `earshot`, a
//! small pure-Rust neural detector that runs at 16 kHz (the call's audio is resampled
//! to it). It was chosen by measurement against an energy threshold and WebRTC's VAD:
//! see `examples/vad_measure.rs` and the README. [`Turns`] turns those frame verdicts
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

/// Scores the caller's audio, fed in chunks of any size at the call's rate.
pub struct VoiceDetector {
    /// `None` when the call is already at 16 kHz.
    resampler: Option<Resampler>,
    detector: Box<earshot::Detector>,
    /// 16 kHz samples not yet scored (less than a frame between calls).
    pending: Vec<i16>,
    threshold: f32,
    frames: u64,
}

impl std::fmt::Debug for VoiceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceDetector")
            .field("resampler", &self.resampler)
            .field("threshold", &self.threshold)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl VoiceDetector {
    /// A detector for audio at `sample_rate` (8, 16, 22.05 or 24 kHz), with the
    /// default threshold.
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
        Ok(VoiceDetector {
            resampler,
            detector: earshot::Detector::default_boxed(),
            // Room for a 20 ms chunk at 24 kHz resampled, plus a frame's remainder.
            pending: Vec::with_capacity(4 * FRAME_SAMPLES),
            threshold: DEFAULT_THRESHOLD,
            frames: 0,
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

    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Feeds the next samples of the caller's audio and calls `on_frame` for each
    /// frame they complete, in order.
    pub fn push(&mut self, samples: &[i16], mut on_frame: impl FnMut(Frame)) {
        match self.resampler.as_mut() {
            Some(resampler) => resampler.process(samples, &mut self.pending),
            None => self.pending.extend_from_slice(samples),
        }
        let mut scored = 0;
        while let Some(frame) = self.pending.get(scored..scored + FRAME_SAMPLES) {
            let probability = self.detector.predict_i16(frame);
            on_frame(Frame {
                at_ms: self.frames * u64::from(FRAME_MS),
                duration_ms: FRAME_MS,
                probability,
                speech: probability >= self.threshold,
            });
            self.frames += 1;
            scored += FRAME_SAMPLES;
        }
        self.pending.drain(..scored);
    }
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
