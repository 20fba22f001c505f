//! The offline recogniser: CMU PocketSphinx 0.8 (Debian's `libpocketsphinx3` with the
//! `pocketsphinx-en-us` model), so the embedded default can listen with no key and no
//! network.
//!
//! The library is opened at run time (`dlopen` of `libpocketsphinx.so.3` and
//! `libsphinxbase.so.3`), so Parley builds and runs where it is not installed and only
//! this recogniser says so, when it is asked for. The FFI is the handful of functions
//! of the 0.8 API used here (`cmd_ln_init`, `ps_init`, `ps_process_raw`, ...), declared
//! from the installed headers; all `unsafe` is in the `ffi` module below.
//!
//! Each stream is one decoder on a thread of its own, fed through a channel, so
//! decoding never runs on the async runtime. The model wants 16 kHz. Telephone audio
//! (8 kHz) is brought there by putting a zero after each sample, which also mirrors
//! its 0–4 kHz band into the 4–8 kHz the model expects to hear something in: a clean
//! upsampler leaves that band empty and the model then gets nearly every word wrong
//! (word error rate 1.0 on thirty of flite's sentences through μ-law; 0.55 mirrored). The
//! decoder's own voice activity detection ends an utterance once `endpointing_ms` of
//! silence follows speech: then come `Final { end_of_speech: true }` and `UtteranceEnd`.
//!
//! Even so the general language model gets about half the words of phone speech wrong,
//! while a grammar of what the caller is expected to say gets nearly all of them right.
//! So a stream can be given [`ExpectedPhrases`], which its owner changes turn by turn:
//! the general model decodes live (interims, and the fallback), and each utterance is
//! then decoded again with a grammar of the phrases, whose other branch is a loop of
//! short garbage words covering every phone. A phrase said is heard as that phrase;
//! other speech and noise fit the garbage loop better, and then the general model's
//! words stand. Measured on flite's voice through 8 kHz μ-law with ten expected
//! phrases: the general model's word error rate on them 0.63, the grammar's 0.03 (nine
//! of ten exactly; a bare "no" is heard as "l" by both); twenty other sentences taken
//! for a phrase: none; white noise: never a phrase.
//!
//! Each decoder loads the whole model (about 0.3 s and 100 MB, two thirds of it the
//! language model), so this suits a local stack rather than hundreds of calls at once.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use super::{SpeechToText, SttConfig, SttEvent, SttStream};
use crate::audio::pcm_from_le;
use crate::resample::Resampler;
use crate::vendor::VendorError;

const VENDOR: &str = "pocketsphinx";

/// Where Debian's `pocketsphinx-en-us` puts the US English model.
pub const DEBIAN_MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";

/// Audio chunks (20 ms each, as the session sends them) that may wait for the decoder:
/// two seconds. As with the other recognisers, the session drops what does not fit
/// rather than wait.
pub const AUDIO_QUEUE: usize = 100;

/// Events waiting for the session, which reads them promptly.
const EVENT_QUEUE: usize = 32;

/// The model's rate.
const DECODER_RATE: u32 = 16_000;

/// Samples (at 16 kHz) between interim hypotheses: half a second of speech.
const INTERIM_EVERY: usize = 8_000;

/// Audio kept from before speech starts, so the second look at an utterance sees its
/// onset as the first did (the decoder's detector needs some lead-in).
const PRE_ROLL: usize = 8_000;

/// Longest utterance looked at again with the expected phrases (10 s): expected phrases
/// are short, and longer speech is not one of them.
const MAX_SECOND_LOOK: usize = 160_000;

/// Longest utterance before it is cut (30 s), so a line the detector hears as endless
/// speech still gets transcripts and does not grow the decoder's history for ever.
const MAX_UTTERANCE: usize = 480_000;

/// Short words that between them have every English phone: in a loop, they let the
/// grammar take the audio for something other than an expected phrase.
const GARBAGE: [&str; 38] = [
    "a", "ah", "aw", "eh", "er", "ee", "i", "oh", "ooh", "oi", "uh", "mm", "sh", "at", "be", "the",
    "thaw", "if", "go", "he", "it", "jo", "k", "l", "n", "ing", "up", "are", "s", "to", "of", "we",
    "ya", "is", "cha", "do", "ow", "an",
];

/// Each garbage word's weight in the grammar (JSGF takes decimals only): low enough
/// that a phrase said is heard as the phrase, high enough that other speech and noise
/// are heard as garbage. Measured; see the module doc.
const GARBAGE_WEIGHT: &str = "0.00000000001";

/// The name of the expected phrases' search.
const GRAMMAR_SEARCH: &CStr = c"parley_expected";

