//! The streaming resampler: lengths, frequency, level, alignment, anti-aliasing,
//! chunking, and no allocation once warmed up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::f64::consts::PI;

use parley_media::resample::{ResampleError, Resampler, SUPPORTED_RATES};

/// Counts this thread's allocations, so a test can prove the hot path allocates nothing.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

fn sine(freq: f64, rate: u32, len: usize, amplitude: f64) -> Vec<i16> {
    (0..len)
        .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin()).round() as i16)
        .collect()
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Amplitude and phase (radians) of `freq` in `samples`, by correlation with a complex
/// exponential; `samples` should hold whole periods or many of them.
fn tone(samples: &[i16], freq: f64, rate: u32, first_index: usize) -> (f64, f64) {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in samples.iter().enumerate() {
        let t = (first_index + i) as f64 / f64::from(rate);
        re += f64::from(s) * (2.0 * PI * freq * t).cos();
        im += f64::from(s) * (2.0 * PI * freq * t).sin();
    }
    let n = samples.len() as f64;
    ((re * re + im * im).sqrt() * 2.0 / n, im.atan2(re))
}

/// Zero crossings per second, halved: the frequency of a clean tone.
fn zero_crossing_frequency(samples: &[i16], rate: u32) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / f64::from(rate))
}

fn run_chunked(from: u32, to: u32, input: &[i16], chunk: usize) -> Vec<i16> {
    let mut resampler = Resampler::new(from, to).unwrap();
    let mut out = Vec::new();
    for piece in input.chunks(chunk) {
        resampler.process(piece, &mut out);
    }
    resampler.flush(&mut out);
    out
}

fn pairs() -> impl Iterator<Item = (u32, u32)> {
    SUPPORTED_RATES
        .into_iter()
        .flat_map(|from| SUPPORTED_RATES.into_iter().map(move |to| (from, to)))
}

#[test]
fn every_rate_pair_keeps_length_frequency_level_and_timing() {
    for (from, to) in pairs() {
        // Given two seconds of a 440 Hz tone at `from`, fed in 20 ms chunks
        let input = sine(440.0, from, 2 * from as usize, 10_000.0);
        let chunk = from as usize / 50;
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for piece in input.chunks(chunk) {
            resampler.process(piece, &mut out);
        }

        // Then, before the flush, the output lags the ratio by at most the latency
        let ideal = input.len() as f64 * f64::from(to) / f64::from(from);
        let lag = ideal - out.len() as f64;
        assert!(
            (0.0..=resampler.latency() as f64).contains(&lag),
            "{from}->{to}: {} samples out for {ideal} ideal, latency {}",
            out.len(),
            resampler.latency()
        );
        // And after it, exactly the ratio's worth
        resampler.flush(&mut out);
        assert_eq!(
            out.len() as u64,
            (input.len() as u64 * u64::from(to)).div_ceil(u64::from(from)),
            "{from}->{to}"
        );

        // The tone keeps its frequency, its level and its place in time, to within half
        // an output sample (away from the edges, where the filter sees the stream's ends)
        let edge = to as usize / 10;
        let middle = &out[edge..out.len() - edge];
        let freq = zero_crossing_frequency(middle, to);
        assert!((freq - 440.0).abs() < 2.0, "{from}->{to}: {freq} Hz");
        let level_db = 20.0 * (rms(middle) / rms(&input)).log10();
        assert!(level_db.abs() < 1.0, "{from}->{to}: level {level_db:.2} dB");
        let (_, phase_in) = tone(&input, 440.0, from, 0);
        let (_, phase_out) = tone(middle, 440.0, to, edge);
        let mut shift = phase_out - phase_in;
        shift = (shift + PI).rem_euclid(2.0 * PI) - PI;
        let samples_off = shift / (2.0 * PI * 440.0) * f64::from(to);
        assert!(
            samples_off.abs() <= 0.51,
            "{from}->{to}: output is {samples_off:.2} samples off the input's timeline"
        );
    }
}

#[test]
fn equal_rates_pass_straight_through() {
    for rate in SUPPORTED_RATES {
        let input = sine(1000.0, rate, rate as usize / 10, 12_000.0);
        let mut resampler = Resampler::new(rate, rate).unwrap();
        assert_eq!(resampler.latency(), 0);
        let mut out = Vec::new();
        resampler.process(&input, &mut out);
        assert_eq!(out, input);
        resampler.flush(&mut out);
        assert_eq!(out, input);
    }
}

