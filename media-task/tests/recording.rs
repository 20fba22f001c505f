//! The call recording: each side in its channel at its time, gaps and cuts as silence,
//! bounded memory on a long call, and a blob written once to the real file store.

use std::f64::consts::PI;
use std::io::Cursor;

use parley_media::recording::{DEFAULT_MAX_SKEW_MS, Recorder, RecordingError};
use parley_shared::blob::BlobStore;
use parley_shared::embedded::FsBlobStore;
use parley_shared::error::StoreError;

fn store(dir: &tempfile::TempDir) -> FsBlobStore {
    FsBlobStore::new(
        dir.path().to_path_buf(),
        "http://127.0.0.1:8080".into(),
        b"0123456789abcdef0123456789abcdef".to_vec(),
    )
    .unwrap()
}

fn tone(freq: f64, rate: u32, from_ms: u64, to_ms: u64, amplitude: f64) -> Vec<i16> {
    let first = from_ms * u64::from(rate) / 1000;
    let last = to_ms * u64::from(rate) / 1000;
    (first..last)
        .map(|i| {
            let v = amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin();
            // Never exactly zero, so "silence" and "tone" cannot be confused.
            if v.round() == 0.0 {
                1
            } else {
                v.round() as i16
            }
        })
        .collect()
}

/// Feeds `samples`, which start at `from_ms`, in 20 ms chunks with their timestamps.
fn feed(rate: u32, from_ms: u64, samples: &[i16], mut each: impl FnMut(u64, &[i16])) {
    let chunk = rate as usize / 50;
    for (i, piece) in samples.chunks(chunk).enumerate() {
        each(from_ms + 20 * i as u64, piece);
    }
}

/// The stored WAV's (rate, left, right).
async fn read_back(blobs: &FsBlobStore, key: &str) -> (u32, Vec<i16>, Vec<i16>) {
    let bytes = blobs
        .get(key)
        .await
        .unwrap()
        .expect("the recording is stored");
    let mut reader = hound::WavReader::new(Cursor::new(bytes.to_vec())).unwrap();
    let spec = reader.spec();
    assert_eq!(spec.channels, 2);
    assert_eq!(spec.bits_per_sample, 16);
    assert_eq!(spec.sample_format, hound::SampleFormat::Int);
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    (spec.sample_rate, left, right)
}

fn frames(rate: u32, ms: u64) -> usize {
    (ms * u64::from(rate) / 1000) as usize
}

fn silent(samples: &[i16]) -> bool {
    samples.iter().all(|&s| s == 0)
}

/// Asserts two signals are equal, naming the first difference rather than printing both.
#[track_caller]
fn assert_same(actual: &[i16], expected: &[i16], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    if let Some(i) = actual.iter().zip(expected).position(|(a, e)| a != e) {
        panic!(
            "{what}: first difference at sample {i}: {} instead of {}",
            actual[i], expected[i]
        );
    }
}

#[tokio::test]
async fn each_side_is_in_its_channel_at_its_time() {
    for rate in [8_000, 16_000] {
        // Given a caller tone at 0–1 s and an agent tone at 1.5–2.5 s
        let dir = tempfile::tempdir().unwrap();
        let blobs = store(&dir);
        let mut recorder = Recorder::new(rate).unwrap();
        let caller = tone(440.0, rate, 0, 1000, 8000.0);
        let agent = tone(1000.0, rate, 1500, 2500, 6000.0);
        feed(rate, 0, &caller, |at, s| recorder.caller(at, s));
        feed(rate, 1500, &agent, |at, s| recorder.agent(at, s));

        // When the call ends
        let key = format!("recordings/t1/call-{rate}.wav");
        let stored = recorder.finish(&blobs, &key).await.unwrap();

        // Then the WAV is 2.5 s of stereo at the call's rate
        assert_eq!(stored.key, key);
        assert_eq!(stored.duration_ms, 2500);
        let (wav_rate, left, right) = read_back(&blobs, &key).await;
        assert_eq!(wav_rate, rate);
        assert_eq!(left.len(), frames(rate, 2500));
        assert_eq!(stored.bytes, 44 + 4 * left.len() as u64);
        // And the caller is on the left exactly where they spoke, silence elsewhere
        assert_same(&left[..frames(rate, 1000)], &caller, "caller");
        assert!(silent(&left[frames(rate, 1000)..]));
        // And the agent is on the right exactly where it spoke, silence elsewhere
        assert!(silent(&right[..frames(rate, 1500)]));
        assert_same(&right[frames(rate, 1500)..], &agent, "agent");
    }
}

