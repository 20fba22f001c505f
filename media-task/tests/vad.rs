//! Voice activity: the turn detector on verdict sequences (no audio), and the voice
//! detector on real speech synthesised with flite between silence and noise.

use std::path::Path;
use std::process::Command;

use parley_media::resample::Resampler;
use parley_media::vad::{FRAME_MS, Frame, TurnConfig, TurnEvent, Turns, VadError, VoiceDetector};

// ---- Turns: given verdicts, when fed in order, then these events ----

/// One 16 ms frame per character, `S` speech and `.` silence, from time 0; the events
/// with the index of the frame that produced each.
fn turns(config: TurnConfig, pattern: &str) -> Vec<(usize, TurnEvent)> {
    let mut turns = Turns::with_config(config);
    pattern
        .chars()
        .filter(|c| !c.is_whitespace())
        .enumerate()
        .filter_map(|(i, c)| {
            let frame = Frame {
                at_ms: i as u64 * u64::from(FRAME_MS),
                duration_ms: FRAME_MS,
                probability: if c == 'S' { 0.9 } else { 0.1 },
                speech: c == 'S',
            };
            turns.feed(&frame).map(|e| (i, e))
        })
        .collect()
}

fn default_turns(pattern: &str) -> Vec<(usize, TurnEvent)> {
    turns(TurnConfig::default(), pattern)
}

fn started(at_ms: u64) -> TurnEvent {
    TurnEvent::SpeechStarted { at_ms }
}

fn ended(at_ms: u64) -> TurnEvent {
    TurnEvent::SpeechEnded { at_ms }
}

#[test]
fn silence_and_noise_bursts_shorter_than_min_speech_start_nothing() {
    assert_eq!(default_turns(&".".repeat(200)), vec![]);
    // 12 frames = 192 ms < 200 ms, then silence long enough to forget it
    assert_eq!(
        default_turns(&format!("....{}{}", "S".repeat(12), ".".repeat(50))),
        vec![]
    );
    // Bursts separated by more than the onset gap never add up
    let bursts = format!("{}....", "S".repeat(8)).repeat(10);
    assert_eq!(default_turns(&bursts), vec![]);
}

#[test]
fn speech_that_lasts_min_speech_starts_a_turn_at_its_beginning() {
    // 13 frames = 208 ms ≥ 200 ms: reported on the 13th, dated at the first
    let events = default_turns(&format!("{}{}", ".".repeat(10), "S".repeat(20)));
    assert_eq!(events, vec![(22, started(160))]);
}

#[test]
fn short_dips_during_the_onset_pause_the_count_instead_of_restarting_it() {
    // 6 speech, 2 silent (32 ms ≤ 48 ms gap), 7 speech: 13 speech frames in all
    let events = default_turns(&format!(
        "..{}..{}{}",
        "S".repeat(6),
        "S".repeat(7),
        ".".repeat(5)
    ));
    assert_eq!(events, vec![(16, started(32))]);
    // A dip longer than the gap (4 frames = 64 ms) restarts the count
    let events = default_turns(&format!("..{}....{}", "S".repeat(6), "S".repeat(13)));
    assert_eq!(events, vec![(24, started(12 * 16))]);
}

#[test]
fn flickering_verdicts_need_min_speech_of_actual_speech() {
    // Alternating frames: half the time is speech, so 13 speech frames take 25 frames
    let events = default_turns(&"S.".repeat(20));
    assert_eq!(events, vec![(24, started(0))]);
}

#[test]
fn pauses_shorter_than_silence_ms_do_not_end_the_turn() {
    // 31 silent frames = 496 ms < 500 ms between words: one turn, no flapping
    let word = "S".repeat(15);
    let pause = ".".repeat(31);
    let pattern = format!("{word}{pause}{word}{pause}{word}");
    let events = default_turns(&pattern);
    assert_eq!(events, vec![(12, started(0))]);
}

#[test]
fn silence_of_silence_ms_ends_the_turn_at_the_end_of_the_speech() {
    // Speech frames 0..20 end at 320 ms; the 32nd silent frame ends at 832 ms (≥ 500)
    let pattern = format!("{}{}", "S".repeat(20), ".".repeat(40));
    let events = default_turns(&pattern);
    assert_eq!(events, vec![(12, started(0)), (51, ended(320))]);
}

#[test]
fn after_a_turn_ends_the_next_needs_min_speech_again() {
    let pattern = format!(
        "{}{}{}{}{}",
        "S".repeat(20),
        ".".repeat(40),
        "S".repeat(5), // a cough: too short
        ".".repeat(10),
        "S".repeat(13)
    );
    let events = default_turns(&pattern);
    assert_eq!(
        events,
        vec![(12, started(0)), (51, ended(320)), (87, started(75 * 16))]
    );
}