#[test]
fn chunk_sizes_do_not_change_the_output() {
    for (from, to) in pairs() {
        // A chord of three tones, so the comparison sees more than one frequency
        let n = from as usize;
        let input: Vec<i16> = sine(300.0, from, n, 6000.0)
            .iter()
            .zip(sine(1250.0, from, n, 4000.0))
            .zip(sine(3100.0, from, n, 3000.0))
            .map(|((a, b), c)| a + b + c)
            .collect();
        let whole = run_chunked(from, to, &input, input.len());
        let frames = run_chunked(from, to, &input, from as usize / 50);

        // Odd sizes: 1, 7, 333 and more than rubato's largest chunk, in turn
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut odd = Vec::new();
        let mut rest = &input[..];
        for size in [1usize, 7, 333, 1500].into_iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            resampler.process(piece, &mut odd);
            rest = tail;
        }
        resampler.flush(&mut odd);

        for (name, other) in [("20 ms chunks", &frames), ("odd chunks", &odd)] {
            assert_eq!(other.len(), whole.len(), "{from}->{to} {name}");
            let worst = whole
                .iter()
                .zip(other.iter())
                .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
                .max()
                .unwrap_or(0);
            assert!(worst <= 2, "{from}->{to} {name}: differs by {worst}");
        }
    }
}

#[test]
fn a_flushed_or_reset_resampler_starts_a_new_stream() {
    let input = sine(440.0, 24_000, 4800, 8000.0);
    let mut resampler = Resampler::new(24_000, 8_000).unwrap();
    let mut first = Vec::new();
    resampler.process(&input, &mut first);
    resampler.flush(&mut first);
    let mut second = Vec::new();
    resampler.process(&input, &mut second);
    resampler.flush(&mut second);
    assert_eq!(first, second);
    assert_eq!(first.len(), 1600);

    // A reset drops the stream held so far, tail and all
    let mut third = Vec::new();
    resampler.process(&sine(3000.0, 24_000, 480, 8000.0), &mut third);
    resampler.reset();
    third.clear();
    resampler.process(&input, &mut third);
    resampler.flush(&mut third);
    assert_eq!(third, first);
}

#[test]
fn downsampling_filters_out_what_the_new_rate_cannot_hold() {
    // A 6 kHz tone cannot exist at 8 kHz; unfiltered it would alias to 2 kHz
    for from in [16_000, 22_050, 24_000] {
        let input = sine(6000.0, from, from as usize, 10_000.0);
        let out = run_chunked(from, 8_000, &input, from as usize / 50);
        let middle = &out[800..out.len() - 800];
        let attenuation = 20.0 * (rms(middle) / rms(&input)).log10();
        assert!(
            attenuation < -40.0,
            "{from}->8000: 6 kHz only {attenuation:.1} dB down"
        );
    }
}

#[test]
fn telephone_band_passes_downsampling_to_8k() {
    // 3.2 kHz is inside the telephone band (300–3400 Hz) and must survive to 8 kHz
    for from in [16_000, 22_050, 24_000] {
        let input = sine(3200.0, from, from as usize, 10_000.0);
        let out = run_chunked(from, 8_000, &input, from as usize / 50);
        let middle = &out[800..out.len() - 800];
        let level = 20.0 * (rms(middle) / rms(&input)).log10();
        assert!(level > -3.0, "{from}->8000: 3.2 kHz is {level:.1} dB");
    }
}

#[test]
fn no_allocation_per_call_once_warmed_up() {
    for (from, to) in pairs() {
        let input = sine(440.0, from, from as usize, 10_000.0);
        let chunk = from as usize / 50;
        let mut resampler = Resampler::new(from, to).unwrap();
        let mut out = Vec::with_capacity(4 * to as usize);
        for piece in input.chunks(chunk).take(5) {
            resampler.process(piece, &mut out);
        }
        let before = allocations();
        for piece in input.chunks(chunk).skip(5) {
            resampler.process(piece, &mut out);
        }
        assert_eq!(allocations(), before, "{from}->{to} allocated");
    }
}

#[test]
fn an_unsupported_rate_is_a_clear_error() {
    for (from, to) in [(44_100, 8_000), (8_000, 48_000), (0, 16_000)] {
        let err = Resampler::new(from, to).unwrap_err();
        let bad = if SUPPORTED_RATES.contains(&from) {
            to
        } else {
            from
        };
        assert!(matches!(err, ResampleError::UnsupportedRate(r) if r == bad));
        let message = err.to_string();
        assert!(message.contains(&bad.to_string()), "{message}");
        assert!(
            message.contains("8000, 16000, 22050 and 24000"),
            "{message}"
        );
    }
}
