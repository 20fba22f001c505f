//! Sample-rate conversion between the carriers' and vendors' rates, for streams of
//! 16-bit mono speech fed in small chunks (a 20 ms frame at a time).
//!
//! Built on `rubato`'s asynchronous sinc resampler with a short (64-tap) Blackman
//! filter: telephone speech needs a clean 0–3.4 kHz band, not hi-fi, and a short
//! filter keeps both the CPU cost (about one 64-tap dot product per output sample) and
//! the added delay (32 input samples, 1.3–4 ms) small. When the ratio is a fraction
//! with a small denominator (every pair of 8, 16 and 24 kHz) the filter is tabulated
//! at exactly the phases the ratio needs, so the conversion is an exact polyphase
//! filter; the 22.05 kHz pairs interpolate linearly between 64 tabulated phases.
//!
//! The output is aligned with the input: output sample `k` is the signal at input time
//! `k / to` seconds. The filter's delay is trimmed from the start, so the last
//! [`Resampler::latency`] output samples of what was fed so far are held back until
//! more input, or [`Resampler::flush`], arrives.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{
    Async, FixedAsync, Indexing, Resampler as _, Resizable as _, SincInterpolationParameters,
    SincInterpolationType, WindowFunction,
};

/// The rates audio inside a call may have.
pub const SUPPORTED_RATES: [u32; 4] = [8_000, 16_000, 22_050, 24_000];

/// Filter length in input samples; see the module doc for why this short.
const SINC_LEN: usize = 64;
/// Largest piece handed to rubato at once; longer inputs are fed in pieces of this.
const MAX_CHUNK: usize = 1024;
/// Exact polyphase tables are used up to this many phases (memory: 64 taps × phases).
const MAX_EXACT_PHASES: u32 = 32;
/// Phases tabulated when the ratio needs more than [`MAX_EXACT_PHASES`].
const INTERPOLATED_PHASES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("unsupported sample rate {0} Hz: supported rates are 8000, 16000, 22050 and 24000")]
    UnsupportedRate(u32),
    #[error("cannot build the resampler from {from} Hz to {to} Hz: {detail}")]
    Construction { from: u32, to: u32, detail: String },
}

/// A streaming converter of mono 16-bit PCM from one rate to another; one per stream.
pub struct Resampler {
    from: u32,
    to: u32,
    /// `None` when the rates are equal: samples pass straight through.
    converter: Option<Box<Converter>>,
}

struct Converter {
    inner: Async<f32>,
    /// The input as floats, and rubato's output before rounding to 16 bits; kept to
    /// avoid allocating per call.
    input: Vec<f32>,
    scratch: Vec<f32>,
    /// The filter's delay in output samples, trimmed from the start of the stream.
    delay: usize,
    /// Most output samples held back at once: the delay plus rubato's margin.
    latency: usize,
    /// Output samples still to trim.
    to_skip: usize,
    /// Input samples fed and output samples emitted since the stream began.
    consumed: u64,
    produced: u64,
}

