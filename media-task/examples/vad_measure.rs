//! Measures voice activity detection on labelled telephone-rate speech: frame-level
//! precision, recall and F1, and CPU time per 20 ms of audio, for `earshot` (through
//! [`VoiceDetector`], which resamples 8 kHz to 16 kHz) and for a plain energy
//! threshold as the baseline.
//!
//! The audio is made here: sentences spoken by several flite voices, each brought to
//! the same speech level (−20 dBFS), resampled to 8 kHz, and laid between stretches of
//! digital silence and of low-level (−60 dBFS) white noise; then white noise is added
//! over everything at 20 dB and 10 dB SNR. A millisecond is labelled speech where the
//! clean speech is within 35 dB of its loudest 10 ms, with pauses shorter than 150 ms
//! inside speech counted as speech (a caller pausing between words is still talking).
//! A detector's frame is labelled by the majority of its milliseconds.
//!
//! ```sh
//! cargo run --release -p parley-media --example vad_measure            # the figures
//! cargo run --release -p parley-media --example vad_measure -- --dump DIR
//! ```
//! `--dump` also writes each condition as `DIR/<name>.wav` (8 kHz mono) with its
//! labels in `DIR/<name>.labels` (one `0`/`1` a millisecond), so that other detectors
//! can be measured on exactly the same audio outside this project.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use parley_media::resample::Resampler;
use parley_media::vad::{DEFAULT_GATE_DBFS, DEFAULT_THRESHOLD, VoiceDetector};

const RATE: u32 = 8_000;
const VOICES: [&str; 4] = ["slt", "rms", "awb", "kal"];
const SENTENCES: [&str; 6] = [
    "Hi, I'm calling about the apartment on Maple Street.",
    "Yes, Tuesday afternoon works for me.",
    "Could you tell me the price again?",
    "No thanks, I'm not interested.",
    "My number is five five five, zero one three two.",
    "Hold on a second, let me check my calendar.",
];

fn main() {
    let dump = std::env::args()
        .skip_while(|a| a != "--dump")
        .nth(1)
        .map(PathBuf::from);
    let work = tempfile::tempdir().expect("a temporary folder");
    let corpus = corpus(work.path());
    println!(
        "corpus: {} utterances, {:.1} s of audio at 8 kHz, {:.0} % labelled speech",
        VOICES.len() * SENTENCES.len(),
        corpus.clean.len() as f64 / f64::from(RATE),
        100.0 * corpus.labels_ms.iter().filter(|&&l| l).count() as f64
            / corpus.labels_ms.len() as f64
    );
    println!("{}", machine());

    let conditions = [
        ("clean", None),
        ("snr20", Some(20.0)),
        ("snr10", Some(10.0)),
    ];
    println!(
        "\n{:<24} {:>6} {:>9} {:>7} {:>6}",
        "detector", "audio", "precision", "recall", "F1"
    );
    for (name, snr) in conditions {
        let audio = match snr {
            None => corpus.clean.clone(),
            Some(db) => with_noise(
                &corpus.clean,
                corpus.speech_rms,
                db,
                0x5eed_0000 + db as u64,
            ),
        };
        if let Some(dir) = &dump {
            write_condition(dir, name, &audio, &corpus.labels_ms);
        }
        let gated: Vec<(u64, u32, bool)> = earshot_probabilities(&audio, Some(DEFAULT_GATE_DBFS))
            .iter()
            .map(|&(at, dur, p)| (at, dur, p >= DEFAULT_THRESHOLD))
            .collect();
        report("earshot default (gated)", name, &gated, &corpus.labels_ms);
        let probabilities = earshot_probabilities(&audio, None);
        for threshold in [0.3, 0.5, 0.6, 0.7] {
            let verdicts: Vec<(u64, u32, bool)> = probabilities
                .iter()
                .map(|&(at, dur, p)| (at, dur, p >= threshold))
                .collect();
            report(
                &format!("earshot p>={threshold}"),
                name,
                &verdicts,
                &corpus.labels_ms,
            );
        }
        for threshold_db in [-45.0, -35.0] {
            let verdicts = energy_verdicts(&audio, threshold_db);
            report(
                &format!("energy >{threshold_db} dBFS"),
                name,
                &verdicts,
                &corpus.labels_ms,
            );
        }
    }

    // CPU: the 10 dB condition fed in 20 ms chunks, best of five runs; and the clean
    // audio, whose pauses are digital silence, with and without the gate.
    let audio = with_noise(&corpus.clean, corpus.speech_rms, 10.0, 7);
    let chunk = (RATE / 50) as usize;
    let chunks = audio.len().div_ceil(chunk) as f64;
    let detect = |audio: &[i16], gate: Option<f32>| {
        best_of(5, || {
            let mut detector = VoiceDetector::new(RATE)
                .and_then(|d| d.with_gate(gate))
                .expect("8 kHz is supported");
            let mut speech = 0usize;
            for piece in audio.chunks(chunk) {
                detector.push(piece, |f| speech += usize::from(f.speech));
            }
            std::hint::black_box(speech);
        })
    };
    let earshot = detect(&audio, None);
    let clean_gated = detect(&corpus.clean, Some(DEFAULT_GATE_DBFS));
    let clean_ungated = detect(&corpus.clean, None);
    let resampling = best_of(5, || {
        let mut resampler = Resampler::new(RATE, 16_000).expect("8 kHz is supported");
        let mut out = Vec::with_capacity(1024);
        for piece in audio.chunks(chunk) {
            out.clear();
            resampler.process(piece, &mut out);
            std::hint::black_box(&out);
        }
    });
    let energy = best_of(5, || {
        std::hint::black_box(energy_verdicts(&audio, -35.0));
    });
    println!("\nCPU, one core, release build, per 20 ms of 8 kHz audio:");
    println!(
        "  earshot (with 8->16 kHz resampling): {:.2} µs",
        earshot * 1e6 / chunks
    );
    println!(
        "  the same on clean audio, every frame scored: {:.2} µs; gated: {:.2} µs",
        clean_ungated * 1e6 / chunks,
        clean_gated * 1e6 / chunks
    );
    println!(
        "    of which 8->16 kHz resampling:       {:.2} µs",
        resampling * 1e6 / chunks
    );
    println!(
        "  energy threshold:                    {:.2} µs",
        energy * 1e6 / chunks
    );
}