#[test]
fn the_settings_are_honoured() {
    let config = TurnConfig {
        min_speech_ms: 96,
        silence_ms: 160,
        onset_gap_ms: 0,
    };
    // 6 frames = 96 ms starts; 10 silent frames = 160 ms end
    let events = turns(
        config,
        &format!("{}{}{}", "S".repeat(6), ".".repeat(10), "S.S"),
    );
    assert_eq!(events, vec![(5, started(0)), (15, ended(96))]);
    // No gap allowed: any silent frame restarts the onset
    assert_eq!(turns(config, &"SSSSS.".repeat(5)), vec![]);
    // Turns::new sets the two main settings
    let turns = Turns::new(300, 700);
    assert_eq!(turns.config().min_speech_ms, 300);
    assert_eq!(turns.config().silence_ms, 700);
    assert!(!turns.talking());
}

#[test]
fn talking_says_whether_a_turn_is_open() {
    let mut turns = Turns::default();
    let frame = |i: u64, speech| Frame {
        at_ms: i * 16,
        duration_ms: 16,
        probability: 0.0,
        speech,
    };
    for i in 0..13 {
        turns.feed(&frame(i, true));
    }
    assert!(turns.talking());
    for i in 13..50 {
        turns.feed(&frame(i, false));
    }
    assert!(!turns.talking());
}

// ---- VoiceDetector on real speech ----

/// flite's speech at `rate`, its loudest sample at a third of full scale.
fn speak(dir: &Path, voice: &str, text: &str, rate: u32) -> Vec<i16> {
    let path = dir.join(format!("{voice}.wav"));
    let status = Command::new("flite")
        .args(["-voice", voice, "-t", text, "-o"])
        .arg(&path)
        .status()
        .unwrap_or_else(|e| {
            panic!("this test needs flite to make speech (apt-get install -y flite): {e}")
        });
    assert!(status.success(), "flite failed for voice {voice}");
    let mut reader = hound::WavReader::open(&path).unwrap();
    let from = reader.spec().sample_rate;
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let mut out = Vec::new();
    let mut resampler = Resampler::new(from, rate).unwrap();
    resampler.process(&samples, &mut out);
    resampler.flush(&mut out);
    let peak = out
        .iter()
        .map(|s| i32::from(*s).abs())
        .max()
        .unwrap()
        .max(1);
    out.iter()
        .map(|&s| (i32::from(s) * 10_922 / peak) as i16)
        .collect()
}

/// White noise at about −50 dBFS RMS.
fn quiet_noise(len: usize, seed: &mut u64) -> Vec<i16> {
    (0..len)
        .map(|_| {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            ((*seed >> 40) as i64 % 179 - 89) as i16
        })
        .collect()
}

/// Where the speech in `clean` is: from its first to its last 10 ms within 35 dB of
/// its loudest, in milliseconds.
fn span(clean: &[i16], rate: u32) -> (u64, u64) {
    let frame = rate as usize / 100;
    let energies: Vec<f64> = clean
        .chunks(frame)
        .map(|f| f.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / f.len() as f64)
        .collect();
    let peak = energies.iter().cloned().fold(0.0, f64::max);
    let loud = |e: &&f64| **e > peak * 10f64.powf(-3.5);
    let first = energies.iter().position(|e| loud(&e)).unwrap();
    let last = energies.iter().rposition(|e| loud(&e)).unwrap();
    (first as u64 * 10, (last as u64 + 1) * 10)
}

struct Call {
    audio: Vec<i16>,
    /// The speech's spans, in milliseconds.
    speech: Vec<(u64, u64)>,
    /// Stretches of silence or noise, in milliseconds.
    quiet: Vec<(u64, u64)>,
}

/// Silence, a sentence, quiet noise, another sentence by another voice, quiet noise.
fn call(rate: u32) -> Call {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    spoken(
        rate,
        &[
            (
                "slt",
                "Hello, I would like to book a viewing for Saturday morning.",
            ),
            ("kal", "Yes, that works for me, thank you."),
        ],
        |len| quiet_noise(len * 3 / 4, &mut seed),
    )
}

/// A second of silence, then each sentence followed by `after(samples in 2 s)`.
fn spoken(rate: u32, sentences: &[(&str, &str)], mut after: impl FnMut(usize) -> Vec<i16>) -> Call {
    let dir = tempfile::tempdir().unwrap();
    let ms = |n: usize| n * 1000 / rate as usize;
    let mut audio = vec![0i16; rate as usize];
    let mut speech = Vec::new();
    let mut quiet = vec![(0, 1000)];
    for (voice, text) in sentences {
        let clean = speak(dir.path(), voice, text, rate);
        let (from, to) = span(&clean, rate);
        let offset = ms(audio.len()) as u64;
        speech.push((offset + from, offset + to));
        audio.extend_from_slice(&clean);
        let start = ms(audio.len()) as u64;
        audio.extend(after(rate as usize * 2));
        quiet.push((start, ms(audio.len()) as u64));
    }
    Call {
        audio,
        speech,
        quiet,
    }
}