#[tokio::test]
async fn gaps_in_the_callers_timestamps_are_silence_and_overlaps_land_where_they_say() {
    let rate = 8_000;
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir);
    let mut recorder = Recorder::new(rate).unwrap();
    let caller = tone(300.0, rate, 0, 1000, 5000.0);

    // Chunks at 0–300 ms, then nothing until 500 ms (lost packets), then on to 1 s
    feed(rate, 0, &caller[..frames(rate, 300)], |at, s| {
        recorder.caller(at, s)
    });
    feed(rate, 500, &caller[frames(rate, 500)..], |at, s| {
        recorder.caller(at, s)
    });
    // And a late chunk that says it belongs at 250–270 ms, overlapping what is there
    let late = vec![1234i16; frames(rate, 20)];
    recorder.caller(250, &late);
    let stored = recorder
        .finish(&blobs, "recordings/t1/gaps.wav")
        .await
        .unwrap();

    assert_eq!(stored.duration_ms, 1000);
    let (_, left, right) = read_back(&blobs, "recordings/t1/gaps.wav").await;
    assert_eq!(left.len(), frames(rate, 1000));
    assert_same(
        &left[..frames(rate, 250)],
        &caller[..frames(rate, 250)],
        "before",
    );
    assert_same(&left[frames(rate, 250)..frames(rate, 270)], &late, "late");
    assert_same(
        &left[frames(rate, 270)..frames(rate, 300)],
        &caller[frames(rate, 270)..frames(rate, 300)],
        "after the late chunk",
    );
    assert!(silent(&left[frames(rate, 300)..frames(rate, 500)]));
    assert_same(
        &left[frames(rate, 500)..],
        &caller[frames(rate, 500)..],
        "after the gap",
    );
    assert!(silent(&right));
}

#[tokio::test]
async fn a_cut_drops_the_agent_audio_that_never_played() {
    let rate = 8_000;
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir);
    let mut recorder = Recorder::new(rate).unwrap();
    let agent = tone(800.0, rate, 0, 1000, 6000.0);
    let caller = tone(200.0, rate, 0, 1200, 4000.0);

    // Given the agent's answer sent a little ahead of the caller's audio
    let chunk = frames(rate, 20);
    let mut agent_chunks = agent.chunks(chunk).enumerate();
    for (i, piece) in caller.chunks(chunk).enumerate() {
        let now = 20 * i as u64;
        // The agent's frames are sent up to 200 ms ahead of what the caller has sent
        for (j, a) in agent_chunks.by_ref() {
            recorder.agent(20 * j as u64, a);
            if 20 * j as u64 >= now + 200 {
                break;
            }
        }
        recorder.caller(now, piece);
        // When the caller barges in, heard in the chunk ending at 420 ms, and the
        // carrier is told to clear then
        if now == 400 {
            recorder.cut_agent(420);
            // The agent stops sending
            agent_chunks = agent[..0].chunks(chunk).enumerate();
        }
    }
    let stored = recorder
        .finish(&blobs, "recordings/t1/cut.wav")
        .await
        .unwrap();

    // Then the agent is heard only up to the cut, and the caller throughout
    assert_eq!(stored.duration_ms, 1200);
    let (_, left, right) = read_back(&blobs, "recordings/t1/cut.wav").await;
    assert_same(&left, &caller, "caller");
    assert_same(
        &right[..frames(rate, 420)],
        &agent[..frames(rate, 420)],
        "agent",
    );
    assert!(silent(&right[frames(rate, 420)..]));
}