/// The US English model's files, or any other PocketSphinx 0.8 model's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Models {
    /// The acoustic model's folder (`mdef`, `means`, `variances`, ...).
    pub acoustic: PathBuf,
    /// The general language model (`.lm.bin` or ARPA).
    pub language: PathBuf,
    /// The pronunciation dictionary.
    pub dictionary: PathBuf,
}

impl Models {
    /// The files of Debian's `pocketsphinx-en-us`.
    pub fn debian_en_us() -> Models {
        Models::in_dir(Path::new(DEBIAN_MODEL_DIR))
    }

    /// `en-us`, `en-us.lm.bin` and `cmudict-en-us.dict` in `dir`, as the package lays
    /// them out.
    pub fn in_dir(dir: &Path) -> Models {
        Models {
            acoustic: dir.join("en-us"),
            language: dir.join("en-us.lm.bin"),
            dictionary: dir.join("cmudict-en-us.dict"),
        }
    }

    /// [`Models::debian_en_us`], each file overridden by `POCKETSPHINX_HMM`,
    /// `POCKETSPHINX_LM` or `POCKETSPHINX_DICT` when set.
    pub fn from_env() -> Models {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let default = Models::debian_en_us();
        Models {
            acoustic: var("POCKETSPHINX_HMM").unwrap_or(default.acoustic),
            language: var("POCKETSPHINX_LM").unwrap_or(default.language),
            dictionary: var("POCKETSPHINX_DICT").unwrap_or(default.dictionary),
        }
    }

    /// Fails, naming the file, when one is missing: PocketSphinx only logs why it could
    /// not load a model, and its log is off (see `ffi::Api::load`). Cheap: it loads
    /// nothing, so a deployment can ask before making this its recogniser.
    pub fn check(&self) -> Result<(), VendorError> {
        let must_be = |path: &Path, what: &str, dir: bool| {
            let ok = if dir { path.is_dir() } else { path.is_file() };
            if ok {
                Ok(())
            } else {
                Err(protocol(format!(
                    "the {what} {} does not exist (install the Debian package \
                     pocketsphinx-en-us, or point POCKETSPHINX_HMM, POCKETSPHINX_LM and \
                     POCKETSPHINX_DICT at a model)",
                    path.display()
                )))
            }
        };
        must_be(&self.acoustic, "acoustic model", true)?;
        for file in ["mdef", "means", "variances", "transition_matrices"] {
            must_be(&self.acoustic.join(file), "acoustic model file", false)?;
        }
        must_be(&self.language, "language model", false)?;
        must_be(&self.dictionary, "dictionary", false)
    }

    fn c_paths(&self) -> Result<[CString; 3], VendorError> {
        let c = |path: &Path| {
            CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| protocol(format!("{} is not a usable path", path.display())))
        };
        Ok([c(&self.acoustic)?, c(&self.language)?, c(&self.dictionary)?])
    }
}

/// What the caller is expected to say next: the phrases a flow node listens for. The
/// owner sets them each turn; every stream given the handle decodes its next utterance
/// with them (phrases set while the caller speaks apply from the following utterance).
/// Cheap to clone: clones share the phrases.
#[derive(Clone, Debug)]
pub struct ExpectedPhrases {
    phrases: Arc<watch::Sender<Arc<[String]>>>,
}

impl Default for ExpectedPhrases {
    fn default() -> ExpectedPhrases {
        ExpectedPhrases::new()
    }
}

impl ExpectedPhrases {
    /// None yet: the general model alone.
    pub fn new() -> ExpectedPhrases {
        let none: Arc<[String]> = Arc::from(Vec::new());
        ExpectedPhrases {
            phrases: Arc::new(watch::Sender::new(none)),
        }
    }

    /// The phrases from now on, in any case and with any punctuation. A phrase with a
    /// word the dictionary lacks (numbers in digits among them: write them in words) is
    /// left out.
    pub fn set<S: AsRef<str>>(&self, phrases: &[S]) {
        let phrases: Arc<[String]> = phrases.iter().map(|p| p.as_ref().to_owned()).collect();
        self.phrases.send_replace(phrases);
    }

    /// Back to the general model alone.
    pub fn clear(&self) {
        self.set::<&str>(&[]);
    }

    /// The phrases as last set.
    pub fn get(&self) -> Arc<[String]> {
        self.phrases.borrow().clone()
    }

    fn subscribe(&self) -> watch::Receiver<Arc<[String]>> {
        let mut receiver = self.phrases.subscribe();
        // So a new stream compiles whatever is set already.
        receiver.mark_changed();
        receiver
    }
}

/// PocketSphinx with a model. Cheap to clone; each [`SpeechToText::open`] starts one
/// decoder on its own thread (loading the model takes about 0.3 s and 100 MB).
#[derive(Clone)]
pub struct PocketSphinxStt {
    api: &'static ffi::Api,
    models: Models,
    expected: Option<ExpectedPhrases>,
}

