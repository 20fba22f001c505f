//! Turning an uploaded lead list (CSV or JSON) into validated leads. Pure: no I/O.
//!
//! One bad row never sinks the file: each row either becomes an [`ImportedLead`], or
//! one or more [`RowError`]s naming its row and column, or a [`Duplicate`] of an
//! earlier row's phone number. Only a body that cannot be read as a lead list at all
//! (too large, too many rows, not UTF-8, no header, no phone column, not JSON) is an
//! [`ImportError`].
//!
//! CSV ([`parse_csv`]): the first non-blank record is the header. Column names are
//! trimmed and normalised to lower snake case (`Time Zone`, `timeZone` and `TIME_ZONE`
//! are all `time_zone`), and then matched:
//!
//! | column | aliases | value |
//! | --- | --- | --- |
//! | `phone` (required) | `phone_number` | normalised to E.164 with the default region |
//! | `name` | | at most 200 characters |
//! | `email` | | checked loosely: one `@`, a dot in the domain, at most 254 characters |
//! | `timezone` | `time_zone` | an IANA name such as `Europe/London` |
//! | `do_not_call` | `dnc` | `true`, `false`, `yes`, `no`, `1`, `0` (any case) or empty (false) |
//!
//! Every other column is a custom field, kept under its normalised name when the row's
//! value is not empty (at most 1000 characters a value, 50 fields a row). A column
//! whose name is empty once normalised (`""`, `#`) is ignored. Values are trimmed and an
//! empty value is the same as a missing one.
//!
//! Rows are numbered from 1, counting the records after the header that are not blank
//! (a blank record is an empty line or one whose fields are all empty). Errors name
//! the column by its normalised name, or `*` for the whole row (a row whose number of
//! fields differs from the header's, or one with too many custom fields).
//!
//! JSON ([`parse_json`]): `{"leads": [...]}` or a bare array of objects with the keys
//! `phone`, `name`, `email`, `timezone` (or `time_zone`), `do_not_call` (or `dnc`; a
//! boolean, or a string as in CSV) and `fields` (an object of strings, numbers or
//! booleans). Rows are the 1-based array index and errors name the key (`fields.<key>`
//! for a custom field).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::domain::values::{PhoneNumber, TimeZone};

/// The largest value of a custom field, in characters.
pub const MAX_FIELD_CHARS: usize = 1000;
/// The most custom fields one lead keeps.
pub const MAX_FIELDS: usize = 50;
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest email address, in characters.
pub const MAX_EMAIL_CHARS: usize = 254;
/// The longest column (or custom field) name, in characters, once normalised.
pub const MAX_COLUMN_NAME_CHARS: usize = 100;

/// How much one upload may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Data rows (CSV, header excluded) or array entries (JSON).
    pub max_rows: usize,
    /// The body's size in bytes.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rows: 50_000,
            max_bytes: 10 * 1024 * 1024,
        }
    }
}

/// One valid lead of the upload: what `LeadCommand::Create` needs, and more.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ImportedLead {
    /// The 1-based data row (CSV, header excluded) or array index (JSON).
    pub row: usize,
    pub phone: PhoneNumber,
    pub name: Option<String>,
    pub email: Option<String>,
    pub time_zone: Option<TimeZone>,
    pub do_not_call: bool,
    /// The custom fields, by lower snake case name.
    pub fields: BTreeMap<String, String>,
}

/// Why one row was not imported.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub row: usize,
    /// The normalised column name (CSV), the key (JSON), or `*` for the whole row.
    pub column: String,
    pub reason: String,
}

/// A row whose phone number (once normalised) an earlier imported row already has; it
/// is not imported again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    pub row: usize,
    pub phone: PhoneNumber,
    pub first_row: usize,
}

/// The outcome of reading an upload, each list in row order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Parsed {
    pub leads: Vec<ImportedLead>,
    pub errors: Vec<RowError>,
    pub duplicates: Vec<Duplicate>,
}

/// Why an upload could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the upload is larger than {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    #[error("the upload has more than {limit_rows} rows")]
    TooManyRows { limit_rows: usize },
    #[error("the CSV has no header row")]
    NoHeader,
    #[error("the CSV has no {0} column")]
    MissingColumn(&'static str),
    #[error("the upload is not UTF-8 text")]
    NotUtf8,
    #[error("the upload is not a lead list: {reason}")]
    Malformed { reason: String },
    #[error("the column {0} appears more than once")]
    DuplicateColumn(String),
}

/// Reads a CSV lead list; see the [module documentation](self) for the columns.
///
/// # Errors
///
/// [`ImportError`] when the body is over `limits.max_bytes` (checked before reading),
/// has more than `limits.max_rows` data rows (checked while reading), is not UTF-8 or
/// holds NULs, has no header row, has no phone column, or names a column twice.
pub fn parse_csv(
    bytes: &[u8],
    default_region: Option<&str>,
    limits: &Limits,
) -> Result<Parsed, ImportError> {
    let text = text_body(bytes, limits)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut header: Option<Header> = None;
    let mut out = Collector::default();
    let mut row = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => return Err(csv_error(&err)),
        }
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        let Some(head) = &header else {
            header = Some(Header::parse(&record)?);
            continue;
        };
        row += 1;
        if row > limits.max_rows {
            return Err(ImportError::TooManyRows {
                limit_rows: limits.max_rows,
            });
        }
        head.read_row(row, &record, default_region, &mut out);
    }
    if header.is_none() {
        return Err(ImportError::NoHeader);
    }
    Ok(out.parsed)
}

