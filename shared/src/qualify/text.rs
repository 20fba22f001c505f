//! The caller's line as clauses of plain words, for matching qualification phrases, and
//! the excerpt of a line quoted as evidence.
//!
//! `slots` has its own tokenizer, but it is private to that module and built for values
//! (numbers, clocks, currencies); phrases only need words and clause breaks.

use std::ops::Range;

/// The most characters of a caller's words kept as evidence.
pub const MAX_QUOTE_CHARS: usize = 200;

/// Characters kept before the words that matched when a long line is cut.
const CONTEXT_CHARS: usize = 40;

/// Negations that turn a phrase just after them around ("we don't need", "I'm not
/// looking for"). "no" is left out: STT drops the comma of "no, we need a bigger place".
const NEGATORS: &[&str] = &[
    "not", "dont", "doesnt", "didnt", "never", "wont", "cant", "cannot", "arent", "isnt", "wasnt",
    "wouldnt", "hardly",
];

/// A run of words between clause breaks, and where it is in the line (bytes).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Clause {
    pub(crate) words: Vec<String>,
    /// Where each word starts in the line (bytes).
    pub(crate) starts: Vec<usize>,
    pub(crate) span: Range<usize>,
}

impl Clause {
    /// Where `phrase` starts in this clause, first match.
    pub(crate) fn find(&self, phrase: &[&str]) -> Option<usize> {
        self.find_all(phrase).next()
    }

    /// Every place `phrase` starts in this clause.
    pub(crate) fn find_all<'a>(
        &'a self,
        phrase: &'a [&'a str],
    ) -> impl Iterator<Item = usize> + 'a {
        let n = phrase.len();
        (0..self.words.len()).filter(move |&i| {
            n > 0
                && self
                    .words
                    .get(i..i + n)
                    .is_some_and(|w| w.iter().zip(phrase).all(|(a, b)| a == b))
        })
    }

    pub(crate) fn has(&self, phrase: &[&str]) -> bool {
        self.find(phrase).is_some()
    }

    /// The clause from word `i` to its end (bytes of the line): what a quote centres on.
    pub(crate) fn from(&self, i: usize) -> Range<usize> {
        let start = self.starts.get(i).copied().unwrap_or(self.span.start);
        start..self.span.end.max(start)
    }

    pub(crate) fn is(&self, i: usize, word: &str) -> bool {
        self.word(i) == Some(word)
    }

    pub(crate) fn word(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }

    pub(crate) fn is_any(&self, i: usize, words: &[&str]) -> bool {
        self.word(i).is_some_and(|w| words.contains(&w))
    }

    /// A negation one or two words before `i` ("don't need", "don't really need").
    pub(crate) fn negated(&self, i: usize) -> bool {
        let neg = |k: Option<usize>| k.is_some_and(|k| self.is_any(k, NEGATORS));
        neg(i.checked_sub(1)) || neg(i.checked_sub(2))
    }
}

/// `text` as clauses of lower-case words. Apostrophes are dropped ("I'm" → "im") so STT
/// output with and without them reads the same; a hyphen separates words
/// ("pre-approved"); `, . ; : ! ?` and the like end a clause, except a point or comma
/// between digits ("1,200", "2.5").
pub(crate) fn clauses(text: &str) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut starts: Vec<usize> = Vec::new();
    let mut word = String::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        let digit_sep = matches!(c, '.' | ',')
            && prev.is_some_and(|p| p.is_ascii_digit())
            && next.is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() {
            if word.is_empty() {
                starts.push(at);
            }
            word.extend(c.to_lowercase());
            start.get_or_insert(at);
            end = at + c.len_utf8();
        } else if matches!(c, '\'' | '\u{2019}' | '`') || digit_sep {
            // Inside a word or number: keep reading it.
        } else {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            if is_break(c) {
                push_clause(&mut out, &mut words, &mut starts, &mut start, end);
            }
        }
        prev = Some(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    push_clause(&mut out, &mut words, &mut starts, &mut start, end);
    out
}