impl std::fmt::Debug for PocketSphinxStt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PocketSphinxStt")
            .field("models", &self.models)
            .field("expected", &self.expected)
            .finish()
    }
}

impl PocketSphinxStt {
    /// With `models`. Fails when the library is not installed.
    pub fn new(models: Models) -> Result<PocketSphinxStt, VendorError> {
        let api = ffi::Api::get().map_err(|detail| VendorError::Connect {
            vendor: VENDOR,
            detail,
        })?;
        Ok(PocketSphinxStt {
            api,
            models,
            expected: None,
        })
    }

    /// With [`Models::from_env`].
    pub fn from_env() -> Result<PocketSphinxStt, VendorError> {
        PocketSphinxStt::new(Models::from_env())
    }

    /// Streams opened from this one also try `expected`, the phrases the caller is
    /// expected to say, before the general model.
    pub fn with_expected(mut self, expected: ExpectedPhrases) -> PocketSphinxStt {
        self.expected = Some(expected);
        self
    }

    /// Streams opened from this one always try `phrases` first: a fixed
    /// [`ExpectedPhrases`].
    pub fn expecting<S: AsRef<str>>(self, phrases: &[S]) -> PocketSphinxStt {
        let expected = ExpectedPhrases::new();
        expected.set(phrases);
        self.with_expected(expected)
    }

    pub fn models(&self) -> &Models {
        &self.models
    }
}