impl std::fmt::Debug for Resampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("latency", &self.latency())
            .finish()
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz, each one of [`SUPPORTED_RATES`].
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResampleError> {
        for rate in [from, to] {
            if !SUPPORTED_RATES.contains(&rate) {
                return Err(ResampleError::UnsupportedRate(rate));
            }
        }
        if from == to {
            return Ok(Resampler {
                from,
                to,
                converter: None,
            });
        }
        let construction = |detail: String| ResampleError::Construction { from, to, detail };
        // Output sample k sits at input position k·from/to, so its phase is a multiple
        // of 1/(to/gcd): with that many tabulated phases every position is exact.
        let phases = to / gcd(from, to);
        let params = if phases <= MAX_EXACT_PHASES {
            SincInterpolationParameters::new(SINC_LEN, WindowFunction::Blackman)
                .oversampling_factor(phases as usize)
                .interpolation(SincInterpolationType::Nearest)
        } else {
            SincInterpolationParameters::new(SINC_LEN, WindowFunction::Blackman)
                .oversampling_factor(INTERPOLATED_PHASES)
                .interpolation(SincInterpolationType::Linear)
        };
        let ratio = f64::from(to) / f64::from(from);
        let inner = Async::<f32>::new_sinc(ratio, 1.0, &params, MAX_CHUNK, 1, FixedAsync::Input)
            .map_err(|e| construction(e.to_string()))?;
        // Where rubato's filter puts its output, in input samples after the stream's
        // start: output k is the input at (k + 1)·from/to − SINC_LEN/2 + 1/phases
        // (its tables sit 1/phases after the centre). Trimming the first `delay`
        // outputs puts output k at k·from/to, give or take half an output sample.
        let phases_used = if phases <= MAX_EXACT_PHASES {
            f64::from(phases)
        } else {
            INTERPOLATED_PHASES as f64
        };
        let delay = (((SINC_LEN / 2) as f64 - 1.0 / phases_used) * ratio - 1.0)
            .round()
            .max(0.0) as usize;
        // rubato emits an output once two input samples past its window have come:
        // so at most this many outputs are held back.
        let latency = delay + (2.0 * ratio).ceil() as usize + 1;
        let scratch = vec![0.0; inner.output_frames_max()];
        Ok(Resampler {
            from,
            to,
            converter: Some(Box::new(Converter {
                inner,
                input: vec![0.0; MAX_CHUNK],
                scratch,
                delay,
                latency,
                to_skip: delay,
                consumed: 0,
                produced: 0,
            })),
        })
    }

    pub fn from_rate(&self) -> u32 {
        self.from
    }

    pub fn to_rate(&self) -> u32 {
        self.to
    }

    /// The most output samples held back by the filter's look-ahead (0 when the rates
    /// are equal): how far, at worst, the output lags what was fed.
    pub fn latency(&self) -> usize {
        self.converter.as_ref().map_or(0, |c| c.latency)
    }

    /// Converts `input`, the next samples of the stream, appending to `out` what is
    /// ready. Consecutive calls join seamlessly, whatever their sizes.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self.converter.as_mut() {
            None => out.extend_from_slice(input),
            Some(c) => {
                for piece in input.chunks(MAX_CHUNK) {
                    c.run(Some(piece), out);
                }
            }
        }
    }

    /// Ends the stream: appends the samples still held back, so that the whole output
    /// is `ceil(input × to / from)` samples. The resampler then starts a new stream.
    pub fn flush(&mut self, out: &mut Vec<i16>) {
        let Some(c) = self.converter.as_mut() else {
            return;
        };
        let expected = (c.consumed * u64::from(self.to)).div_ceil(u64::from(self.from));
        // Silence pushes the tail out; each round yields about a chunk's worth.
        while c.produced < expected {
            let missing = expected - c.produced;
            let before = out.len();
            if !c.run(None, out) {
                break;
            }
            let emitted = (out.len() - before) as u64;
            if emitted > missing {
                out.truncate(before + missing as usize);
                break;
            }
        }
        c.restart();
    }

    /// Drops the stream held so far without emitting its tail (say, when the audio
    /// being converted is cut off); the resampler then starts a new stream.
    pub fn reset(&mut self) {
        if let Some(c) = self.converter.as_mut() {
            c.restart();
        }
    }
}

impl Converter {
    fn restart(&mut self) {
        self.inner.reset();
        self.to_skip = self.delay;
        self.consumed = 0;
        self.produced = 0;
    }

    /// Feeds `input` (at most [`MAX_CHUNK`] samples; `None` for a chunk of silence) and
    /// appends the output, minus what is still to be trimmed. False if rubato refused,
    /// which the sizes used here rule out.
    fn run(&mut self, input: Option<&[i16]>, out: &mut Vec<i16>) -> bool {
        let len = input.map_or(MAX_CHUNK, <[i16]>::len);
        if len == 0 {
            return true;
        }
        let result = (|| -> Result<(usize, usize), String> {
            self.inner.set_chunk_size(len).map_err(|e| e.to_string())?;
            let frames = self.inner.output_frames_next();
            let scratch = self
                .scratch
                .get_mut(..frames)
                .ok_or("output larger than its buffer")?;
            let mut output =
                InterleavedSlice::new_mut(scratch, 1, frames).map_err(|e| e.to_string())?;
            let processed = match input {
                Some(samples) => {
                    let floats = self
                        .input
                        .get_mut(..len)
                        .ok_or("input larger than its buffer")?;
                    for (f, &s) in floats.iter_mut().zip(samples) {
                        *f = f32::from(s) * (1.0 / 32768.0);
                    }
                    let adapter =
                        InterleavedSlice::new(&*floats, 1, len).map_err(|e| e.to_string())?;
                    self.inner.process_into_buffer(&adapter, &mut output, None)
                }
                None => {
                    let silence =
                        InterleavedSlice::new(&[] as &[f32], 1, 0).map_err(|e| e.to_string())?;
                    let indexing = Indexing::new().partial_len(0);
                    self.inner
                        .process_into_buffer(&silence, &mut output, Some(&indexing))
                }
            };
            processed.map_err(|e| e.to_string())
        })();
        let written = match result {
            Ok((_, written)) => written,
            Err(e) => {
                tracing::error!("resampler refused a chunk of {len} samples: {e}");
                return false;
            }
        };
        if input.is_some() {
            self.consumed += len as u64;
        }
        let skip = self.to_skip.min(written);
        self.to_skip -= skip;
        let ready = self.scratch.get(skip..written).unwrap_or(&[]);
        self.produced += ready.len() as u64;
        // Rounded half away from zero; `as` saturates what is out of range. (Not
        // `f32::round`, which is a library call on baseline x86-64.)
        out.extend(ready.iter().map(|&s| {
            let v = s * 32768.0;
            (v + 0.5f32.copysign(v)) as i16
        }));
        true
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}