#[tokio::test]
async fn a_long_call_keeps_memory_bounded_and_its_exact_length() {
    // Ten minutes at 8 kHz: the caller all along, the agent speaking every other 5 s
    let rate = 8_000;
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir);
    let mut recorder = Recorder::new(rate).unwrap();
    let bound = frames(rate, DEFAULT_MAX_SKEW_MS) + 1024;
    let chunk = frames(rate, 20);
    let caller_sample = |i: usize| ((i % 2000) as i16) - 1000;
    let agent_sample = |i: usize| ((i % 777) as i16) + 1;
    let mut most = 0;
    let (mut caller, mut agent) = (vec![0i16; chunk], vec![0i16; chunk]);
    for n in 0..(10 * 60 * 50) {
        let at = 20 * n as u64;
        let first = n * chunk;
        for (k, s) in caller.iter_mut().enumerate() {
            *s = caller_sample(first + k);
        }
        recorder.caller(at, &caller);
        if (at / 5000) % 2 == 1 {
            for (k, s) in agent.iter_mut().enumerate() {
                *s = agent_sample(first + k);
            }
            recorder.agent(at, &agent);
        }
        most = most.max(recorder.buffered_frames());
    }
    assert!(most <= bound, "{most} frames buffered, bound {bound}");
    let stored = recorder
        .finish(&blobs, "recordings/t1/long.wav")
        .await
        .unwrap();

    assert_eq!(stored.duration_ms, 600_000);
    let (_, left, right) = read_back(&blobs, "recordings/t1/long.wav").await;
    assert_eq!(left.len(), 600 * rate as usize);
    assert_eq!(stored.bytes, 44 + 4 * left.len() as u64);
    let expected: Vec<i16> = (0..left.len()).map(caller_sample).collect();
    assert_same(&left, &expected, "caller");
    let agent_speaks = |i: usize| (i / frames(rate, 5000)) % 2 == 1;
    let expected: Vec<i16> = (0..right.len())
        .map(|i| if agent_speaks(i) { agent_sample(i) } else { 0 })
        .collect();
    assert_same(&right, &expected, "agent");
}

#[tokio::test]
async fn a_stored_recording_is_never_overwritten_and_a_refused_one_is_kept() {
    let rate = 16_000;
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir);
    let key = "recordings/t1/once.wav";
    let mut first = Recorder::new(rate).unwrap();
    first.caller(0, &tone(440.0, rate, 0, 500, 3000.0));
    first.finish(&blobs, key).await.unwrap();
    let original = blobs.get(key).await.unwrap().unwrap();

    // When a second recording is finished under the same key
    let mut second = Recorder::new(rate).unwrap();
    let caller = tone(880.0, rate, 0, 700, 3000.0);
    second.caller(0, &caller);
    let err = second.finish(&blobs, key).await.unwrap_err();

    // Then the store refuses it, the first stays, and the second's WAV comes back
    let RecordingError::Upload { source, spool, .. } = err else {
        panic!("expected an upload error, got {err}");
    };
    assert!(matches!(source, StoreError::Conflict { .. }), "{source}");
    assert_eq!(blobs.get(key).await.unwrap().unwrap(), original);
    assert_eq!(spool.duration_ms(), 700);
    // And it can be stored elsewhere, whole
    let stored = spool
        .upload(&blobs, "recordings/t1/retry.wav")
        .await
        .unwrap();
    assert_eq!(stored.duration_ms, 700);
    let (_, left, _) = read_back(&blobs, "recordings/t1/retry.wav").await;
    assert_same(&left, &caller, "caller");
}

#[test]
fn an_unsupported_rate_is_refused() {
    let err = Recorder::new(44_100).unwrap_err();
    assert!(matches!(err, RecordingError::UnsupportedRate(44_100)));
    assert!(err.to_string().contains("44100"));
}

#[tokio::test]
async fn a_jump_far_ahead_is_written_as_silence_without_holding_it() {
    let rate = 8_000;
    let dir = tempfile::tempdir().unwrap();
    let blobs = store(&dir);
    let mut recorder = Recorder::new(rate).unwrap();
    let first = tone(440.0, rate, 0, 1000, 3000.0);
    let last = tone(440.0, rate, 0, 20, 3000.0);
    feed(rate, 0, &first, |at, s| recorder.caller(at, s));
    // The next chunk claims to be a minute later
    recorder.caller(60_000, &last);
    assert!(recorder.buffered_frames() <= frames(rate, DEFAULT_MAX_SKEW_MS) + 1024);
    let stored = recorder
        .finish(&blobs, "recordings/t1/jump.wav")
        .await
        .unwrap();

    assert_eq!(stored.duration_ms, 60_020);
    let (_, left, right) = read_back(&blobs, "recordings/t1/jump.wav").await;
    assert_same(&left[..frames(rate, 1000)], &first, "first second");
    assert!(silent(&left[frames(rate, 1000)..frames(rate, 60_000)]));
    assert_same(&left[frames(rate, 60_000)..], &last, "last chunk");
    assert!(silent(&right));
}
