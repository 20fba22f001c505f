//! The call recording: both sides of one call as a stereo 16-bit PCM WAV at the call's
//! rate (left = caller, right = agent), aligned on the call's timeline, spooled to a
//! temporary file as the call goes and streamed to the blob store when it ends.
//!
//! Each side's audio is placed where its timestamp (milliseconds since the stream
//! started) says. Only a short window is held in memory: frames go to disk once both
//! sides are known up to them, or once one side is more than a bound (1 s by default)
//! ahead of the other, the quiet side being silence there. So a call of any length
//! costs a fixed amount of memory (4 bytes a frame of the bound plus a 16 KiB write
//! buffer: about 52 KiB at 8 kHz with the 1 s default), and audio that arrives late
//! by less than the bound still lands in its place. The agent's side stays in memory until the caller's audio
//! catches up with it, which is what lets [`Recorder::cut_agent`] drop audio that the
//! carrier was told to clear and so never played.
//!
//! The spool is an anonymous temporary file (gone with the process); it is written
//! through a buffer on the per-frame path, and read back and uploaded off the async
//! runtime's threads by [`Recorder::finish`].

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter};

use parley_shared::blob::BlobStore;
use parley_shared::error::StoreError;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::resample::SUPPORTED_RATES;

/// How far one side may run ahead of the other before the other is taken as silent.
pub const DEFAULT_MAX_SKEW_MS: u64 = 1_000;
/// Size of the pieces handed to the blob store's writer (the S3 writer gathers them
/// into its own multipart parts); this bounds what the upload holds at once.
const UPLOAD_CHUNK: usize = 1 << 20;
/// The spool's write buffer: at 8 kHz, about half a second of stereo audio.
const SPOOL_BUFFER: usize = 16 << 10;
/// Frames written to the WAV per hound call (its buffer is reused across calls).
const WRITE_BLOCK: usize = 1024;
/// Largest piece of a chunk placed at once, so a huge chunk cannot grow the window.
const PLACE_PIECE: usize = 1024;
/// A WAV's data size is a 32-bit count of bytes; stereo 16-bit frames are 4 bytes.
const MAX_FRAMES: u64 = (u32::MAX as u64 - 64) / 4;

#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    #[error("cannot record at {0} Hz: supported rates are 8000, 16000, 22050 and 24000")]
    UnsupportedRate(u32),
    #[error("the recording's spool file failed: {0}")]
    Spool(#[source] io::Error),
    #[error("the recording's WAV could not be written: {0}")]
    Wav(#[source] hound::Error),
    #[error("the recording's file task failed: {0}")]
    Task(String),
    /// The blob store refused or failed; the spooled WAV is in `spool`, whole, for
    /// another try with [`Spool::upload`] (dropping it deletes it).
    #[error("recording {key} not stored: {source}")]
    Upload {
        key: String,
        #[source]
        source: StoreError,
        spool: Spool,
    },
}

/// Where a finished recording went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    /// Size of the WAV file, header included.
    pub bytes: u64,
    pub duration_ms: u64,
}

