//! The hand-over triggers when a language model answers: the caller asks for a person,
//! escalation or emergency words, do-not-call, too many turns, or turns in a row with
//! nothing understood. A flow hears these itself; a model could miss them or talk on,
//! so they are checked before the model is asked, and when one fires it answers in the
//! model's place with the same lines and actions a flow would.
//!
//! The guard is pure and reads the whole conversation each time (the caller's turns,
//! oldest first), so a turn taken back and heard again is never counted twice.

use super::definition::{Action, TransferMode};
use super::engine::{FiredAction, GIVE_UP, Heard, MAX_TURNS_LINE, Step};
use super::matcher::{self, Words};

/// When the guard hands over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guard {
    /// The caller turn past which a person takes over.
    pub max_turns: u32,
    /// Turns in a row with nothing understood before a person takes over.
    pub max_misunderstandings: u32,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard {
            max_turns: super::definition::default_max_turns(),
            max_misunderstandings: super::definition::default_max_misunderstandings(),
        }
    }
}

impl Guard {
    /// What the guard says and does in the model's place after the caller's `turns`,
    /// or `None` when the model should answer.
    pub fn check(&self, turns: &[Heard]) -> Option<Step> {
        let last = turns.last()?;
        let words = Words::new(&last.text);
        let digits = last.digits.trim();
        // The built-in intents that end the AI's part: emergency, a person, escalation,
        // do-not-call (repeat is the model's to handle).
        let intent = matcher::builtins()
            .iter()
            .filter(|(intent, _)| intent.actions.iter().any(Action::ends))
            .find(|(_, m)| m.matches(&words, digits));
        if let Some((intent, _)) = intent {
            let actions = intent
                .actions
                .iter()
                .filter_map(|a| match a {
                    Action::Transfer(t) => Some(FiredAction::Transfer {
                        mode: t.mode,
                        reason: t.reason.clone(),
                    }),
                    Action::End(e) => Some(FiredAction::End {
                        outcome: e.outcome.clone(),
                    }),
                    _ => None,
                })
                .collect();
            return Some(Step {
                say: intent.say.iter().cloned().collect(),
                actions,
                ended: true,
                understood: true,
            });
        }
        if turns.len() > self.max_turns as usize {
            return Some(hand_over(MAX_TURNS_LINE, matcher::REASON_MAX_TURNS, true));
        }
        let missed = turns.iter().rev().take_while(|t| not_understood(t)).count();
        if self.max_misunderstandings > 0 && missed >= self.max_misunderstandings as usize {
            return Some(hand_over(GIVE_UP, matcher::REASON_NOT_UNDERSTOOD, false));
        }
        None
    }
}

/// A turn with nothing in it to understand: no words but hesitations, no keys.
fn not_understood(turn: &Heard) -> bool {
    let words = Words::new(&turn.text);
    turn.digits.trim().is_empty() && (words.is_empty() || words.only_filler())
}

fn hand_over(line: &str, reason: &str, understood: bool) -> Step {
    Step {
        say: vec![line.to_owned()],
        actions: vec![FiredAction::Transfer {
            mode: TransferMode::Warm,
            reason: reason.to_owned(),
        }],
        ended: true,
        understood,
    }
}