/// Reads a JSON lead list: `{"leads": [...]}` or a bare array; see the
/// [module documentation](self) for the keys.
///
/// # Errors
///
/// [`ImportError`] when the body is over `limits.max_bytes`, is not UTF-8, is not
/// JSON, is not one of the two shapes (including an unknown top-level key), or has
/// more than `limits.max_rows` entries.
pub fn parse_json(
    bytes: &[u8],
    default_region: Option<&str>,
    limits: &Limits,
) -> Result<Parsed, ImportError> {
    let text = text_body(bytes, limits)?;
    if text.trim().is_empty() {
        return Err(malformed("the body is empty"));
    }
    let value: Value =
        serde_json::from_str(text).map_err(|err| malformed(format!("not JSON: {err}")))?;
    let entries = match value {
        Value::Array(entries) => entries,
        Value::Object(mut map) => {
            if let Some(key) = map.keys().find(|key| *key != "leads") {
                return Err(malformed(format!(
                    "unknown key {:?}: expected {{\"leads\": [...]}}",
                    clip(key)
                )));
            }
            match map.remove("leads") {
                Some(Value::Array(entries)) => entries,
                Some(_) => return Err(malformed("\"leads\" must be an array")),
                None => return Err(malformed("expected {\"leads\": [...]}")),
            }
        }
        _ => {
            return Err(malformed(
                "expected an array of leads or {\"leads\": [...]}",
            ));
        }
    };
    if entries.len() > limits.max_rows {
        return Err(ImportError::TooManyRows {
            limit_rows: limits.max_rows,
        });
    }
    let mut out = Collector::default();
    for (index, entry) in entries.iter().enumerate() {
        read_json_entry(index + 1, entry, default_region, &mut out);
    }
    Ok(out.parsed)
}

/// The body as text: within the size limit, UTF-8 (a leading BOM dropped), no NULs.
fn text_body<'a>(bytes: &'a [u8], limits: &Limits) -> Result<&'a str, ImportError> {
    if bytes.len() > limits.max_bytes {
        return Err(ImportError::TooLarge {
            limit_bytes: limits.max_bytes,
        });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|_| ImportError::NotUtf8)?;
    if text.contains('\0') {
        return Err(malformed(
            "it contains NUL characters (a binary or UTF-16 file?); send UTF-8 text",
        ));
    }
    Ok(text)
}

fn malformed(reason: impl Into<String>) -> ImportError {
    ImportError::Malformed {
        reason: reason.into(),
    }
}

fn csv_error(err: &csv::Error) -> ImportError {
    match err.kind() {
        csv::ErrorKind::Utf8 { .. } => ImportError::NotUtf8,
        _ => malformed(format!("not CSV: {err}")),
    }
}

/// At most 100 characters of something the upload named, for an error message.
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_COLUMN_NAME_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// Lower snake case: `First Name`, `firstName` and `FIRST-NAME` are all `first_name`.
/// Letters and digits (of any script) are kept, lower-cased; every run of anything
/// else, and a lower-case letter or digit followed by an upper-case one, becomes `_`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    let mut after_lower = false;
    for c in name.trim().chars() {
        if !c.is_alphanumeric() {
            gap = true;
            after_lower = false;
            continue;
        }
        if (gap || (after_lower && c.is_uppercase())) && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        after_lower = c.is_lowercase() || c.is_numeric();
        out.extend(c.to_lowercase());
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Role {
    Phone,
    Name,
    Email,
    TimeZone,
    DoNotCall,
    Field,
    Ignored,
}

impl Role {
    fn of(key: &str) -> Role {
        match key {
            "" => Role::Ignored,
            "phone" | "phone_number" => Role::Phone,
            "name" => Role::Name,
            "email" => Role::Email,
            "timezone" | "time_zone" => Role::TimeZone,
            "do_not_call" | "dnc" => Role::DoNotCall,
            _ => Role::Field,
        }
    }

    /// What two columns must not share: the role, or a custom field's name.
    fn slot<'k>(&self, key: &'k str) -> Option<&'k str> {
        match self {
            Role::Phone => Some("phone"),
            Role::Name => Some("name"),
            Role::Email => Some("email"),
            Role::TimeZone => Some("timezone"),
            Role::DoNotCall => Some("do_not_call"),
            Role::Field => Some(key),
            Role::Ignored => None,
        }
    }
}

struct Column {
    key: String,
    role: Role,
}

struct Header {
    columns: Vec<Column>,
}

