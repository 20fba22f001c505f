//! Slot extraction: the values a scripted flow collects from what a caller said, with no
//! LLM. Input is speech-to-text output ("uh well I was thinking maybe next tuesday if
//! that works"), often lower case and unpunctuated; each function finds its value inside
//! the utterance and returns `None` rather than invent one ("I have two kids" is no
//! time, "my budget, not sure" no money).
//!
//! Pure domain logic: no I/O and no clock reads. Relative dates take the caller's
//! "now", already in the tenant's time zone. English as spoken in the US, the UK and
//! India (lakh, crore, rupees, "half three").
//!
//! - [`yes_no`]: yes, no, or neither.
//! - [`number`]: a cardinal number in digits or words.
//! - [`money`]: an amount or range, with currency and period when said.
//! - [`date`], [`time`], [`when`]: appointment dates and times.
//! - [`timeline`]: a lead's buying horizon and whether it is urgent.
//!
//! Every function takes any string (empty, very long, emoji, stray bytes) and never
//! panics.

mod date;
mod money;
mod number;
mod time;
mod timeline;
mod tokens;
mod when;
mod yesno;

pub use date::date;
pub use money::{Money, Per, money};
pub use number::number;
pub use time::time;
pub use timeline::{Timeline, timeline};
pub use when::{When, when};
pub use yesno::yes_no;
