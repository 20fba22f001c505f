//! The offline voice: CMU Flite, run as a process (the Debian package `flite`), so the
//! embedded default can speak with no key and no network.
//!
//! Each piece of text is one `flite -voice <voice> -t <text> -o /dev/stdout` run: the
//! text goes as the argument after `-t`, never through a shell, so nothing in it is
//! read as an option or a command. Flite writes the whole WAV at once (it is far
//! faster than real time), which is read with `hound` and handed on as 16-bit PCM at
//! the voice's own rate in chunks of about 100 ms. The rate is learnt once, when the
//! voice is opened, by synthesising a word.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::process::Command;
use tokio::sync::mpsc;

use super::{Speech, TextToSpeech, http};
use crate::audio::{AudioFormat, pcm_to_le};
use crate::vendor::VendorError;

const VENDOR: &str = "flite";

/// A clear US English voice that ships with Debian's flite (16 kHz).
pub const DEFAULT_VOICE: &str = "slt";

/// Audio per chunk handed on.
const CHUNK_MS: u32 = 100;

/// How much of flite's complaints an error keeps.
const STDERR_EXCERPT: usize = 200;

/// A flite voice to speak with.
#[derive(Clone, Debug)]
pub struct Flite {
    program: PathBuf,
    voice: String,
    format: AudioFormat,
}

impl Flite {
    /// Opens `voice` (a built-in name such as `slt`, or the path of a `.flitevox`
    /// file) with the `flite` found on the `PATH`.
    pub async fn new(voice: &str) -> Result<Flite, VendorError> {
        Flite::with_program("flite", voice).await
    }

    /// The voice in `FLITE_VOICE`, else [`DEFAULT_VOICE`].
    pub async fn from_env() -> Result<Flite, VendorError> {
        Flite::new(&http::env_or("FLITE_VOICE", DEFAULT_VOICE)).await
    }

    /// Opens `voice` with the flite at `program`. Fails when flite cannot be run, does
    /// not have the voice, or does not answer with 16-bit mono audio.
    pub async fn with_program(
        program: impl Into<PathBuf>,
        voice: &str,
    ) -> Result<Flite, VendorError> {
        let program = program.into();
        if voice.is_empty() || voice.starts_with('-') {
            return Err(protocol(format!("{voice:?} is not a voice name")));
        }
        // Flite quietly falls back to its default voice when it cannot load the one
        // named, so a built-in name is checked against its list first.
        if !voice.contains('/') {
            let voices = list_voices(&program).await?;
            if !voices.iter().any(|v| v == voice) {
                return Err(protocol(format!(
                    "there is no voice {voice:?}; flite has {}",
                    voices.join(", ")
                )));
            }
        }
        let wav = synthesise(&program, voice, "Hello.").await?;
        let (sample_rate, _) = read_wav(&wav)?;
        Ok(Flite {
            program,
            voice: voice.to_owned(),
            format: AudioFormat::linear16(sample_rate),
        })
    }

    pub fn voice(&self) -> &str {
        &self.voice
    }
}

#[async_trait]
impl TextToSpeech for Flite {
    fn format(&self) -> AudioFormat {
        self.format
    }

    async fn speak(&self, text: &str) -> Result<Speech, VendorError> {
        if http::is_blank(text) {
            return Ok(http::silence());
        }
        let wav = synthesise(&self.program, &self.voice, text).await?;
        let (sample_rate, samples) = read_wav(&wav)?;
        if sample_rate != self.format.sample_rate {
            return Err(protocol(format!(
                "the voice changed rate from {} to {sample_rate} Hz",
                self.format.sample_rate
            )));
        }
        let mut pcm = Vec::with_capacity(samples.len() * 2);
        pcm_to_le(&samples, &mut pcm);
        let pcm = Bytes::from(pcm);
        // All the audio is here already: the channel holds every chunk, so no task is
        // needed, and dropping the receiver frees them.
        let chunk = (self.format.samples_in(CHUNK_MS) * 2).max(2);
        let (tx, rx) = mpsc::channel(pcm.len().div_ceil(chunk).max(1));
        for start in (0..pcm.len()).step_by(chunk) {
            let end = (start + chunk).min(pcm.len());
            // Cannot fail: the channel has a place for every chunk.
            let _ = tx.try_send(Ok(pcm.slice(start..end)));
        }
        Ok(rx)
    }
}

fn protocol(detail: String) -> VendorError {
    VendorError::Protocol {
        vendor: VENDOR,
        detail,
    }
}

fn cannot_run(program: &Path, error: &std::io::Error) -> VendorError {
    let detail = if error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "{} is not installed (install the Debian package flite)",
            program.display()
        )
    } else {
        format!("cannot run {}: {error}", program.display())
    };
    VendorError::Connect {
        vendor: VENDOR,
        detail,
    }
}

/// Flite's built-in voices, from `flite -lv` ("Voices available: kal slt ...").
async fn list_voices(program: &Path) -> Result<Vec<String>, VendorError> {
    let output = Command::new(program)
        .arg("-lv")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| cannot_run(program, &e))?;
    let listing = String::from_utf8_lossy(&output.stdout);
    let voices = listing
        .split_once(':')
        .map(|(_, names)| names.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(voices)
}

/// One flite run; the WAV it wrote.
async fn synthesise(program: &Path, voice: &str, text: &str) -> Result<Vec<u8>, VendorError> {
    // An argument cannot hold a NUL; it means nothing to speak anyway.
    let text = if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', " "))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    // If the caller stops waiting (barge-in), the future is dropped and flite killed.
    let output = Command::new(program)
        .arg("-voice")
        .arg(voice)
        .arg("-t")
        .arg(text.as_ref())
        .arg("-o")
        .arg("/dev/stdout")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| cannot_run(program, &e))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let excerpt: String = stderr
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(STDERR_EXCERPT)
            .collect();
        return Err(protocol(format!(
            "flite failed ({}): {excerpt}",
            output.status
        )));
    }
    Ok(output.stdout)
}

/// The rate and samples of a 16-bit mono WAV.
fn read_wav(wav: &[u8]) -> Result<(u32, Vec<i16>), VendorError> {
    let reader = hound::WavReader::new(Cursor::new(wav))
        .map_err(|e| protocol(format!("flite's output is not a WAV: {e}")))?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
    {
        return Err(protocol(format!(
            "flite wrote {} channel(s) of {}-bit {:?}; expected 16-bit mono PCM",
            spec.channels, spec.bits_per_sample, spec.sample_format
        )));
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| protocol(format!("flite's WAV is damaged: {e}")))?;
    Ok((spec.sample_rate, samples))
}