impl Header {
    fn parse(record: &csv::StringRecord) -> Result<Header, ImportError> {
        let mut columns = Vec::with_capacity(record.len());
        let mut taken = HashSet::new();
        for (index, raw) in record.iter().enumerate() {
            let key = snake_case(raw);
            if key.chars().count() > MAX_COLUMN_NAME_CHARS {
                return Err(malformed(format!(
                    "column {}'s name is longer than {MAX_COLUMN_NAME_CHARS} characters",
                    index + 1
                )));
            }
            let role = Role::of(&key);
            if let Some(slot) = role.slot(&key)
                && !taken.insert(slot.to_owned())
            {
                return Err(ImportError::DuplicateColumn(key));
            }
            columns.push(Column { key, role });
        }
        if !columns.iter().any(|column| column.role == Role::Phone) {
            return Err(ImportError::MissingColumn("phone"));
        }
        Ok(Header { columns })
    }

    fn read_row(
        &self,
        row: usize,
        record: &csv::StringRecord,
        default_region: Option<&str>,
        out: &mut Collector,
    ) {
        let mut draft = Draft::new(row, default_region);
        if record.len() != self.columns.len() {
            draft.fail(
                "*",
                format!(
                    "has {} fields but the header has {}",
                    record.len(),
                    self.columns.len()
                ),
            );
            return out.finish(draft, "*");
        }
        for (column, value) in self.columns.iter().zip(record.iter()) {
            let key = column.key.as_str();
            match column.role {
                Role::Phone => draft.phone(key, value),
                Role::Name => draft.name(key, value),
                Role::Email => draft.email(key, value),
                Role::TimeZone => draft.time_zone(key, value),
                Role::DoNotCall => draft.do_not_call_text(key, value),
                Role::Field => draft.field(key, key.to_owned(), value),
                Role::Ignored => {}
            }
        }
        out.finish(draft, "*");
    }
}

fn read_json_entry(row: usize, entry: &Value, default_region: Option<&str>, out: &mut Collector) {
    let mut draft = Draft::new(row, default_region);
    let Value::Object(map) = entry else {
        draft.fail("*", "must be an object with a \"phone\"");
        return out.finish(draft, "fields");
    };
    let mut phone_given = false;
    let mut time_zone_given = false;
    let mut do_not_call_given = false;
    for (key, value) in map {
        match key.as_str() {
            "phone" => {
                phone_given = true;
                match value {
                    Value::String(text) => draft.phone(key, text),
                    Value::Null => draft.fail(key, "is required"),
                    _ => draft.fail(key, "must be a string"),
                }
            }
            "name" | "email" | "timezone" | "time_zone" => {
                if key.starts_with("time") && std::mem::replace(&mut time_zone_given, true) {
                    draft.fail(key, "give timezone or time_zone, not both");
                    continue;
                }
                let text = match value {
                    Value::String(text) => text.as_str(),
                    Value::Null => continue,
                    _ => {
                        draft.fail(key, "must be a string");
                        continue;
                    }
                };
                match key.as_str() {
                    "name" => draft.name(key, text),
                    "email" => draft.email(key, text),
                    _ => draft.time_zone(key, text),
                }
            }
            "do_not_call" | "dnc" => {
                if std::mem::replace(&mut do_not_call_given, true) {
                    draft.fail(key, "give do_not_call or dnc, not both");
                    continue;
                }
                match value {
                    Value::Bool(flag) => draft.do_not_call = *flag,
                    Value::Null => {}
                    Value::String(text) => draft.do_not_call_text(key, text),
                    Value::Number(number) => match number.as_u64() {
                        Some(0) => {}
                        Some(1) => draft.do_not_call = true,
                        _ => draft.fail(key, "must be true or false"),
                    },
                    _ => draft.fail(key, "must be true or false"),
                }
            }
            "fields" => match value {
                Value::Object(fields) => {
                    for (name, value) in fields {
                        let column = format!("fields.{}", clip(name));
                        let text = match value {
                            Value::String(text) => text.clone(),
                            Value::Number(number) => number.to_string(),
                            Value::Bool(flag) => flag.to_string(),
                            Value::Null => continue,
                            _ => {
                                draft.fail(&column, "must be a string, a number or a boolean");
                                continue;
                            }
                        };
                        let normalised = snake_case(name);
                        if normalised.is_empty() {
                            draft.fail(&column, "needs a name with a letter or digit");
                        } else if normalised.chars().count() > MAX_COLUMN_NAME_CHARS {
                            draft.fail(
                                &column,
                                format!(
                                    "the name must be at most {MAX_COLUMN_NAME_CHARS} characters"
                                ),
                            );
                        } else {
                            draft.field(&column, normalised, &text);
                        }
                    }
                }
                Value::Null => {}
                _ => draft.fail(key, "must be an object"),
            },
            other => draft.fail(
                &clip(other),
                "is not a lead attribute (custom values go under \"fields\")",
            ),
        }
    }
    if !phone_given {
        draft.fail("phone", "is required");
    }
    out.finish(draft, "fields");
}

/// One row being checked: what is valid so far, and what is not.
struct Draft<'r> {
    row: usize,
    default_region: Option<&'r str>,
    phone: Option<PhoneNumber>,
    name: Option<String>,
    email: Option<String>,
    time_zone: Option<TimeZone>,
    do_not_call: bool,
    fields: BTreeMap<String, String>,
    errors: Vec<RowError>,
}