fn is_break(c: char) -> bool {
    matches!(
        c,
        ',' | '.' | ';' | ':' | '!' | '?' | '\n' | '\r' | '(' | ')' | '"' | '\u{2026}' | '\u{2014}'
    )
}

fn push_clause(
    out: &mut Vec<Clause>,
    words: &mut Vec<String>,
    starts: &mut Vec<usize>,
    start: &mut Option<usize>,
    end: usize,
) {
    if let Some(s) = start.take()
        && !words.is_empty()
    {
        out.push(Clause {
            words: std::mem::take(words),
            starts: std::mem::take(starts),
            span: s..end.max(s),
        });
    }
    words.clear();
    starts.clear();
}

/// How many words `text` has.
pub(crate) fn word_count(text: &str) -> usize {
    clauses(text).iter().map(|c| c.words.len()).sum()
}

/// The caller's `line` as evidence: trimmed, and at most [`MAX_QUOTE_CHARS`] characters.
/// A longer line is cut around `focus` (the clause that matched, in bytes), with `…`
/// marking each cut, so the quote still shows the words that counted.
pub(crate) fn quote(line: &str, focus: Option<&Range<usize>>) -> String {
    let trimmed = line.trim();
    let chars: Vec<(usize, char)> = trimmed.char_indices().collect();
    if chars.len() <= MAX_QUOTE_CHARS {
        return trimmed.to_string();
    }
    // The focus is in bytes of `line`; shift it to `trimmed`, then to a char index.
    let lead = line.len() - line.trim_start().len();
    let focus_byte = focus.map_or(0, |f| f.start.saturating_sub(lead));
    let focus_char = chars.partition_point(|&(b, _)| b < focus_byte);
    // Room for the text and up to two ellipses; a little of what came before the focus
    // stays for context.
    let room = MAX_QUOTE_CHARS - 2;
    let first = focus_char
        .saturating_sub(CONTEXT_CHARS)
        .min(chars.len().saturating_sub(room));
    let last = (first + room).min(chars.len());
    let mut out = String::new();
    if first > 0 {
        out.push('\u{2026}');
    }
    out.extend(
        chars
            .get(first..last)
            .unwrap_or_default()
            .iter()
            .map(|&(_, c)| c),
    );
    if last < chars.len() {
        out.push('\u{2026}');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_split_at_breaks_and_drop_apostrophes() {
        let c = clauses("Well, I'm the owner. We need 1,200 sq-ft!");
        let words: Vec<Vec<&str>> = c
            .iter()
            .map(|c| c.words.iter().map(String::as_str).collect())
            .collect();
        assert_eq!(
            words,
            vec![
                vec!["well"],
                vec!["im", "the", "owner"],
                vec!["we", "need", "1200", "sq", "ft"],
            ]
        );
        assert_eq!(&"Well, I'm the owner."[c[1].span.clone()], "I'm the owner");
    }

    #[test]
    fn negation_reaches_two_words_back() {
        let c = clauses("we don't really need it");
        let i = c[0].find(&["need"]).unwrap();
        assert!(c[0].negated(i));
        let c = clauses("we really need it");
        assert!(!c[0].negated(c[0].find(&["need"]).unwrap()));
    }

    #[test]
    fn long_quotes_are_cut_around_the_focus_on_char_boundaries() {
        let line = format!(
            "{} we need a bigger place {}",
            "é".repeat(300),
            "ü".repeat(300)
        );
        let at = line.find("we need").unwrap();
        let q = quote(&line, Some(&(at..at + 7)));
        assert!(q.chars().count() <= MAX_QUOTE_CHARS);
        assert!(q.starts_with('\u{2026}') && q.ends_with('\u{2026}'));
        assert!(q.contains("we need a bigger place"));
        assert_eq!(quote("  short  ", None), "short");
    }
}