/// Records one call. Create it when the stream starts; feed both sides as they go.
pub struct Recorder {
    rate: u32,
    max_skew: u64,
    /// Frames already on disk; the window below starts here.
    written: u64,
    /// The window's caller (left) and agent (right) samples, always the same length.
    left: VecDeque<i16>,
    right: VecDeque<i16>,
    /// How far each side is known (frames since the stream started).
    caller_end: u64,
    agent_end: u64,
    /// `None` only once finished or after an error.
    wav: Option<hound::WavWriter<BufWriter<File>>>,
    /// A second handle on the spool, to read it back.
    spool: Option<File>,
    /// The first failure; later audio is dropped and `finish` reports it.
    failed: Option<RecordingError>,
    warned_too_long: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("rate", &self.rate)
            .field("written", &self.written)
            .field("buffered", &self.left.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder for a call at `sample_rate`, with the default skew bound.
    pub fn new(sample_rate: u32) -> Result<Recorder, RecordingError> {
        Recorder::with_max_skew(sample_rate, DEFAULT_MAX_SKEW_MS)
    }

    /// A recorder that lets one side run at most `max_skew_ms` ahead of the other
    /// before writing the other as silence; memory is about 4 bytes a frame of that.
    pub fn with_max_skew(sample_rate: u32, max_skew_ms: u64) -> Result<Recorder, RecordingError> {
        if !SUPPORTED_RATES.contains(&sample_rate) {
            return Err(RecordingError::UnsupportedRate(sample_rate));
        }
        let max_skew = (max_skew_ms * u64::from(sample_rate) / 1000).max(PLACE_PIECE as u64);
        let file = tempfile::tempfile().map_err(RecordingError::Spool)?;
        let spool = file.try_clone().map_err(RecordingError::Spool)?;
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::new(BufWriter::with_capacity(SPOOL_BUFFER, file), spec)
            .map_err(RecordingError::Wav)?;
        let window = max_skew as usize + PLACE_PIECE;
        Ok(Recorder {
            rate: sample_rate,
            max_skew,
            written: 0,
            left: VecDeque::with_capacity(window),
            right: VecDeque::with_capacity(window),
            caller_end: 0,
            agent_end: 0,
            wav: Some(wav),
            spool: Some(spool),
            failed: None,
            warned_too_long: false,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Frames held in memory, not yet on disk (each is one caller and one agent sample).
    pub fn buffered_frames(&self) -> usize {
        self.left.len()
    }

    /// The caller's audio that starts `at_ms` after the stream started (the carrier's
    /// media timestamp). Gaps stay silent; audio older than what is on disk is dropped.
    pub fn caller(&mut self, at_ms: u64, samples: &[i16]) {
        self.place(Side::Caller, at_ms, samples);
    }

    /// The agent's audio as sent to the carrier, starting `at_ms` after the stream
    /// started. For consecutive frames of one utterance give consecutive positions
    /// (the start plus what was sent), so that rounding never opens a gap between them.
    pub fn agent(&mut self, at_ms: u64, samples: &[i16]) {
        self.place(Side::Agent, at_ms, samples);
    }

    /// The carrier was told at `at_ms` to clear what it had not played: agent audio
    /// placed after that never reached the caller, so it is dropped.
    pub fn cut_agent(&mut self, at_ms: u64) {
        let cut = self.frame_at(at_ms);
        if cut >= self.agent_end {
            return;
        }
        if cut < self.written {
            tracing::debug!(
                cut_frame = cut,
                written = self.written,
                "agent audio after a clear was already on disk"
            );
        }
        let from = cut.max(self.written);
        let skip = (from - self.written) as usize;
        self.right.range_mut(skip..).for_each(|s| *s = 0);
        self.agent_end = from;
    }

    /// Ends the recording: writes what is left, then streams the WAV to `key` in
    /// `blobs`. An upload failure returns the spool inside the error, for a retry.
    pub async fn finish(
        mut self,
        blobs: &dyn BlobStore,
        key: &str,
    ) -> Result<Stored, RecordingError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let (Some(wav), Some(file)) = (self.wav.take(), self.spool.take()) else {
            return Err(RecordingError::Task(
                "the recording was already closed".into(),
            ));
        };
        // The recording ends where the later side's audio ends (a cut may have left
        // silence after that in the window).
        let end = self.caller_end.max(self.agent_end).max(self.written);
        let keep = ((end - self.written) as usize).min(self.left.len());
        self.left.truncate(keep);
        self.right.truncate(keep);
        let left = std::mem::take(&mut self.left);
        let right = std::mem::take(&mut self.right);
        let frames = self.written + left.len() as u64;
        let rate = self.rate;
        // The tail and the WAV header are file writes: off the runtime's threads.
        let file = tokio::task::spawn_blocking(move || -> Result<File, RecordingError> {
            let mut wav = wav;
            write_frames(
                &mut wav,
                left.iter().copied(),
                right.iter().copied(),
                left.len(),
            )?;
            wav.finalize().map_err(RecordingError::Wav)?;
            Ok(file)
        })
        .await
        .map_err(|e| RecordingError::Task(e.to_string()))??;
        Spool { file, frames, rate }.upload(blobs, key).await
    }

    /// Drops the recording; the spool file goes with it.
    pub fn abort(mut self) {
        self.close_quietly();
    }

    fn frame_at(&self, at_ms: u64) -> u64 {
        at_ms.saturating_mul(u64::from(self.rate)) / 1000
    }

    fn place(&mut self, side: Side, at_ms: u64, samples: &[i16]) {
        if self.wav.is_none() || self.failed.is_some() {
            return;
        }
        let mut pos = self.frame_at(at_ms);
        for piece in samples.chunks(PLACE_PIECE) {
            let start = pos;
            pos += piece.len() as u64;
            if pos <= self.written {
                continue; // all of it is before what is on disk
            }
            if pos > MAX_FRAMES {
                if !self.warned_too_long {
                    tracing::warn!(
                        at_ms,
                        "recording reached the WAV size limit; the rest is lost"
                    );
                    self.warned_too_long = true;
                }
                return;
            }
            match side {
                Side::Caller => self.caller_end = self.caller_end.max(pos),
                Side::Agent => self.agent_end = self.agent_end.max(pos),
            }
            // Write out what the new end allows before the piece, so that the window
            // never holds more than the skew bound (plus a piece); the rest after it.
            let target = self.flush_target();
            if let Err(e) = self.flush_to(target.min(start)) {
                self.fail(e);
                return;
            }
            if pos <= self.written {
                continue; // late by more than the bound: that place is on disk
            }
            let piece = piece
                .get(self.written.saturating_sub(start) as usize..)
                .unwrap_or(&[]);
            let start = start.max(self.written);
            let window_end = self.written + self.left.len() as u64;
            if pos > window_end {
                let grow = (pos - window_end) as usize;
                self.left.extend(std::iter::repeat_n(0, grow));
                self.right.extend(std::iter::repeat_n(0, grow));
            }
            let channel = match side {
                Side::Caller => &mut self.left,
                Side::Agent => &mut self.right,
            };
            let offset = (start - self.written) as usize;
            for (slot, &s) in channel.range_mut(offset..).zip(piece) {
                *slot = s;
            }
            if let Err(e) = self.flush_to(target) {
                self.fail(e);
                return;
            }
        }
    }

    /// Up to where frames may go to disk: where both sides are known, or where the
    /// side ahead is more than the bound ahead.
    fn flush_target(&self) -> u64 {
        let both = self.caller_end.min(self.agent_end);
        let ahead = self.caller_end.max(self.agent_end);
        both.max(ahead.saturating_sub(self.max_skew))
    }

    /// Writes frames up to `target`: the window's, then silence past its end.
    fn flush_to(&mut self, target: u64) -> Result<(), RecordingError> {
        if target <= self.written {
            return Ok(());
        }
        let Some(wav) = self.wav.as_mut() else {
            return Ok(());
        };
        let from_window = ((target - self.written) as usize).min(self.left.len());
        write_frames(
            wav,
            self.left.drain(..from_window),
            self.right.drain(..from_window),
            from_window,
        )?;
        let silence = target - self.written - from_window as u64;
        let mut left = silence;
        while left > 0 {
            let n = left.min(WRITE_BLOCK as u64) as usize;
            write_frames(wav, std::iter::repeat_n(0, n), std::iter::repeat_n(0, n), n)?;
            left -= n as u64;
        }
        self.written = target;
        Ok(())
    }

    fn fail(&mut self, e: RecordingError) {
        tracing::error!(error = %e, "the recording failed; the rest of the call is not recorded");
        self.failed = Some(e);
        self.close_quietly();
    }

    /// Drops the spool without finishing it, doing the file work off the runtime.
    fn close_quietly(&mut self) {
        let wav = self.wav.take();
        let spool = self.spool.take();
        self.left = VecDeque::new();
        self.right = VecDeque::new();
        if wav.is_none() && spool.is_none() {
            return;
        }
        // Dropping the writer flushes its buffer and rewrites the header: file I/O.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || drop((wav, spool)));
            }
            Err(_) => drop((wav, spool)),
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.close_quietly();
    }
}

#[derive(Clone, Copy)]
enum Side {
    Caller,
    Agent,
}

/// Interleaves `frames` caller and agent samples into the WAV.
fn write_frames(
    wav: &mut hound::WavWriter<BufWriter<File>>,
    left: impl Iterator<Item = i16>,
    right: impl Iterator<Item = i16>,
    frames: usize,
) -> Result<(), RecordingError> {
    let mut pairs = left.zip(right);
    let mut remaining = frames;
    while remaining > 0 {
        let n = remaining.min(WRITE_BLOCK);
        let mut block = wav.get_i16_writer((2 * n) as u32);
        for _ in 0..n {
            let (l, r) = pairs.next().unwrap_or((0, 0));
            block.write_sample(l);
            block.write_sample(r);
        }
        block.flush().map_err(RecordingError::Wav)?;
        remaining -= n;
    }
    Ok(())
}

/// A finished WAV in its spool file, not yet (or not successfully) stored.
pub struct Spool {
    file: File,
    frames: u64,
    rate: u32,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("frames", &self.frames)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl Spool {
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(self.rate)
    }

    /// Streams the WAV to `key` in `blobs`, a megabyte at a time. On failure the
    /// half-written blob is aborted and the spool comes back in the error.
    pub async fn upload(self, blobs: &dyn BlobStore, key: &str) -> Result<Stored, RecordingError> {
        let Spool { file, frames, rate } = self;
        let mut file = tokio::fs::File::from_std(file);
        let result = send(&mut file, blobs, key).await;
        let duration_ms = frames * 1000 / u64::from(rate);
        match result {
            Ok(bytes) => Ok(Stored {
                key: key.to_owned(),
                bytes,
                duration_ms,
            }),
            Err(Failure::Store(source)) => Err(RecordingError::Upload {
                key: key.to_owned(),
                source,
                spool: Spool {
                    file: file.into_std().await,
                    frames,
                    rate,
                },
            }),
            Err(Failure::Spool(e)) => Err(RecordingError::Spool(e)),
        }
    }
}

enum Failure {
    Store(StoreError),
    Spool(io::Error),
}

async fn send(
    file: &mut tokio::fs::File,
    blobs: &dyn BlobStore,
    key: &str,
) -> Result<u64, Failure> {
    file.seek(io::SeekFrom::Start(0))
        .await
        .map_err(Failure::Spool)?;
    let mut writer = blobs
        .writer(key, "audio/wav")
        .await
        .map_err(Failure::Store)?;
    let mut buffer = vec![0u8; UPLOAD_CHUNK];
    loop {
        let filled = match fill(file, &mut buffer).await {
            Ok(n) => n,
            Err(e) => {
                abort(writer, key).await;
                return Err(Failure::Spool(e));
            }
        };
        if filled == 0 {
            break;
        }
        if let Err(e) = writer.write(&buffer[..filled]).await {
            abort(writer, key).await;
            return Err(Failure::Store(e));
        }
        if filled < buffer.len() {
            break;
        }
    }
    writer.finish().await.map_err(Failure::Store)
}

/// Reads until `buffer` is full or the file ends; the number of bytes read.
async fn fill(file: &mut tokio::fs::File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        let n = file.read(&mut buffer[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}

async fn abort(writer: Box<dyn parley_shared::blob::BlobWriter>, key: &str) {
    if let Err(e) = writer.abort().await {
        tracing::warn!(key, error = %e, "cannot abort the recording's partial blob");
    }
}