impl<'r> Draft<'r> {
    fn new(row: usize, default_region: Option<&'r str>) -> Self {
        Draft {
            row,
            default_region,
            phone: None,
            name: None,
            email: None,
            time_zone: None,
            do_not_call: false,
            fields: BTreeMap::new(),
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, column: &str, reason: impl Into<String>) {
        self.errors.push(RowError {
            row: self.row,
            column: column.to_owned(),
            reason: reason.into(),
        });
    }

    fn phone(&mut self, column: &str, value: &str) {
        match PhoneNumber::normalise(value, self.default_region) {
            Ok(phone) => self.phone = Some(phone),
            Err(err) => self.fail(column, err.reason),
        }
    }

    fn name(&mut self, column: &str, value: &str) {
        let value = value.trim();
        if value.chars().count() > MAX_NAME_CHARS {
            self.fail(
                column,
                format!("must be at most {MAX_NAME_CHARS} characters"),
            );
        } else if !value.is_empty() {
            self.name = Some(value.to_owned());
        }
    }

    fn email(&mut self, column: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        match check_email(value) {
            Ok(()) => self.email = Some(value.to_owned()),
            Err(reason) => self.fail(column, reason),
        }
    }

    fn time_zone(&mut self, column: &str, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        // No time zone name is this long; do not echo a huge value back.
        if value.len() > 64 {
            return self.fail(
                column,
                "is not an IANA time zone name such as Europe/London",
            );
        }
        match TimeZone::parse(value) {
            Ok(zone) => self.time_zone = Some(zone),
            Err(err) => self.fail(column, err.reason),
        }
    }

    fn do_not_call_text(&mut self, column: &str, value: &str) {
        let value = value.trim();
        let yes = ["true", "yes", "1"];
        let no = ["", "false", "no", "0"];
        if yes.iter().any(|word| value.eq_ignore_ascii_case(word)) {
            self.do_not_call = true;
        } else if no.iter().any(|word| value.eq_ignore_ascii_case(word)) {
            self.do_not_call = false;
        } else {
            self.fail(column, "must be true, false, yes, no, 1, 0 or empty");
        }
    }

    /// A custom field `name` (already normalised) from `column`; empty values are not kept.
    fn field(&mut self, column: &str, name: String, value: &str) {
        let value = value.trim();
        if value.is_empty() {
            return;
        }
        if value.chars().count() > MAX_FIELD_CHARS {
            return self.fail(
                column,
                format!("must be at most {MAX_FIELD_CHARS} characters"),
            );
        }
        if self.fields.contains_key(&name) {
            return self.fail(column, format!("is the same field as another ({name})"));
        }
        self.fields.insert(name, value.to_owned());
    }
}

fn check_email(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_EMAIL_CHARS {
        return Err(format!("must be at most {MAX_EMAIL_CHARS} characters"));
    }
    let invalid = || Err("is not an email address".to_owned());
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return invalid();
    }
    let Some((local, domain)) = value.split_once('@') else {
        return invalid();
    };
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@');
    if local.is_empty() || !domain_ok {
        return invalid();
    }
    Ok(())
}

/// The rows read so far, and the first row of each imported phone number.
#[derive(Default)]
struct Collector {
    parsed: Parsed,
    first_rows: HashMap<PhoneNumber, usize>,
}