fn detect(rate: u32, audio: &[i16], chunk: usize) -> Vec<Frame> {
    let mut detector = VoiceDetector::new(rate).unwrap();
    let mut frames = Vec::new();
    for piece in audio.chunks(chunk) {
        detector.push(piece, |f| frames.push(f));
    }
    frames
}

/// Share of the frames wholly inside `(from, to)` that are speech.
fn speech_share(frames: &[Frame], from: u64, to: u64) -> f64 {
    let inside: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.at_ms >= from && f.end_ms() <= to)
        .collect();
    assert!(!inside.is_empty(), "no frame in {from}..{to}");
    inside.iter().filter(|f| f.speech).count() as f64 / inside.len() as f64
}

#[test]
fn the_detector_finds_speech_where_it_is_and_not_in_silence_or_noise() {
    for rate in [8_000, 16_000, 24_000] {
        // Given a call's audio at its rate: silence, speech, noise, speech, noise
        let call = call(rate);
        // When it is scored in 20 ms chunks
        let frames = detect(rate, &call.audio, rate as usize / 50);

        // Then frames follow each other, 16 ms apart, over the whole audio
        let total_ms = call.audio.len() as u64 * 1000 / u64::from(rate);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.at_ms, i as u64 * 16);
            assert!((0.0..=1.0).contains(&f.probability));
        }
        // (behind by at most a part frame, a part 20 ms block and the filter's delay)
        assert!(
            total_ms - frames.len() as u64 * 16 < 16 + 20 + 5,
            "{rate} Hz: {total_ms} ms, {} frames",
            frames.len()
        );

        // And the speech is found (measured: 0.75 to 0.94 of its frames, the pauses
        // between words being inside the spans)
        for &(from, to) in &call.speech {
            let share = speech_share(&frames, from, to);
            assert!(
                share >= 0.65,
                "{rate} Hz: only {share:.2} of {from}..{to} ms is speech"
            );
        }
        // And silence and noise are not (measured: no frame), 150 ms on from where the
        // speech's audio ends (the detector looks at the last 48 ms and holds on a
        // little after speech)
        for &(from, to) in &call.quiet {
            let share = speech_share(&frames, from + 150, to);
            assert!(
                share <= 0.02,
                "{rate} Hz: {share:.2} of {from}..{to} ms is speech"
            );
        }

        // And the turn detector sees one turn per sentence, at the right times
        let mut turns = Turns::default();
        let events: Vec<TurnEvent> = frames.iter().filter_map(|f| turns.feed(f)).collect();
        assert_eq!(events.len(), 4, "{rate} Hz: {events:?}");
        for (pair, &(from, to)) in events.chunks(2).zip(&call.speech) {
            let TurnEvent::SpeechStarted { at_ms: start } = pair[0] else {
                panic!("{rate} Hz: expected a start, got {pair:?}");
            };
            let TurnEvent::SpeechEnded { at_ms: end } = pair[1] else {
                panic!("{rate} Hz: expected an end, got {pair:?}");
            };
            // Measured: starts 28–54 ms and ends 54–166 ms after the speech
            assert!(
                start.abs_diff(from) <= 100,
                "{rate} Hz: started at {start}, speech at {from}"
            );
            assert!(
                end + 100 >= to && end <= to + 400,
                "{rate} Hz: ended at {end}, speech until {to}"
            );
        }
    }
}

#[test]
fn chunk_sizes_do_not_change_the_verdicts() {
    let rate = 8_000;
    let call = call(rate);
    let by_frames = detect(rate, &call.audio, 160);
    let mut detector = VoiceDetector::new(rate).unwrap();
    let mut odd = Vec::new();
    let mut rest = &call.audio[..];
    for size in [1usize, 37, 160, 999].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        detector.push(piece, |f| odd.push(f));
        rest = tail;
    }
    assert_eq!(odd.len(), by_frames.len());
    for (a, b) in odd.iter().zip(&by_frames) {
        assert_eq!(a.at_ms, b.at_ms);
        assert!(
            (a.probability - b.probability).abs() < 0.01,
            "{a:?} vs {b:?}"
        );
    }
}

