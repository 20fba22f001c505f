//! Who picks up a simulated call, and what they say.
//!
//! A lead's own fields decide when they are set: `simulated_answer` (`human`, `busy`,
//! `no_answer` or `machine`; a comma-separated list gives one per attempt, the last
//! repeating, so `busy, human` answers the retry), `simulated_lines` (what the callee
//! says, one line per `|`) and `simulated_voice` (a flite voice such as `kal`, or
//! `espeak-ng`). Otherwise a mix seeded by the simulator's seed, the number and the
//! attempt decides, so a run can be repeated exactly.

use std::collections::BTreeMap;

use parley_shared::aggregate::load_any;
use parley_shared::backend::Ports;
use parley_shared::domain::CallId;
use parley_shared::domain::call::Call;
use parley_shared::domain::lead::Lead;
use sha2::{Digest, Sha256};

use super::speech::{MAX_LINE_CHARS, Voice};

/// How the far end answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Human,
    Busy,
    NoAnswer,
    /// A voicemail machine: a greeting, a beep, then it listens.
    Machine,
}

impl Answer {
    fn parse(raw: &str) -> Option<Answer> {
        match raw.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "human" | "answer" | "answered" => Some(Answer::Human),
            "busy" => Some(Answer::Busy),
            "no_answer" | "noanswer" => Some(Answer::NoAnswer),
            "machine" | "voicemail" => Some(Answer::Machine),
            _ => None,
        }
    }
}

/// The person (or machine) at a number, for one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callee {
    pub answer: Answer,
    /// What a person says, a line per turn of theirs.
    pub lines: Vec<String>,
    pub voice: Voice,
}

/// What a person says when their lead gives no lines: an answer to each question of
/// the shipped appointment flow, which most other flows also take in their stride.
pub const DEFAULT_LINES: [&str; 3] = [
    "A check up for my teeth please.",
    "Next Tuesday at two pm.",
    "Yes please.",
];

/// The voice of callees whose lead names none: flite's 8 kHz voice, as on a phone line.
pub const DEFAULT_VOICE: &str = "kal";

/// At most this many lines per callee.
const MAX_LINES: usize = 12;

/// The seeded mix: six in ten answer, the rest are busy, do not answer or are
/// machines, in even parts.
pub fn mixed(seed: u64, to: &str, attempt: u32) -> Answer {
    let digest = Sha256::new()
        .chain_update(seed.to_be_bytes())
        .chain_update(to.as_bytes())
        .chain_update(attempt.to_be_bytes())
        .finalize();
    let roll = u16::from_be_bytes([digest[0], digest[1]]) % 100;
    match roll {
        0..60 => Answer::Human,
        60..73 => Answer::Busy,
        73..87 => Answer::NoAnswer,
        _ => Answer::Machine,
    }
}

/// The callee that `fields` (a lead's) describe on attempt `attempt` (1 for the first
/// call), falling back to the seeded mix for what they leave out.
pub fn from_fields(fields: &BTreeMap<String, String>, seed: u64, to: &str, attempt: u32) -> Callee {
    let answer = fields
        .get("simulated_answer")
        .and_then(|raw| {
            let answers: Vec<Answer> = raw.split(',').filter_map(Answer::parse).collect();
            let index = (attempt.max(1) as usize - 1).min(answers.len().checked_sub(1)?);
            answers.get(index).copied()
        })
        .unwrap_or_else(|| mixed(seed, to, attempt));
    let lines: Vec<String> = fields
        .get("simulated_lines")
        .map(|raw| {
            raw.split('|')
                .map(|l| l.trim().chars().take(MAX_LINE_CHARS).collect::<String>())
                .filter(|l| !l.is_empty())
                .take(MAX_LINES)
                .collect()
        })
        .filter(|l: &Vec<String>| !l.is_empty())
        .unwrap_or_else(|| DEFAULT_LINES.iter().map(|l| (*l).to_owned()).collect());
    let voice = fields
        .get("simulated_voice")
        .and_then(|v| Voice::parse(v))
        .unwrap_or_else(|| Voice::Flite(DEFAULT_VOICE.to_owned()));
    Callee {
        answer,
        lines,
        voice,
    }
}

/// The callee for a call Parley placed as `call_id` (from its lead, if it has one).
/// What cannot be read falls back to the seeded mix: a carrier knows nothing of leads.
pub async fn for_call(ports: &Ports, seed: u64, call_id: Option<&CallId>, to: &str) -> Callee {
    let empty = BTreeMap::new();
    let Some(call_id) = call_id else {
        return from_fields(&empty, seed, to, 1);
    };
    let call = match load_any::<Call>(&*ports.events, &call_id.stream()).await {
        Ok(loaded) => loaded.state,
        Err(e) => {
            tracing::warn!(call_id = %call_id, error = %e, "simulated carrier: call not read");
            return from_fields(&empty, seed, to, 1);
        }
    };
    let attempt = call.attempt.max(1);
    let Some(lead_id) = call.lead_id else {
        return from_fields(&empty, seed, to, attempt);
    };
    match load_any::<Lead>(&*ports.events, &lead_id.stream()).await {
        Ok(lead) => from_fields(&lead.state.fields, seed, to, attempt),
        Err(e) => {
            tracing::warn!(call_id = %call_id, error = %e, "simulated carrier: lead not read");
            from_fields(&empty, seed, to, attempt)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_mix_is_repeatable_and_roughly_as_documented() {
        let mut counts = [0u32; 4];
        for n in 0..2000u32 {
            let to = format!("+1202555{n:04}");
            let a = mixed(7, &to, 1);
            assert_eq!(a, mixed(7, &to, 1));
            counts[a as usize] += 1;
        }
        // 60 / 13 / 14 / 13 per cent, within sampling noise.
        assert!((1080..1320).contains(&counts[0]), "{counts:?}");
        for c in &counts[1..] {
            assert!((180..380).contains(c), "{counts:?}");
        }
        // Another seed is another run.
        let differs = (0..50u32)
            .filter(|n| {
                let to = format!("+1415555{n:04}");
                mixed(1, &to, 1) != mixed(2, &to, 1)
            })
            .count();
        assert!(differs > 10, "{differs}");
    }

    #[test]
    fn a_lead_decides_per_attempt_and_what_it_says() {
        let f = fields(&[
            ("simulated_answer", "busy, no-answer ,human"),
            ("simulated_lines", " Hello? | I need a plumber. ||  "),
            ("simulated_voice", "espeak-ng"),
        ]);
        let at = |n| from_fields(&f, 0, "+12025550100", n);
        assert_eq!(at(1).answer, Answer::Busy);
        assert_eq!(at(2).answer, Answer::NoAnswer);
        assert_eq!(at(3).answer, Answer::Human);
        assert_eq!(at(9).answer, Answer::Human);
        assert_eq!(at(1).lines, vec!["Hello?", "I need a plumber."]);
        assert_eq!(at(1).voice, Voice::EspeakNg("en-us".into()));
    }

    #[test]
    fn what_a_lead_leaves_out_or_garbles_falls_back() {
        let f = fields(&[
            ("simulated_answer", "perhaps"),
            ("simulated_lines", "|||"),
            ("simulated_voice", "--help"),
        ]);
        let callee = from_fields(&f, 3, "+12025550100", 1);
        assert_eq!(callee.answer, mixed(3, "+12025550100", 1));
        assert_eq!(callee.lines.len(), DEFAULT_LINES.len());
        assert_eq!(callee.voice, Voice::Flite(DEFAULT_VOICE.into()));
    }
}