impl Collector {
    /// Files a finished row: its errors, or a duplicate, or a new lead. `fields_column`
    /// names where too many custom fields are reported.
    fn finish(&mut self, mut draft: Draft<'_>, fields_column: &str) {
        if draft.fields.len() > MAX_FIELDS {
            let count = draft.fields.len();
            draft.fail(
                fields_column,
                format!("has {count} custom fields; at most {MAX_FIELDS} are allowed"),
            );
        }
        let phone = match draft.phone.take() {
            Some(phone) if draft.errors.is_empty() => phone,
            _ => {
                if draft.errors.is_empty() {
                    draft.fail("phone", "is required");
                }
                self.parsed.errors.append(&mut draft.errors);
                return;
            }
        };
        if let Some(&first_row) = self.first_rows.get(&phone) {
            self.parsed.duplicates.push(Duplicate {
                row: draft.row,
                phone,
                first_row,
            });
            return;
        }
        self.first_rows.insert(phone.clone(), draft.row);
        self.parsed.leads.push(ImportedLead {
            row: draft.row,
            phone,
            name: draft.name,
            email: draft.email,
            time_zone: draft.time_zone,
            do_not_call: draft.do_not_call,
            fields: draft.fields,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(text: &str) -> Parsed {
        parse_csv(text.as_bytes(), Some("GB"), &Limits::default()).unwrap()
    }

    fn json(text: &str) -> Parsed {
        parse_json(text.as_bytes(), Some("GB"), &Limits::default()).unwrap()
    }

    fn phones(parsed: &Parsed) -> Vec<(usize, &str)> {
        parsed
            .leads
            .iter()
            .map(|lead| (lead.row, lead.phone.as_str()))
            .collect()
    }

    fn errors(parsed: &Parsed) -> Vec<(usize, &str)> {
        parsed
            .errors
            .iter()
            .map(|err| (err.row, err.column.as_str()))
            .collect()
    }

    #[test]
    fn csv_numbers_are_normalised_with_the_default_region() {
        let parsed = csv("phone,name,email,timezone,do_not_call\n\
             020 7183 8750,Ada Lovelace,ada@example.co.uk,Europe/London,no\n\
             +1 (415) 555-0132,  Grace  ,,,\n\
             07911 123456,,,,YES\n");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(
            phones(&parsed),
            [
                (1, "+442071838750"),
                (2, "+14155550132"),
                (3, "+447911123456")
            ]
        );
        let ada = &parsed.leads[0];
        assert_eq!(ada.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(ada.email.as_deref(), Some("ada@example.co.uk"));
        assert_eq!(ada.time_zone.as_ref().unwrap().as_str(), "Europe/London");
        assert!(!ada.do_not_call);
        let grace = &parsed.leads[1];
        assert_eq!(grace.name.as_deref(), Some("Grace"));
        assert_eq!(
            (grace.email.as_ref(), grace.time_zone.as_ref()),
            (None, None)
        );
        assert!(parsed.leads[2].do_not_call);

        // Without a default region a national number is a row error.
        let parsed = parse_csv(b"phone\n020 7183 8750\n", None, &Limits::default()).unwrap();
        assert_eq!(errors(&parsed), [(1, "phone")]);
        assert!(parsed.leads.is_empty());
    }

    #[test]
    fn csv_bad_values_are_row_errors_and_good_rows_are_kept() {
        let parsed = csv("Phone,Time Zone,DNC,Email,Name\n\
             +14155550132,America/New_York,true,a@b.co,Ok\n\
             not a phone,,,,\n\
             +14155550133,Mars/Olympus,,,\n\
             +14155550134,,maybe,,\n\
             +14155550135,,,nobody-at-example.com,\n\
             ,,,,No phone\n\
             +1 555,Nowhere/Else,perhaps,x@y,\n\
             +14155550136,,0,,\n");
        assert_eq!(phones(&parsed), [(1, "+14155550132"), (8, "+14155550136")]);
        assert_eq!(
            errors(&parsed),
            [
                (2, "phone"),
                (3, "time_zone"),
                (4, "dnc"),
                (5, "email"),
                (6, "phone"),
                (7, "phone"),
                (7, "time_zone"),
                (7, "dnc"),
                (7, "email"),
            ]
        );
        // Reasons come from the domain's checks.
        let bad_phone = &parsed.errors[0];
        assert_eq!(
            bad_phone.reason,
            PhoneNumber::normalise("not a phone", Some("GB"))
                .unwrap_err()
                .reason
        );
        assert!(parsed.errors[1].reason.contains("Mars/Olympus"));
        assert!(parsed.duplicates.is_empty());
    }

    #[test]
    fn csv_duplicates_are_reported_and_imported_once() {
        let parsed = csv("phone,name\n\
             020 7183 8750,First\n\
             +44 20 7183 8750,Second\n\
             +14155550132,Other\n\
             (020) 7183-8750,Third\n\
             +14155550133 ,\n");
        assert_eq!(
            phones(&parsed),
            [
                (1, "+442071838750"),
                (3, "+14155550132"),
                (5, "+14155550133")
            ]
        );
        assert_eq!(parsed.leads[0].name.as_deref(), Some("First"));
        let duplicates: Vec<_> = parsed
            .duplicates
            .iter()
            .map(|dup| (dup.row, dup.phone.as_str(), dup.first_row))
            .collect();
        assert_eq!(
            duplicates,
            [(2, "+442071838750", 1), (4, "+442071838750", 1)]
        );

        // A row that failed does not count as the first: its number is imported later.
        let parsed = csv("phone,timezone\n+14155550132,Nope/Nope\n+14155550132,\n");
        assert_eq!(phones(&parsed), [(2, "+14155550132")]);
        assert!(parsed.duplicates.is_empty());
    }

    #[test]
    fn csv_quoted_fields_keep_commas_quotes_and_newlines() {
        let parsed = csv("phone,name,Notes\r\n\
             \"+1 415 555 0132\",\"Smith, John\",\"said \"\"call me\"\"\nafter 5, please\"\r\n\
             +14155550133,\"\",\"\"\r\n");
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let john = &parsed.leads[0];
        assert_eq!(john.name.as_deref(), Some("Smith, John"));
        assert_eq!(
            john.fields.get("notes").map(String::as_str),
            Some("said \"call me\"\nafter 5, please")
        );
        // Empty values are no name and no field.
        assert_eq!(parsed.leads[1].row, 2);
        assert_eq!(parsed.leads[1].name, None);
        assert!(parsed.leads[1].fields.is_empty());
    }

    #[test]
    fn csv_a_leading_bom_is_tolerated() {
        let mut body = b"\xEF\xBB\xBFphone,name\n".to_vec();
        body.extend_from_slice(b"+14155550132,Ann\n");
        let parsed = parse_csv(&body, None, &Limits::default()).unwrap();
        assert_eq!(phones(&parsed), [(1, "+14155550132")]);
        assert_eq!(parsed.leads[0].name.as_deref(), Some("Ann"));
    }

    #[test]
    fn csv_rows_of_the_wrong_length_are_row_errors_and_blank_lines_are_skipped() {
        let parsed = csv("\n\nphone,name,company\n\
             +14155550132,Ann,Acme\n\
             \n\
             +14155550133,Bob\n\
             ,,\n\
             +14155550134,Cy,Initech,extra\n\
             \x20\x20\n\
             +14155550135,Di,Globex\n");
        assert_eq!(phones(&parsed), [(1, "+14155550132"), (4, "+14155550135")]);
        assert_eq!(errors(&parsed), [(2, "*"), (3, "*")]);
        assert_eq!(parsed.errors[0].reason, "has 2 fields but the header has 3");
        assert_eq!(parsed.errors[1].reason, "has 4 fields but the header has 3");
    }

    #[test]
    fn csv_header_names_are_normalised_and_matched() {
        let parsed = csv(
            " PHONE_NUMBER , Full Name,companyName,TimeZone,Do Not Call,#,\n\
             +14155550132,Ann Lee,Acme,Asia/Kolkata,1,7,ignored\n",
        );
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        let lead = &parsed.leads[0];
        assert_eq!(lead.name, None);
        assert_eq!(lead.time_zone.as_ref().unwrap().as_str(), "Asia/Kolkata");
        assert!(lead.do_not_call);
        let fields: Vec<_> = lead
            .fields
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(fields, [("company_name", "Acme"), ("full_name", "Ann Lee")]);

        assert_eq!(snake_case("  First  Name "), "first_name");
        assert_eq!(snake_case("customerID"), "customer_id");
        assert_eq!(snake_case("do-not-call?"), "do_not_call");
        assert_eq!(snake_case("Straße"), "straße");
        assert_eq!(snake_case("---"), "");

        let limits = Limits::default();
        let fail = |text: &str| parse_csv(text.as_bytes(), None, &limits).unwrap_err();
        assert_eq!(
            fail("name,email\nAnn,a@b.co\n"),
            ImportError::MissingColumn("phone")
        );
        assert_eq!(
            fail("phone,Phone Number\n"),
            ImportError::DuplicateColumn("phone_number".into())
        );
        assert_eq!(
            fail("phone,timezone,time_zone\n"),
            ImportError::DuplicateColumn("time_zone".into())
        );
        assert_eq!(
            fail("phone,dnc,DoNotCall\n"),
            ImportError::DuplicateColumn("do_not_call".into())
        );
        assert_eq!(
            fail("phone,First Name,first_name\n"),
            ImportError::DuplicateColumn("first_name".into())
        );
        let long = format!("phone,{}\n", "x".repeat(MAX_COLUMN_NAME_CHARS + 1));
        assert!(matches!(fail(&long), ImportError::Malformed { .. }));
    }

    #[test]
    fn csv_custom_fields_are_bounded() {
        let long = "é".repeat(MAX_FIELD_CHARS + 1);
        let ok = "é".repeat(MAX_FIELD_CHARS);
        let parsed = csv(&format!(
            "phone,notes\n+14155550132,{long}\n+14155550133,{ok}\n"
        ));
        assert_eq!(errors(&parsed), [(1, "notes")]);
        assert_eq!(phones(&parsed), [(2, "+14155550133")]);

        let names: Vec<String> = (0..=MAX_FIELDS).map(|n| format!("f{n}")).collect();
        let header = format!("phone,{}\n", names.join(","));
        let full = vec!["v"; MAX_FIELDS + 1].join(",");
        let sparse = format!("{}{}", "v,".repeat(MAX_FIELDS), "");
        let parsed = csv(&format!(
            "{header}+14155550132,{full}\n+14155550133,{sparse}\n"
        ));
        assert_eq!(errors(&parsed), [(1, "*")]);
        assert_eq!(parsed.leads[0].fields.len(), MAX_FIELDS);

        let name = "n".repeat(MAX_NAME_CHARS + 1);
        let parsed = csv(&format!("phone,name\n+14155550132,{name}\n"));
        assert_eq!(errors(&parsed), [(1, "name")]);
    }

    #[test]
    fn emails_are_checked_loosely() {
        for good in ["a@b.co", "first.last+tag@mail.example.org", "ü@exämple.de"] {
            assert!(check_email(good).is_ok(), "{good}");
        }
        let too_long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
        for bad in [
            "plain",
            "@b.co",
            "a@b",
            "a@b@c.co",
            "a@.co",
            "a@b.",
            "a b@c.co",
            too_long.as_str(),
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_limits_are_enforced() {
        let limits = Limits {
            max_rows: 2,
            max_bytes: 64,
        };
        let body = "phone\n+14155550132\n+14155550133\n";
        assert_eq!(
            parse_csv(body.as_bytes(), None, &limits)
                .unwrap()
                .leads
                .len(),
            2
        );
        let three = format!("{body}+14155550134\n");
        assert_eq!(
            parse_csv(three.as_bytes(), None, &limits),
            Err(ImportError::TooManyRows { limit_rows: 2 })
        );
        // Blank lines are not rows.
        let blanks = format!("{body}\n\n\n");
        assert!(parse_csv(blanks.as_bytes(), None, &limits).is_ok());
        let big = format!("phone\n{}", "+14155550132\n".repeat(5));
        assert!(big.len() > 64);
        assert_eq!(
            parse_csv(big.as_bytes(), None, &limits),
            Err(ImportError::TooLarge { limit_bytes: 64 })
        );
        assert_eq!(
            Limits::default(),
            Limits {
                max_rows: 50_000,
                max_bytes: 10 * 1024 * 1024
            }
        );
    }

    #[test]
    fn csv_bodies_that_are_not_lead_lists() {
        let limits = Limits::default();
        let parse = |bytes: &[u8]| parse_csv(bytes, None, &limits);
        assert_eq!(parse(b""), Err(ImportError::NoHeader));
        assert_eq!(
            parse(b"\xEF\xBB\xBF\n\r\n , \n"),
            Err(ImportError::NoHeader)
        );
        assert_eq!(parse(b"phone,name\n"), Ok(Parsed::default()));
        assert_eq!(parse(b"phone\n\xFF\xFE"), Err(ImportError::NotUtf8));
        // UTF-16 with its BOM, as some spreadsheets save "Unicode text".
        assert_eq!(parse(b"\xFF\xFEp\0h\0o\0n\0e\0"), Err(ImportError::NotUtf8));
        assert!(matches!(
            parse(b"phone\n+14155550132\0\n"),
            Err(ImportError::Malformed { .. })
        ));
    }

    #[test]
    fn json_entries_follow_the_same_rules() {
        let parsed = json(
            r#"{"leads": [
                {"phone": "020 7183 8750", "name": " Ada ", "email": "ada@example.co.uk",
                 "timezone": "Europe/London", "do_not_call": false,
                 "fields": {"Company Name": "Acme", "seats": 12, "vip": true, "none": null, "blank": " "}},
                {"phone": "+1 415 555 0132", "time_zone": "Mars/Olympus"},
                {"phone": "nope", "do_not_call": "maybe", "email": "x"},
                {"name": "No phone"},
                {"phone": 14155550133},
                "+14155550134",
                {"phone": "+44 20 7183 8750"},
                {"phone": "+14155550135", "dnc": "yes", "colour": "blue"},
                {"phone": "+14155550136", "dnc": 1, "fields": {"a": [1]}},
                {"phone": "+14155550137", "dnc": true, "time_zone": null, "name": null}
            ]}"#,
        );
        assert_eq!(
            phones(&parsed),
            [(1, "+442071838750"), (10, "+14155550137")]
        );
        let ada = &parsed.leads[0];
        assert_eq!(ada.name.as_deref(), Some("Ada"));
        assert_eq!(ada.email.as_deref(), Some("ada@example.co.uk"));
        assert_eq!(ada.time_zone.as_ref().unwrap().as_str(), "Europe/London");
        let fields: Vec<_> = ada
            .fields
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str()))
            .collect();
        assert_eq!(
            fields,
            [("company_name", "Acme"), ("seats", "12"), ("vip", "true")]
        );
        assert!(parsed.leads[1].do_not_call);
        assert_eq!(
            errors(&parsed),
            [
                (2, "time_zone"),
                (3, "do_not_call"),
                (3, "email"),
                (3, "phone"),
                (4, "phone"),
                (5, "phone"),
                (6, "*"),
                (8, "colour"),
                (9, "fields.a"),
            ]
        );
        assert_eq!(parsed.errors[4].reason, "is required");
        assert_eq!(parsed.errors[5].reason, "must be a string");
        assert_eq!(
            parsed.duplicates,
            [Duplicate {
                row: 7,
                phone: PhoneNumber::parse("+442071838750").unwrap(),
                first_row: 1,
            }]
        );

        // A bare array works too, and numbers rows the same way.
        let bare = json(r#"[{"phone": "+14155550132"}, {"phone": "+14155550132"}]"#);
        assert_eq!(phones(&bare), [(1, "+14155550132")]);
        assert_eq!(bare.duplicates[0].row, 2);
        assert_eq!(json("[]"), Parsed::default());
    }

    #[test]
    fn json_fields_are_bounded() {
        let many: serde_json::Map<String, Value> = (0..=MAX_FIELDS)
            .map(|n| (format!("f{n}"), Value::from("v")))
            .collect();
        let body = serde_json::json!([
            {"phone": "+14155550132", "fields": many},
            {"phone": "+14155550133", "fields": {"notes": "x".repeat(MAX_FIELD_CHARS + 1)}},
            {"phone": "+14155550134", "fields": {"First Name": "A", "first_name": "B"}},
            {"phone": "+14155550135", "fields": {"?": "A"}},
            {"phone": "+14155550136", "fields": ["not", "an", "object"]},
        ]);
        let parsed = json(&body.to_string());
        assert!(parsed.leads.is_empty());
        assert_eq!(
            errors(&parsed),
            [
                (1, "fields"),
                (2, "fields.notes"),
                (3, "fields.first_name"),
                (4, "fields.?"),
                (5, "fields"),
            ]
        );
    }

    #[test]
    fn json_bodies_that_are_not_lead_lists() {
        let limits = Limits {
            max_rows: 2,
            max_bytes: 200,
        };
        let parse = |text: &str| parse_json(text.as_bytes(), None, &limits);
        let malformed = |text: &str| matches!(parse(text), Err(ImportError::Malformed { .. }));
        for bad in [
            "",
            "  ",
            "{",
            "phone\n+14155550132",
            "42",
            "\"leads\"",
            "null",
            "{}",
            r#"{"leads": {}}"#,
            r#"{"leads": [], "campaign": "x"}"#,
            r#"{"data": []}"#,
        ] {
            assert!(malformed(bad), "{bad:?} gave {:?}", parse(bad));
        }
        assert_eq!(
            parse(r#"[{"phone": "+14155550132"}, {}, {}]"#),
            Err(ImportError::TooManyRows { limit_rows: 2 })
        );
        assert_eq!(
            parse(&format!("[{}]", "{},".repeat(100))),
            Err(ImportError::TooLarge { limit_bytes: 200 })
        );
        assert_eq!(
            parse_json(b"[\"\xFF\"]", None, &limits),
            Err(ImportError::NotUtf8)
        );
        let with_bom = parse_json(
            b"\xEF\xBB\xBF{\"leads\": [{\"phone\": \"+14155550132\"}]}",
            None,
            &limits,
        )
        .unwrap();
        assert_eq!(phones(&with_bom), [(1, "+14155550132")]);
    }

    #[test]
    fn outcomes_serialize_with_phones_in_e164() {
        let parsed = csv("phone\n+1 415 555 0132\n+14155550132\nbad\n");
        let value = serde_json::to_value((&parsed.duplicates, &parsed.errors)).unwrap();
        assert_eq!(
            value,
            serde_json::json!([
                [{"row": 2, "phone": "+14155550132", "first_row": 1}],
                [{"row": 3, "column": "phone", "reason": parsed.errors[0].reason}],
            ])
        );
    }

    /// A small deterministic generator (xorshift), so a failure can be reproduced.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick_from(&mut self, alphabet: &[u8], len: usize) -> Vec<u8> {
            (0..len)
                .map(|_| alphabet[self.below(alphabet.len())])
                .collect()
        }
    }

    #[test]
    fn garbage_never_panics() {
        let limits = Limits {
            max_rows: 1_000,
            max_bytes: 1 << 20,
        };
        let both = |bytes: &[u8]| {
            let _ = parse_csv(bytes, Some("GB"), &limits);
            let _ = parse_json(bytes, Some("GB"), &limits);
            let _ = parse_csv(bytes, Some("not a region"), &limits);
        };
        let huge_field = format!("phone,notes\n+14155550132,\"{}\"\n", "x".repeat(900_000));
        let parsed = parse_csv(huge_field.as_bytes(), None, &limits).unwrap();
        assert_eq!(errors(&parsed), [(1, "notes")]);
        let huge_phone = format!("phone\n{}\n", "1".repeat(500_000));
        let parsed = parse_csv(huge_phone.as_bytes(), None, &limits).unwrap();
        assert_eq!(errors(&parsed), [(1, "phone")]);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let fixed: Vec<&[u8]> = vec![
            b"",
            b"\0",
            b"\0\0\0phone\0",
            b"\xEF\xBB\xBF",
            b"\xEF\xBB",
            b"phone",
            b"phone\n\"+14155550132",
            b"phone,name\n\"+14155550132,\"Ann\n+14155550133,\"",
            b"\"\"\"\n\"\"\n\"",
            b"phone\n\"a\"b\"c\"\n",
            b"phone\r\r\r+14155550132\r",
            b",,,,\n,,,\n",
            b"{\"leads\": [null, 1, \"x\", [], {\"phone\": {}}]}",
            b"[{\"phone\": \"\\u0000\"}]",
            b"{\"leads\": [{\"phone\": \"+14155550132\", \"fields\": {\"\": \"x\"}}]}",
            deep.as_bytes(),
            huge_field.as_bytes(),
        ];
        for bytes in fixed {
            both(bytes);
        }

        let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
        for _ in 0..300 {
            let len = noise.below(300);
            let bytes: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
            both(&bytes);
        }
        // Bodies that look almost right: CSV and JSON punctuation, and phone-ish text.
        let punctuation = b"phone,name\"\n\r{}[]:\x20+0123456789()-.#*xe@/tT\xEF\xBB\xBF";
        for _ in 0..300 {
            let len = noise.below(200);
            both(&noise.pick_from(punctuation, len));
        }
        let phoneish = b"+0123456789 ()-./#*xextEXTabc;,+";
        for _ in 0..2_000 {
            let len = noise.below(30);
            let text = String::from_utf8(noise.pick_from(phoneish, len)).unwrap();
            let _ = PhoneNumber::normalise(&text, Some("GB"));
            let _ = PhoneNumber::normalise(&text, None);
            let body = serde_json::json!([{ "phone": text }]).to_string();
            both(body.as_bytes());
        }
    }
}