/// Like [`call`], but the line is digitally silent between the sentences (as a
/// Twilio call is while the caller listens), and the sentences have their own silent
/// pauses between words.
fn silent_line_call(rate: u32) -> Call {
    spoken(
        rate,
        &[
            ("slt", "I would like to see the flat on Saturday."),
            ("kal", "No, the morning is better for me."),
            ("awb", "My budget is about five hundred thousand."),
        ],
        |len| vec![0; len],
    )
}

#[test]
fn silence_under_the_gate_is_not_scored_and_changes_nothing_heard() {
    for rate in [8_000, 16_000, 24_000] {
        // Given a call whose line is silent while the caller is not talking
        let call = silent_line_call(rate);
        let chunk = rate as usize / 50;
        // When it is scored with the default gate, and with none
        let mut gated = VoiceDetector::new(rate).unwrap();
        let mut ungated = VoiceDetector::new(rate).unwrap().with_gate(None).unwrap();
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for piece in call.audio.chunks(chunk) {
            gated.push(piece, |f| with.push(f));
            ungated.push(piece, |f| without.push(f));
        }

        // Then the silence is not scored: most of the call is silence
        let silent_ms: u64 = call.quiet.iter().map(|(from, to)| to - from).sum();
        let total_ms = call.audio.len() as u64 * 1000 / u64::from(rate);
        assert_eq!(ungated.scored(), without.len() as u64);
        let skipped = with.len() as u64 - gated.scored();
        assert!(
            skipped * 16 >= silent_ms * 9 / 10,
            "{rate} Hz: only {skipped} of {} frames skipped ({silent_ms} of {total_ms} ms silent)",
            with.len()
        );
        // And time is kept frame for frame
        assert_eq!(with.len(), without.len(), "{rate} Hz");
        for (i, f) in with.iter().enumerate() {
            assert_eq!(f.at_ms, i as u64 * 16);
        }
        // And where frames are scored, the verdicts are those of scoring everything
        // (measured: all but a few at the start of speech after a silence, where the
        // detector's memory of that silence is shorter); the others are silence
        let differ = with
            .iter()
            .zip(&without)
            .filter(|(a, b)| a.probability > 0.0 && a.speech != b.speech)
            .count() as u64;
        assert!(
            differ * 33 <= gated.scored(),
            "{rate} Hz: {differ} of {} scored verdicts differ",
            gated.scored()
        );
        assert!(with.iter().all(|f| f.probability > 0.0 || !f.speech));
        for &(from, to) in &call.speech {
            let share = speech_share(&with, from, to);
            assert!(
                share >= 0.65,
                "{rate} Hz: only {share:.2} of {from}..{to} ms"
            );
        }
        // And the caller's turns are found at least as near the speech's edges as
        // without the gate, give or take three frames (measured: the same, but where
        // the shorter memory of silence catches a start that was missed)
        let events = |frames: &[Frame]| -> Vec<u64> {
            let mut turns = Turns::default();
            let events: Vec<u64> = frames
                .iter()
                .filter_map(|f| turns.feed(f))
                .map(|e| match e {
                    TurnEvent::SpeechStarted { at_ms } | TurnEvent::SpeechEnded { at_ms } => at_ms,
                })
                .collect();
            assert_eq!(events.len(), 6, "{rate} Hz: {events:?}");
            events
        };
        let edges: Vec<u64> = call.speech.iter().flat_map(|&(f, t)| [f, t]).collect();
        for ((g, u), edge) in events(&with).into_iter().zip(events(&without)).zip(edges) {
            assert!(
                g.abs_diff(edge) <= u.abs_diff(edge) + 48,
                "{rate} Hz: {g} ms with the gate, {u} ms without, for speech's edge at {edge} ms"
            );
        }
    }
}

#[test]
fn the_threshold_decides_and_bad_settings_are_refused() {
    let rate = 16_000;
    let call = call(rate);
    let strict = VoiceDetector::new(rate)
        .unwrap()
        .with_threshold(1.0)
        .unwrap();
    assert_eq!(strict.threshold(), 1.0);
    let mut speech = 0;
    let mut strict = strict;
    strict.push(&call.audio, |f| {
        speech += usize::from(f.speech && f.probability < 1.0)
    });
    assert_eq!(speech, 0, "a frame under the threshold was called speech");

    assert!(matches!(
        VoiceDetector::new(rate).unwrap().with_threshold(1.5),
        Err(VadError::Threshold(_))
    ));
    for level in [5.0, -130.0, f32::NAN] {
        assert!(matches!(
            VoiceDetector::new(rate).unwrap().with_gate(Some(level)),
            Err(VadError::Gate(_))
        ));
    }
    let err = VoiceDetector::new(44_100).unwrap_err();
    assert!(matches!(err, VadError::Rate { rate: 44_100, .. }));
    assert!(err.to_string().contains("44100"), "{err}");
}
