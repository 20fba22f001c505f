//! Templates for what the agent says: `{field}` is replaced by a field of the call
//! (`tenant_name`, `agent_name`, `direction`, `lead_name`, `lead.<field>`) or a slot
//! collected so far. A missing field renders as nothing and the words around it are
//! tidied ("Hi {lead_name}, welcome." → "Hi, welcome."), so a caller never hears a
//! brace. `{{` and `}}` are literal braces; anything else that is not a placeholder is
//! kept as written, and no template panics.

use super::validate::MAX_NAME;

/// One piece of a template.
#[derive(Debug, PartialEq)]
enum Piece<'a> {
    Text(&'a str),
    /// A literal brace from `{{` or `}}`.
    Brace(char),
    Field(&'a str),
}

/// A placeholder's name: letters, digits, `_` and `.` (for `lead.city`).
pub(crate) fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// The template's pieces, and the first fault found (for validation); rendering uses
/// the pieces and ignores the fault, keeping the bad part as text.
fn pieces(template: &str) -> (Vec<Piece<'_>>, Option<String>) {
    let mut out = Vec::new();
    let mut fault = None;
    let mut text_start = 0;
    let mut i = 0;
    let bytes = template.as_bytes();
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'}' if bytes.get(i + 1) == Some(&bytes[i]) => {
                out.push(Piece::Text(&template[text_start..i]));
                out.push(Piece::Brace(char::from(bytes[i])));
                i += 2;
                text_start = i;
            }
            b'{' => {
                let close = template[i + 1..].find('}').map(|k| i + 1 + k);
                let name = close.map(|c| &template[i + 1..c]);
                match (close, name) {
                    (Some(c), Some(name)) if is_field_name(name) => {
                        out.push(Piece::Text(&template[text_start..i]));
                        out.push(Piece::Field(name));
                        i = c + 1;
                        text_start = i;
                    }
                    (Some(_), Some(name)) => {
                        fault.get_or_insert_with(|| {
                            format!(
                                "\"{{{name}}}\" is not a field: names are letters, digits, _ and . \
                                 (write {{{{ for a brace)"
                            )
                        });
                        i += 1;
                    }
                    _ => {
                        fault.get_or_insert_with(|| {
                            "a \"{\" is never closed (write {{ for a brace)".into()
                        });
                        i += 1;
                    }
                }
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&template[text_start..]));
    out.retain(|p| *p != Piece::Text(""));
    (out, fault)
}

/// The fields a template names, or what is wrong with it.
pub(crate) fn fields(template: &str) -> Result<Vec<&str>, String> {
    let (pieces, fault) = pieces(template);
    match fault {
        Some(f) => Err(f),
        None => Ok(pieces
            .into_iter()
            .filter_map(|p| match p {
                Piece::Field(f) => Some(f),
                _ => None,
            })
            .collect()),
    }
}

/// Renders `template`, asking `field` for each placeholder's value; `None` or blank
/// renders as nothing, with the spacing and punctuation around it tidied.
///
/// ```
/// use parley_shared::flow::render;
/// let fields = |name: &str| (name == "agent_name").then(|| "Riley".to_string());
/// assert_eq!(render("Hi {lead_name}, this is {agent_name}.", &fields), "Hi, this is Riley.");
/// assert_eq!(render("{lead_name}, welcome!", &fields), "Welcome!");
/// ```
pub fn render(template: &str, field: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len());
    // A field rendered as nothing just before: the next text is joined to tidy the gap.
    let mut gap = false;
    // The gap is at the very start: the text after it begins the line.
    let mut gap_at_start = false;
    for piece in pieces(template).0 {
        let text: String = match piece {
            Piece::Text(t) => t.to_owned(),
            Piece::Brace(c) => c.to_string(),
            Piece::Field(name) => match field(name) {
                Some(v) if !v.trim().is_empty() => v.trim().to_owned(),
                _ => {
                    if !gap {
                        gap_at_start = out.trim().is_empty();
                    }
                    gap = true;
                    continue;
                }
            },
        };
        if !gap {
            out.push_str(&text);
            continue;
        }
        let rest = join_after_gap(&mut out, &text, gap_at_start);
        if !rest.is_empty() {
            out.push_str(&rest);
            gap = false;
        }
    }
    if gap {
        out.truncate(out.trim_end().len());
        // "Thanks, {lead_name}" → "Thanks,": a dangling joiner goes too.
        while out.ends_with([',', ';', ':']) {
            out.pop();
        }
    }
    out.trim().to_owned()
}

/// Tidies the seam between `out` and the text after a missing field, adjusting `out` and
/// returning what of `text` to append.
fn join_after_gap(out: &mut String, text: &str, at_start: bool) -> String {
    if at_start {
        out.clear();
        let rest = text.trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, ',' | ';' | ':' | '.' | '!' | '?')
        });
        let mut chars = rest.chars();
        return match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => String::new(),
        };
    }
    let trimmed = text.trim_start();
    match trimmed.chars().next() {
        None => {
            // Only spaces: keep one space at most.
            if !out.ends_with(char::is_whitespace) && !text.is_empty() {
                out.push(' ');
            }
            String::new()
        }
        Some(',' | '.' | '!' | '?' | ';' | ':') => {
            out.truncate(out.trim_end().len());
            // "Hello, {lead_name}." → "Hello.": a joiner before a closing mark goes.
            if out.ends_with([',', ';', ':']) {
                out.pop();
            }
            trimmed.to_owned()
        }
        Some(_) => {
            if out.ends_with(char::is_whitespace) && text.starts_with(char::is_whitespace) {
                trimmed.to_owned()
            } else {
                text.to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_listed_and_faults_named() {
        assert_eq!(
            fields("Hi {lead_name} from {lead.city}"),
            Ok(vec!["lead_name", "lead.city"])
        );
        assert_eq!(fields("{{literal}}"), Ok(vec![]));
        assert!(
            fields("Hi {lead_name")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(
            fields("Hi {lead name}")
                .unwrap_err()
                .contains("not a field")
        );
    }
}