struct Corpus {
    clean: Vec<i16>,
    labels_ms: Vec<bool>,
    /// RMS of the speech where it is labelled speech, for setting SNRs.
    speech_rms: f64,
}

fn corpus(dir: &Path) -> Corpus {
    let mut noise = Noise(0x1234_5678);
    let mut clean: Vec<i16> = Vec::new();
    let mut labels_ms: Vec<bool> = Vec::new();
    let gap = |clean: &mut Vec<i16>, labels: &mut Vec<bool>, noise: &mut Noise, quiet: bool| {
        let n = (RATE as usize) * 7 / 10;
        for _ in 0..n {
            clean.push(if quiet { 0 } else { noise.sample(32.0) });
        }
        labels.extend(std::iter::repeat_n(false, 700));
    };
    let mut utterance = 0;
    for voice in VOICES {
        for sentence in SENTENCES {
            gap(&mut clean, &mut labels_ms, &mut noise, utterance % 2 == 0);
            let speech = speak(dir, voice, sentence);
            labels_ms.extend(label(&speech));
            clean.extend_from_slice(&speech);
            utterance += 1;
        }
    }
    gap(&mut clean, &mut labels_ms, &mut noise, false);
    labels_ms.truncate(clean.len() / 8);
    let (sum, n) = clean
        .chunks(8)
        .zip(&labels_ms)
        .filter(|(_, l)| **l)
        .flat_map(|(ms, _)| ms.iter())
        .fold((0.0, 0usize), |(s, n), &x| {
            (s + f64::from(x).powi(2), n + 1)
        });
    Corpus {
        clean,
        labels_ms,
        speech_rms: (sum / n as f64).sqrt(),
    }
}

/// One sentence by one flite voice, at 8 kHz, its speech at −20 dBFS.
fn speak(dir: &Path, voice: &str, text: &str) -> Vec<i16> {
    let path = dir.join(format!("{voice}-{}.wav", text.len()));
    let status = Command::new("flite")
        .args(["-voice", voice, "-t", text, "-o"])
        .arg(&path)
        .status()
        .expect("flite must be installed: apt-get install -y flite");
    assert!(status.success(), "flite failed for voice {voice}");
    let mut reader = hound::WavReader::open(&path).expect("flite's WAV");
    let rate = reader.spec().sample_rate;
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect();
    let mut at_8k = Vec::new();
    let mut resampler = Resampler::new(rate, RATE).expect("flite's rate is supported");
    resampler.process(&samples, &mut at_8k);
    resampler.flush(&mut at_8k);
    let active = label(&at_8k);
    let (sum, n) = at_8k
        .chunks(8)
        .zip(&active)
        .filter(|(_, l)| **l)
        .flat_map(|(ms, _)| ms.iter())
        .fold((0.0, 0usize), |(s, n), &x| {
            (s + f64::from(x).powi(2), n + 1)
        });
    let gain = 32768.0 * 0.1 / (sum / n.max(1) as f64).sqrt();
    at_8k
        .iter()
        .map(|&s| (f64::from(s) * gain).round().clamp(-32768.0, 32767.0) as i16)
        .collect()
}

