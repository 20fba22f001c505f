//! The simulated callees' voices: each line is spoken by a program (Debian's `flite`,
//! or `espeak-ng` as a second, harder voice) into a WAV file and turned into the
//! carrier's 8 kHz μ-law. The programs are run, never linked: espeak-ng is GPL-3, and
//! a process boundary keeps Parley's own licence free of it.

use std::path::Path;

use parley_media::g711;
use parley_media::resample::Resampler;
use tokio::process::Command;

/// Who speaks a callee's lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Voice {
    /// A flite voice by name (`kal` is 8 kHz; `slt`, `rms`, `awb` are 16 kHz).
    Flite(String),
    /// espeak-ng with this voice (`en-us`).
    EspeakNg(String),
}

impl Voice {
    /// `espeak`/`espeak-ng[:<voice>]`, or a flite voice's name.
    pub fn parse(raw: &str) -> Option<Voice> {
        let raw = raw.trim();
        let valid = |v: &str| {
            !v.is_empty()
                && !v.starts_with('-')
                && v.len() <= 32
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        if let Some(rest) = raw
            .strip_prefix("espeak-ng")
            .or_else(|| raw.strip_prefix("espeak"))
        {
            let voice = rest.strip_prefix(':').unwrap_or("en-us");
            let voice = if voice.is_empty() { "en-us" } else { voice };
            return valid(voice).then(|| Voice::EspeakNg(voice.to_owned()));
        }
        valid(raw).then(|| Voice::Flite(raw.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("{program} could not be run ({reason}); install it (apt-get install {package})")]
    Missing {
        program: &'static str,
        package: &'static str,
        reason: String,
    },
    #[error("{program} failed: {reason}")]
    Failed {
        program: &'static str,
        reason: String,
    },
}

/// The longest line a callee speaks, in characters: lines come from lead fields.
pub const MAX_LINE_CHARS: usize = 400;

/// `text` spoken by `voice`, as 8 kHz μ-law.
pub async fn speak(voice: &Voice, text: &str) -> Result<Vec<u8>, SpeechError> {
    let text: String = text.chars().take(MAX_LINE_CHARS).collect();
    let file = tempfile::Builder::new()
        .suffix(".wav")
        .tempfile()
        .map_err(|e| SpeechError::Failed {
            program: "speech",
            reason: e.to_string(),
        })?;
    let path = file.path().to_owned();
    let (program, package) = match voice {
        Voice::Flite(_) => ("flite", "flite"),
        Voice::EspeakNg(_) => ("espeak-ng", "espeak-ng"),
    };
    let mut command = Command::new(program);
    // The text is one argument after its flag, never through a shell.
    match voice {
        Voice::Flite(name) => command
            .arg("-voice")
            .arg(name)
            .arg("-t")
            .arg(&text)
            .arg("-o")
            .arg(&path),
        Voice::EspeakNg(name) => command
            .arg("-v")
            .arg(name)
            .arg("-w")
            .arg(&path)
            .arg("--")
            .arg(&text),
    };
    let output = command
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| SpeechError::Missing {
            program,
            package,
            reason: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(SpeechError::Failed {
            program,
            reason: String::from_utf8_lossy(&output.stderr)
                .chars()
                .take(200)
                .collect(),
        });
    }
    tokio::task::spawn_blocking(move || wav_to_ulaw(&path))
        .await
        .map_err(|e| SpeechError::Failed {
            program,
            reason: e.to_string(),
        })?
        .map_err(|reason| SpeechError::Failed { program, reason })
}

/// A 16-bit PCM WAV file as 8 kHz μ-law: channels mixed down, any rate resampled.
/// The phone network's one way into telephone audio, for callees' lines and for
/// `parley call`'s caller.
pub fn wav_to_ulaw(path: &Path) -> Result<Vec<u8>, String> {
    let mut reader = hound::WavReader::open(path).map_err(|e| e.to_string())?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err("must be 16-bit PCM".into());
    }
    let channels = usize::from(spec.channels.max(1));
    let samples = reader
        .samples::<i16>()
        .collect::<Result<Vec<i16>, _>>()
        .map_err(|e| e.to_string())?;
    let mono: Vec<i16> = if channels == 1 {
        samples
    } else {
        samples
            .chunks(channels)
            .map(|frame| {
                (frame.iter().map(|s| i32::from(*s)).sum::<i32>() / frame.len() as i32) as i16
            })
            .collect()
    };
    let pcm = if spec.sample_rate == 8000 {
        mono
    } else {
        let mut resampler = Resampler::new(spec.sample_rate, 8000).map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(mono.len() * 8000 / spec.sample_rate.max(1) as usize + 64);
        resampler.process(&mono, &mut out);
        resampler.flush(&mut out);
        out
    };
    let mut ulaw = Vec::with_capacity(pcm.len());
    g711::encode_ulaw_into(&pcm, &mut ulaw);
    Ok(ulaw)
}

/// A 1 kHz tone at 8 kHz μ-law: a voicemail machine's beep.
pub fn beep(millis: u32) -> Vec<u8> {
    let samples = 8 * millis as usize;
    (0..samples)
        .map(|n| {
            let phase = n as f64 * 2.0 * std::f64::consts::PI * 1000.0 / 8000.0;
            g711::ulaw_encode((phase.sin() * 8000.0) as i16)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_parse_and_refuse_anything_that_could_be_an_option() {
        assert_eq!(Voice::parse("kal"), Some(Voice::Flite("kal".into())));
        assert_eq!(
            Voice::parse("espeak"),
            Some(Voice::EspeakNg("en-us".into()))
        );
        assert_eq!(
            Voice::parse("espeak-ng:en-gb"),
            Some(Voice::EspeakNg("en-gb".into()))
        );
        assert_eq!(Voice::parse("-o /etc/passwd"), None);
        assert_eq!(Voice::parse(""), None);
        assert_eq!(Voice::parse("espeak:--stdin"), None);
    }

    /// Both voices speak a line as a phone would carry it: 8 kHz μ-law, about as
    /// long as the words take, mostly not silence.
    #[tokio::test]
    async fn flite_and_espeak_ng_speak_a_line_as_telephone_audio() {
        for voice in [
            Voice::Flite("kal".into()),
            Voice::Flite("slt".into()),
            Voice::EspeakNg("en-us".into()),
        ] {
            let audio = speak(&voice, "Next Tuesday at two pm.")
                .await
                .unwrap_or_else(|e| panic!("{voice:?}: {e}"));
            let seconds = audio.len() as f64 / 8000.0;
            assert!((0.8..4.0).contains(&seconds), "{voice:?}: {seconds} s");
            let loud = audio
                .iter()
                .filter(|b| g711::ulaw_decode(**b).unsigned_abs() > 1000)
                .count();
            assert!(
                loud > audio.len() / 5,
                "{voice:?}: {loud} of {}",
                audio.len()
            );
        }
    }

    #[test]
    fn a_beep_is_a_loud_tone_of_its_length() {
        let tone = beep(500);
        assert_eq!(tone.len(), 4000);
        let loud = tone
            .iter()
            .filter(|b| g711::ulaw_decode(**b).unsigned_abs() > 4000)
            .count();
        assert!(loud > tone.len() / 3, "{loud}");
    }
}
