//! Small validated values the streams share.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValueError {
    pub field: &'static str,
    pub reason: String,
}

/// A phone number in E.164 form (`+` then 8 to 15 digits, no leading zero). Input in
/// national formats is normalised to this at the edge (API, CSV import); the domain only
/// ever holds the canonical form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        let digits = value.strip_prefix('+').ok_or_else(|| ValueError {
            field: "phone",
            reason: "must be in E.164 form, starting with +".into(),
        })?;
        let ok = (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !ok {
            return Err(ValueError {
                field: "phone",
                reason: "must be + and 8 to 15 digits, the first not 0".into(),
            });
        }
        Ok(PhoneNumber(value.to_owned()))
    }

    /// Normalises what a person typed (`+1 (415) 555-0123`, or `020 7183 8750` with
    /// `default_region` `GB`) to E.164, refusing numbers that cannot exist.
    pub fn normalise(input: &str, default_region: Option<&str>) -> Result<Self, ValueError> {
        let bad = |reason: &str| ValueError {
            field: "phone",
            reason: reason.into(),
        };
        let trimmed = input.trim();
        if trimmed.is_empty() || trimmed.len() > 40 {
            return Err(bad("must be a phone number"));
        }
        let region = match default_region {
            Some(code) => Some(
                code.to_ascii_uppercase()
                    .parse::<phonenumber::country::Id>()
                    .map_err(|_| bad("the default region is not a country code such as US"))?,
            ),
            None => None,
        };
        let parsed = phonenumber::parse(region, trimmed)
            .map_err(|_| bad("is not a phone number (give it with + and the country code)"))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(bad("is not a valid number for its country"));
        }
        Self::parse(&parsed.format().mode(phonenumber::Mode::E164).to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Phone numbers are personal data: debug output (and so logs) shows only the last digits.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = &self.0[self.0.len().saturating_sub(3)..];
        write!(f, "PhoneNumber(+…{tail})")
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

/// An IANA time zone name (`Europe/Berlin`), checked against the tz database.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeZone(String);

impl TimeZone {
    pub fn parse(value: &str) -> Result<Self, ValueError> {
        value
            .parse::<chrono_tz::Tz>()
            .map(|tz| TimeZone(tz.name().to_owned()))
            .map_err(|_| ValueError {
                field: "time_zone",
                reason: format!("{value:?} is not an IANA time zone name"),
            })
    }

    pub fn tz(&self) -> chrono_tz::Tz {
        // Only names that parsed are ever held.
        self.0.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TimeZone {
    type Error = ValueError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TimeZone> for String {
    fn from(value: TimeZone) -> Self {
        value.0
    }
}

/// A required, trimmed, length-limited text (names, titles).
pub fn name(field: &'static str, value: &str, max: usize) -> Result<String, ValueError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(ValueError {
            field,
            reason: "must not be empty".into(),
        });
    }
    if trimmed.chars().count() > max {
        return Err(ValueError {
            field,
            reason: format!("must be at most {max} characters"),
        });
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_must_be_e164() {
        assert!(PhoneNumber::parse("+14155550123").is_ok());
        for bad in [
            "14155550123",
            "+0123456789",
            "+1415",
            "+1 415 555 0123",
            "+",
            "",
        ] {
            let err = PhoneNumber::parse(bad).unwrap_err();
            assert_eq!(err.field, "phone", "{bad}");
        }
    }

    #[test]
    fn typed_numbers_are_normalised_to_e164() {
        let us = PhoneNumber::normalise(" +1 (415) 555-0132 ", None).unwrap();
        assert_eq!(us.as_str(), "+14155550132");
        let gb = PhoneNumber::normalise("020 7183 8750", Some("gb")).unwrap();
        assert_eq!(gb.as_str(), "+442071838750");
        for bad in ["020 7183 8750", "+1 555", "hello", "", "+999 1234 5678"] {
            assert_eq!(
                PhoneNumber::normalise(bad, None).unwrap_err().field,
                "phone",
                "{bad}"
            );
        }
        assert!(PhoneNumber::normalise("4155550132", Some("Narnia")).is_err());
    }

    #[test]
    fn phone_numbers_stay_out_of_debug_output() {
        let phone = PhoneNumber::parse("+14155550123").unwrap();
        let shown = format!("{phone:?}");
        assert!(!shown.contains("4155550"), "{shown}");
        assert!(shown.ends_with("123)"));
    }

    #[test]
    fn time_zones_are_checked_against_the_tz_database() {
        assert_eq!(
            TimeZone::parse("Asia/Kolkata").unwrap().as_str(),
            "Asia/Kolkata"
        );
        let err = TimeZone::parse("Mars/Olympus").unwrap_err();
        assert_eq!(err.field, "time_zone");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Acme ", 10).unwrap(), "Acme");
        assert!(name("name", "   ", 10).is_err());
        assert!(name("name", "abcdefghijk", 10).is_err());
    }
}