/// Per millisecond: is this clean speech? See the module doc.
fn label(speech: &[i16]) -> Vec<bool> {
    let frame = (RATE / 100) as usize;
    let energies: Vec<f64> = speech
        .chunks(frame)
        .map(|f| f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64)
        .collect();
    let peak = energies.iter().cloned().fold(0.0, f64::max);
    let mut active: Vec<bool> = energies
        .iter()
        .map(|&e| e > peak * 10f64.powf(-3.5))
        .collect();
    // Fill pauses shorter than 150 ms between speech.
    let mut last: Option<usize> = None;
    for i in 0..active.len() {
        if active[i] {
            if let Some(prev) = last
                && i - prev > 1
                && i - prev <= 15
            {
                active[prev + 1..i].iter_mut().for_each(|a| *a = true);
            }
            last = Some(i);
        }
    }
    let ms = speech.len() / 8;
    (0..ms).map(|m| active[m / 10]).collect()
}

fn with_noise(clean: &[i16], speech_rms: f64, snr_db: f64, seed: u64) -> Vec<i16> {
    let mut noise = Noise(seed | 1);
    // Uniform noise in ±a has RMS a/√3.
    let amplitude = speech_rms / 10f64.powf(snr_db / 20.0) * 3f64.sqrt();
    clean
        .iter()
        .map(|&s| {
            (f64::from(s) + f64::from(noise.sample(amplitude)))
                .round()
                .clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

/// (start ms, duration ms, probability) for each earshot frame.
fn earshot_probabilities(audio: &[i16], gate: Option<f32>) -> Vec<(u64, u32, f32)> {
    let mut detector = VoiceDetector::new(RATE)
        .and_then(|d| d.with_gate(gate))
        .expect("8 kHz is supported");
    let mut out = Vec::new();
    for piece in audio.chunks((RATE / 50) as usize) {
        detector.push(piece, |f| out.push((f.at_ms, f.duration_ms, f.probability)));
    }
    out
}

/// A 20 ms frame is speech when its RMS exceeds `threshold_db` dBFS.
fn energy_verdicts(audio: &[i16], threshold_db: f64) -> Vec<(u64, u32, bool)> {
    let threshold = 32768.0 * 10f64.powf(threshold_db / 20.0);
    let limit = threshold * threshold;
    audio
        .chunks_exact((RATE / 50) as usize)
        .enumerate()
        .map(|(i, f)| {
            let energy = f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64;
            (i as u64 * 20, 20, energy > limit)
        })
        .collect()
}

fn report(detector: &str, audio: &str, verdicts: &[(u64, u32, bool)], labels_ms: &[bool]) {
    let (mut tp, mut fp, mut fn_) = (0u64, 0u64, 0u64);
    for &(at, dur, speech) in verdicts {
        let ms = labels_ms
            .get(at as usize..(at + u64::from(dur)) as usize)
            .unwrap_or(&[]);
        if ms.is_empty() {
            continue;
        }
        let truth = ms.iter().filter(|&&l| l).count() * 2 > ms.len();
        match (speech, truth) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    let f1 = 2.0 * precision * recall / (precision + recall).max(f64::EPSILON);
    println!("{detector:<24} {audio:>6} {precision:>9.3} {recall:>7.3} {f1:>6.3}");
}

fn best_of(runs: usize, mut f: impl FnMut()) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn write_condition(dir: &Path, name: &str, audio: &[i16], labels_ms: &[bool]) {
    std::fs::create_dir_all(dir).expect("the dump folder");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::create(dir.join(format!("{name}.wav")), spec).expect("a WAV");
    for &s in audio {
        writer.write_sample(s).expect("a sample");
    }
    writer.finalize().expect("the WAV's header");
    let labels: String = labels_ms
        .iter()
        .map(|&l| if l { '1' } else { '0' })
        .collect();
    std::fs::write(dir.join(format!("{name}.labels")), labels).expect("the labels");
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
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("machine: {cpu}, {cores} cores")
}

/// xorshift64: deterministic white noise without a dependency.
struct Noise(u64);

impl Noise {
    /// Uniform in ±`amplitude`.
    fn sample(&mut self, amplitude: f64) -> i16 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        (unit * amplitude).round() as i16
    }
}