#[async_trait]
impl SpeechToText for PocketSphinxStt {
    async fn open(&self, config: &SttConfig) -> Result<SttStream, VendorError> {
        let upsampler = Upsampler::new(config.sample_rate)?;
        let api = self.api;
        let models = self.models.clone();
        let expected = self.expected.as_ref().map(ExpectedPhrases::subscribe);
        // Frames of 10 ms; the decoder's detector counts silence in them.
        let post_speech = (config.endpointing_ms / 10).clamp(10, 500);
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("pocketsphinx".into())
            .spawn(move || {
                let worker = models.check().and_then(|()| {
                    let decoder = ffi::Decoder::new(api, &models.c_paths()?, post_speech)
                        .map_err(protocol)?;
                    Worker::new(decoder, upsampler, expected, events_tx)
                });
                match worker {
                    Ok(worker) => {
                        if ready_tx.send(Ok(())).is_ok() {
                            worker.run(audio_rx);
                        }
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| protocol(format!("cannot start the decoder's thread: {e}")))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(SttStream {
                audio: audio_tx,
                events: events_rx,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(protocol("the decoder's thread ended while starting".into())),
        }
    }
}

fn protocol(detail: String) -> VendorError {
    VendorError::Protocol {
        vendor: VENDOR,
        detail,
    }
}

/// The expected phrases as the decoder's grammar has them.
struct Grammar {
    /// Each phrase's words as recognised (lower case, single spaces), and the phrase
    /// as it was given, which is what the transcript says when it wins.
    phrases: Vec<(String, String)>,
}

/// The phrase's words as the dictionary spells them: lower case, letters, digits and
/// apostrophes, everything else a word break.
fn words_of(phrase: &str) -> Vec<String> {
    phrase
        .to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Why decoding stopped early.
enum Stop {
    /// Nobody reads the events any more.
    Gone,
    Failed(String),
}

/// Brings the call's audio to the model's 16 kHz.
enum Upsampler {
    /// Telephone audio (8 kHz): each sample followed by a zero. This mirrors the
    /// 0–4 kHz band into 4–8 kHz; a clean upsampler leaves that band empty, and the
    /// model, trained on wideband speech, then hears almost nothing right (see the
    /// module doc).
    Fold,
    /// Any other rate, through [`Resampler`].
    Resample(Resampler),
}

impl Upsampler {
    fn new(rate: u32) -> Result<Upsampler, VendorError> {
        if rate == DECODER_RATE / 2 {
            return Ok(Upsampler::Fold);
        }
        Resampler::new(rate, DECODER_RATE)
            .map(Upsampler::Resample)
            .map_err(|e| protocol(e.to_string()))
    }

    fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        match self {
            Upsampler::Fold => out.extend(input.iter().flat_map(|&s| [s, 0])),
            Upsampler::Resample(r) => r.process(input, out),
        }
    }

    fn flush(&mut self, out: &mut Vec<i16>) {
        if let Upsampler::Resample(r) = self {
            r.flush(out);
        }
    }
}

/// One stream's decoder and what it keeps between chunks.
struct Worker {
    decoder: ffi::Decoder,
    upsampler: Upsampler,
    expected: Option<watch::Receiver<Arc<[String]>>>,
    grammar: Option<Grammar>,
    /// The general model's search, to go back to after the grammar's look.
    general: CString,
    events: mpsc::Sender<SttEvent>,
    /// The chunk being decoded, at the call's rate and at 16 kHz.
    pcm: Vec<i16>,
    upsampled: Vec<i16>,
    /// The utterance so far with its lead-in, for the grammar's look; emptied and
    /// left alone (`too_long`) once longer than [`MAX_SECOND_LOOK`].
    utterance: Vec<i16>,
    too_long: bool,
    in_speech: bool,
    speech_samples: usize,
    since_interim: usize,
    last_interim: Vec<u8>,
}

impl Worker {
    fn new(
        decoder: ffi::Decoder,
        upsampler: Upsampler,
        expected: Option<watch::Receiver<Arc<[String]>>>,
        events: mpsc::Sender<SttEvent>,
    ) -> Result<Worker, VendorError> {
        let general = decoder
            .search()
            .ok_or_else(|| protocol("the decoder has no language model search".into()))?;
        let mut worker = Worker {
            decoder,
            upsampler,
            expected,
            grammar: None,
            general,
            events,
            pcm: Vec::with_capacity(4_096),
            upsampled: Vec::with_capacity(8_192),
            utterance: Vec::new(),
            too_long: false,
            in_speech: false,
            speech_samples: 0,
            since_interim: 0,
            last_interim: Vec::new(),
        };
        if worker.expected.is_some() {
            worker.utterance.reserve(MAX_SECOND_LOOK + 8_192);
        }
        worker.update_grammar();
        worker
            .decoder
            .start_utt()
            .map_err(|e| protocol(e.to_owned()))?;
        Ok(worker)
    }

    fn run(mut self, mut audio: mpsc::Receiver<Bytes>) {
        let stopped = loop {
            let Some(chunk) = audio.blocking_recv() else {
                break self.finish_stream();
            };
            if self.events.is_closed() {
                break Err(Stop::Gone);
            }
            self.pcm.clear();
            pcm_from_le(&chunk, &mut self.pcm);
            self.upsampled.clear();
            self.upsampler.process(&self.pcm, &mut self.upsampled);
            if let Err(stop) = self.decode() {
                break Err(stop);
            }
        };
        if let Err(Stop::Failed(detail)) = stopped {
            tracing::warn!(vendor = VENDOR, %detail, "decoding failed");
            let _ = self
                .events
                .blocking_send(SttEvent::Failed(protocol(detail)));
        }
    }

    /// The audio has ended: what is held back is decoded and an utterance in progress
    /// is finished.
    fn finish_stream(&mut self) -> Result<(), Stop> {
        self.upsampled.clear();
        self.upsampler.flush(&mut self.upsampled);
        self.decode()?;
        if self.in_speech {
            self.finish_utterance(true)?;
        }
        Ok(())
    }

    /// Feeds `self.upsampled` to the decoder and says what changed.
    fn decode(&mut self) -> Result<(), Stop> {
        let samples = self.upsampled.len();
        if samples == 0 {
            return Ok(());
        }
        if self.grammar.is_some() && !self.too_long {
            self.utterance.extend_from_slice(&self.upsampled);
            if !self.in_speech && self.utterance.len() > PRE_ROLL {
                let excess = self.utterance.len() - PRE_ROLL;
                self.utterance.drain(..excess);
            } else if self.utterance.len() > MAX_SECOND_LOOK {
                self.too_long = true;
                self.utterance.clear();
            }
        }
        self.decoder
            .process(&self.upsampled)
            .map_err(|e| Stop::Failed(e.to_owned()))?;
        let in_speech = self.decoder.in_speech();
        if in_speech && !self.in_speech {
            self.in_speech = true;
            self.send(SttEvent::SpeechStarted)?;
        }
        if in_speech {
            self.speech_samples += samples;
            self.since_interim += samples;
            if self.since_interim >= INTERIM_EVERY {
                self.since_interim = 0;
                self.interim()?;
            }
            if self.speech_samples >= MAX_UTTERANCE {
                self.finish_utterance(false)?;
            }
        } else if self.in_speech {
            self.finish_utterance(true)?;
        } else {
            // Between utterances new phrases can take over at once (a cheap check).
            self.update_grammar();
        }
        Ok(())
    }

    /// The general model's guess so far, when it has changed.
    fn interim(&mut self) -> Result<(), Stop> {
        let Some(text) = self.decoder.hyp() else {
            return Ok(());
        };
        let bytes = text.to_bytes();
        if bytes.is_empty() || bytes == self.last_interim.as_slice() {
            return Ok(());
        }
        self.last_interim.clear();
        self.last_interim.extend_from_slice(bytes);
        let text = text.to_string_lossy().into_owned();
        self.send(SttEvent::Interim { text })
    }

    /// Ends the utterance (the expected phrase it was, else the general model's words,
    /// then the end of the utterance) and starts the next one.
    fn finish_utterance(&mut self, end_of_speech: bool) -> Result<(), Stop> {
        let failed = |e: &str| Stop::Failed(e.to_owned());
        self.decoder.end_utt().map_err(failed)?;
        let general = self
            .decoder
            .hyp()
            .map(|text| text.to_string_lossy().into_owned());
        let phrase = self.second_look()?;
        let text = phrase.or(general).filter(|t| !t.trim().is_empty());
        // Sounds that were no words (a cough, the line's noise) end quietly, as with
        // Deepgram: an utterance end follows words.
        if let Some(text) = text {
            self.send(SttEvent::Final {
                text,
                end_of_speech,
            })?;
            self.send(SttEvent::UtteranceEnd)?;
        }

        self.in_speech = false;
        self.speech_samples = 0;
        self.since_interim = 0;
        self.last_interim.clear();
        self.utterance.clear();
        self.too_long = false;
        self.decoder.start_utt().map_err(failed)
    }

    /// The utterance decoded again with the expected phrases' grammar: the phrase (as
    /// given) when the grammar takes it for one rather than for other sounds.
    fn second_look(&mut self) -> Result<Option<String>, Stop> {
        let Some(grammar) = &self.grammar else {
            return Ok(None);
        };
        if self.too_long || self.utterance.is_empty() {
            return Ok(None);
        }
        let failed = |e: &str| Stop::Failed(e.to_owned());
        self.decoder.set_search(GRAMMAR_SEARCH).map_err(failed)?;
        let looked = self
            .decoder
            .start_utt()
            .and_then(|()| self.decoder.process(&self.utterance))
            .and_then(|()| self.decoder.end_utt());
        let phrase = self.decoder.hyp().and_then(|heard| {
            let heard = heard.to_bytes();
            grammar
                .phrases
                .iter()
                .find(|(words, _)| words.as_bytes() == heard)
                .map(|(_, given)| given.clone())
        });
        self.decoder.set_search(&self.general).map_err(failed)?;
        looked.map_err(failed)?;
        Ok(phrase)
    }

    /// Compiles the expected phrases into the grammar when they have changed.
    fn update_grammar(&mut self) {
        let Some(expected) = &mut self.expected else {
            return;
        };
        if !expected.has_changed().unwrap_or(false) {
            return;
        }
        let phrases = expected.borrow_and_update().clone();
        if self.grammar.take().is_none() {
            // Lead-in kept for an earlier grammar is not this audio's.
            self.utterance.clear();
        }
        let mut kept: Vec<(String, String)> = Vec::new();
        for given in phrases.iter() {
            let words = words_of(given);
            if words.is_empty() {
                continue;
            }
            if let Some(unknown) = words.iter().find(|w| !self.decoder.knows(w)) {
                tracing::info!(
                    vendor = VENDOR,
                    phrase = %given,
                    word = %unknown,
                    "expected phrase left out: the dictionary lacks a word"
                );
                continue;
            }
            let words = words.join(" ");
            if !kept.iter().any(|(w, _)| *w == words) {
                kept.push((words, given.clone()));
            }
        }
        if kept.is_empty() {
            return;
        }
        let mut jsgf = String::from("#JSGF V1.0;\ngrammar parley;\npublic <turn> = ");
        for (words, _) in &kept {
            let _ = write!(jsgf, "( {words} ) | ");
        }
        jsgf.push_str("<other>;\n<other> = (");
        let mut first = true;
        for word in GARBAGE {
            if self.decoder.knows(word) {
                let _ = write!(
                    jsgf,
                    "{} /{GARBAGE_WEIGHT}/ {word}",
                    if first { "" } else { " |" }
                );
                first = false;
            }
        }
        jsgf.push_str(" )+;\n");
        let Ok(jsgf) = CString::new(jsgf) else {
            return;
        };
        match self.decoder.set_jsgf(GRAMMAR_SEARCH, &jsgf) {
            Ok(()) => self.grammar = Some(Grammar { phrases: kept }),
            Err(e) => tracing::warn!(vendor = VENDOR, error = e, "expected phrases refused"),
        }
    }

    fn send(&self, event: SttEvent) -> Result<(), Stop> {
        self.events.blocking_send(event).map_err(|_| Stop::Gone)
    }
}

/// The few functions of PocketSphinx 0.8 and SphinxBase used here, opened at run time,
/// and a decoder that frees itself. All `unsafe` of the recogniser is in here.
mod ffi {
    use super::*;

    /// `cmd_ln_t`, `arg_t` and `ps_decoder_t`: opaque.
    #[repr(C)]
    pub struct CmdLn {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct Arg {
        _opaque: [u8; 0],
    }
    #[repr(C)]
    pub struct PsDecoder {
        _opaque: [u8; 0],
    }

    type CmdLnInit = unsafe extern "C" fn(*mut CmdLn, *const Arg, i32, ...) -> *mut CmdLn;
    type CmdLnFreeR = unsafe extern "C" fn(*mut CmdLn) -> c_int;
    type ErrSetLogfp = unsafe extern "C" fn(*mut c_void);
    type CkdFree = unsafe extern "C" fn(*mut c_void);
    type PsArgs = unsafe extern "C" fn() -> *const Arg;
    type PsInit = unsafe extern "C" fn(*mut CmdLn) -> *mut PsDecoder;
    type PsFree = unsafe extern "C" fn(*mut PsDecoder) -> c_int;
    type PsUtt = unsafe extern "C" fn(*mut PsDecoder) -> c_int;
    type PsProcessRaw =
        unsafe extern "C" fn(*mut PsDecoder, *const i16, usize, c_int, c_int) -> c_int;
    type PsGetHyp = unsafe extern "C" fn(*mut PsDecoder, *mut i32) -> *const c_char;
    type PsGetInSpeech = unsafe extern "C" fn(*mut PsDecoder) -> u8;
    type PsSetSearch = unsafe extern "C" fn(*mut PsDecoder, *const c_char) -> c_int;
    type PsGetSearch = unsafe extern "C" fn(*mut PsDecoder) -> *const c_char;
    type PsSetJsgfString =
        unsafe extern "C" fn(*mut PsDecoder, *const c_char, *const c_char) -> c_int;
    type PsLookupWord = unsafe extern "C" fn(*mut PsDecoder, *const c_char) -> *mut c_char;

    /// The library's functions. Loaded once per process and never unloaded, so the
    /// pointers stay valid for the program's life.
    pub struct Api {
        cmd_ln_init: CmdLnInit,
        cmd_ln_free_r: CmdLnFreeR,
        ckd_free: CkdFree,
        ps_args: PsArgs,
        ps_init: PsInit,
        ps_free: PsFree,
        ps_start_utt: PsUtt,
        ps_end_utt: PsUtt,
        ps_process_raw: PsProcessRaw,
        ps_get_hyp: PsGetHyp,
        ps_get_in_speech: PsGetInSpeech,
        ps_set_search: PsSetSearch,
        ps_get_search: PsGetSearch,
        ps_set_jsgf_string: PsSetJsgfString,
        ps_lookup_word: PsLookupWord,
        _sphinxbase: libloading::Library,
        _pocketsphinx: libloading::Library,
    }

    const SPHINXBASE: &str = "libsphinxbase.so.3";
    const POCKETSPHINX: &str = "libpocketsphinx.so.3";

    static API: OnceLock<Result<Api, String>> = OnceLock::new();

    /// Held while a decoder is made: `ps_init` sets process-wide state (the log's debug
    /// level) as it goes, so two are not made at once.
    static INIT: Mutex<()> = Mutex::new(());

    impl Api {
        /// The library, opened on first use; why not when it cannot be.
        pub fn get() -> Result<&'static Api, String> {
            API.get_or_init(|| Api::load(SPHINXBASE, POCKETSPHINX))
                .as_ref()
                .map_err(Clone::clone)
        }

        pub(super) fn load(sphinxbase: &str, pocketsphinx: &str) -> Result<Api, String> {
            let open = |name: &str| {
                // SAFETY: these are Debian's SphinxBase and PocketSphinx 0.8, whose
                // initialisers only set up their own static tables; loading them has
                // no other effect on this process.
                unsafe { libloading::Library::new(name) }.map_err(|e| {
                    format!(
                        "PocketSphinx is not installed ({e}); install the Debian packages \
                         libpocketsphinx3 and pocketsphinx-en-us"
                    )
                })
            };
            let sphinxbase = open(sphinxbase)?;
            let pocketsphinx = open(pocketsphinx)?;
            macro_rules! sym {
                ($lib:ident, $name:ident, $ty:ty) => {{
                    // SAFETY: the type is the function's signature in the 0.8 headers
                    // (pocketsphinx.h, ps_search.h, cmd_ln.h, err.h, ckd_alloc.h); the
                    // pointer is copied out while the library, kept in `Api` and never
                    // unloaded, stays loaded.
                    let symbol =
                        unsafe { $lib.get::<$ty>(concat!(stringify!($name), "\0").as_bytes()) };
                    *symbol.map_err(|e| {
                        format!(
                            "the installed PocketSphinx is not version 0.8 ({} is missing: {e})",
                            stringify!($name)
                        )
                    })?
                }};
            }
            let err_set_logfp = sym!(sphinxbase, err_set_logfp, ErrSetLogfp);
            let api = Api {
                cmd_ln_init: sym!(sphinxbase, cmd_ln_init, CmdLnInit),
                cmd_ln_free_r: sym!(sphinxbase, cmd_ln_free_r, CmdLnFreeR),
                ckd_free: sym!(sphinxbase, ckd_free, CkdFree),
                ps_args: sym!(pocketsphinx, ps_args, PsArgs),
                ps_init: sym!(pocketsphinx, ps_init, PsInit),
                ps_free: sym!(pocketsphinx, ps_free, PsFree),
                ps_start_utt: sym!(pocketsphinx, ps_start_utt, PsUtt),
                ps_end_utt: sym!(pocketsphinx, ps_end_utt, PsUtt),
                ps_process_raw: sym!(pocketsphinx, ps_process_raw, PsProcessRaw),
                ps_get_hyp: sym!(pocketsphinx, ps_get_hyp, PsGetHyp),
                ps_get_in_speech: sym!(pocketsphinx, ps_get_in_speech, PsGetInSpeech),
                ps_set_search: sym!(pocketsphinx, ps_set_search, PsSetSearch),
                ps_get_search: sym!(pocketsphinx, ps_get_search, PsGetSearch),
                ps_set_jsgf_string: sym!(pocketsphinx, ps_set_jsgf_string, PsSetJsgfString),
                ps_lookup_word: sym!(pocketsphinx, ps_lookup_word, PsLookupWord),
                _sphinxbase: sphinxbase,
                _pocketsphinx: pocketsphinx,
            };
            // The library logs every step to stderr (and would to a file shared by all
            // decoders); this recogniser reports its own errors instead. Once, before
            // any decoder exists, as the log setting is global.
            // SAFETY: a null stream is the documented way to turn logging off.
            unsafe { err_set_logfp(std::ptr::null_mut()) };
            Ok(api)
        }
    }

    /// One decoder with its model loaded. Not `Send`: it lives and dies on the thread
    /// that made it.
    pub struct Decoder {
        api: &'static Api,
        ps: std::ptr::NonNull<PsDecoder>,
    }

    impl Decoder {
        /// Loads `models` (acoustic folder, language model, dictionary, checked to
        /// exist), with speech ending after `post_speech` frames of silence.
        pub fn new(
            api: &'static Api,
            models: &[CString; 3],
            post_speech: u32,
        ) -> Result<Decoder, String> {
            let [hmm, lm, dict] = models;
            let _init = INIT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let post_speech = CString::new(post_speech.to_string())
                .map_err(|_| "bad silence length".to_owned())?;
            let none: *const c_char = std::ptr::null();
            // SAFETY: `ps_args` takes nothing and returns the library's static table.
            let definitions = unsafe { (api.ps_args)() };
            // SAFETY: the arguments are name/value pairs of NUL-terminated strings that
            // outlive the call (cmd_ln_init copies them), ended by a null pointer as the
            // variadic function requires; `definitions` is the library's own table.
            let config = unsafe {
                (api.cmd_ln_init)(
                    std::ptr::null_mut(),
                    definitions,
                    1,
                    c"-hmm".as_ptr(),
                    hmm.as_ptr(),
                    c"-lm".as_ptr(),
                    lm.as_ptr(),
                    c"-dict".as_ptr(),
                    dict.as_ptr(),
                    c"-samprate".as_ptr(),
                    c"16000".as_ptr(),
                    c"-vad_postspeech".as_ptr(),
                    post_speech.as_ptr(),
                    none,
                )
            };
            if config.is_null() {
                return Err("PocketSphinx refused its configuration".to_owned());
            }
            // SAFETY: `config` is the valid configuration made above; `ps_init` takes
            // its own reference to it.
            let ps = unsafe { (api.ps_init)(config) };
            // SAFETY: our reference to `config`, released once, whatever `ps_init` did.
            unsafe { (api.cmd_ln_free_r)(config) };
            let ps = std::ptr::NonNull::new(ps).ok_or_else(|| {
                "PocketSphinx could not load the model (is it a PocketSphinx 0.8 model?)".to_owned()
            })?;
            Ok(Decoder { api, ps })
        }

        fn check(result: c_int, what: &'static str) -> Result<(), &'static str> {
            if result < 0 { Err(what) } else { Ok(()) }
        }

        pub fn start_utt(&mut self) -> Result<(), &'static str> {
            // SAFETY: `self.ps` is a live decoder, used by this thread only.
            Decoder::check(
                unsafe { (self.api.ps_start_utt)(self.ps.as_ptr()) },
                "the decoder cannot start an utterance",
            )
        }

        pub fn end_utt(&mut self) -> Result<(), &'static str> {
            // SAFETY: as in `start_utt`.
            Decoder::check(
                unsafe { (self.api.ps_end_utt)(self.ps.as_ptr()) },
                "the decoder cannot end an utterance",
            )
        }

        /// Decodes 16 kHz samples.
        pub fn process(&mut self, samples: &[i16]) -> Result<(), &'static str> {
            // SAFETY: the pointer and length describe `samples`, which the decoder only
            // reads during the call.
            Decoder::check(
                unsafe {
                    (self.api.ps_process_raw)(
                        self.ps.as_ptr(),
                        samples.as_ptr(),
                        samples.len(),
                        0,
                        0,
                    )
                },
                "the decoder refused audio",
            )
        }

        /// Whether the decoder's detector heard speech in the last audio.
        pub fn in_speech(&self) -> bool {
            // SAFETY: as in `start_utt`.
            unsafe { (self.api.ps_get_in_speech)(self.ps.as_ptr()) != 0 }
        }

        /// The best hypothesis so far, borrowed from the decoder until it is next used.
        pub fn hyp(&mut self) -> Option<&CStr> {
            let mut score = 0;
            // SAFETY: as in `start_utt`; `score` is a valid place for the result.
            let text = unsafe { (self.api.ps_get_hyp)(self.ps.as_ptr(), &mut score) };
            if text.is_null() {
                return None;
            }
            // SAFETY: a non-null hypothesis is a NUL-terminated string the decoder owns
            // until its next call, which `&mut self` keeps from happening meanwhile.
            Some(unsafe { CStr::from_ptr(text) })
        }

        /// The current search's name.
        pub fn search(&self) -> Option<CString> {
            // SAFETY: as in `start_utt`.
            let name = unsafe { (self.api.ps_get_search)(self.ps.as_ptr()) };
            if name.is_null() {
                return None;
            }
            // SAFETY: a non-null name is a NUL-terminated string the decoder owns; it is
            // copied at once.
            Some(unsafe { CStr::from_ptr(name) }.to_owned())
        }

        /// Switches to the search `name`; only between utterances.
        pub fn set_search(&mut self, name: &CStr) -> Result<(), &'static str> {
            // SAFETY: as in `start_utt`; `name` is NUL-terminated.
            Decoder::check(
                unsafe { (self.api.ps_set_search)(self.ps.as_ptr(), name.as_ptr()) },
                "the decoder cannot switch searches",
            )
        }

        /// Adds (or replaces) the grammar search `name`; never while it is the search
        /// in use.
        pub fn set_jsgf(&mut self, name: &CStr, jsgf: &CStr) -> Result<(), &'static str> {
            // SAFETY: as in `start_utt`; both strings are NUL-terminated and only read
            // during the call.
            Decoder::check(
                unsafe {
                    (self.api.ps_set_jsgf_string)(self.ps.as_ptr(), name.as_ptr(), jsgf.as_ptr())
                },
                "the grammar does not compile",
            )
        }

        /// Whether the dictionary has `word`.
        pub fn knows(&mut self, word: &str) -> bool {
            let Ok(word) = CString::new(word) else {
                return false;
            };
            // SAFETY: as in `start_utt`; `word` is NUL-terminated.
            let phones = unsafe { (self.api.ps_lookup_word)(self.ps.as_ptr(), word.as_ptr()) };
            if phones.is_null() {
                return false;
            }
            // SAFETY: the library allocated the phones for the caller to free with its
            // own allocator's `ckd_free`.
            unsafe { (self.api.ckd_free)(phones.cast()) };
            true
        }
    }

    impl Drop for Decoder {
        fn drop(&mut self) {
            // SAFETY: the decoder is live and this is its only reference.
            unsafe { (self.api.ps_free)(self.ps.as_ptr()) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_become_dictionary_words() {
        assert_eq!(
            words_of("  What's your  OPENING hours?! (Call me, 2day.)"),
            ["what's", "your", "opening", "hours", "call", "me", "2day"]
        );
        assert_eq!(words_of("'quoted' -- words"), ["quoted", "words"]);
        assert!(words_of("?!").is_empty());
    }

    #[test]
    fn a_missing_library_says_what_to_install() {
        let Err(message) = ffi::Api::load("libsphinxbase-absent.so.3", "libpocketsphinx.so.3")
        else {
            panic!("loaded a library that does not exist");
        };
        assert!(
            message.starts_with("PocketSphinx is not installed")
                && message.contains("libpocketsphinx3 and pocketsphinx-en-us"),
            "{message}"
        );
    }
}
