//! API keys as an administrator asks for them, over HTTP or with `kb keys create`: the key's
//! name, its scope and quota, and when it expires. Both edges parse into [`NewKey`] here, so
//! a key made either way passes the same rules.

use super::{Rate, Scope, check_controls};
use chrono::{DateTime, Duration, Utc};

/// Characters of a key's name.
pub const KEY_NAME_MAX_CHARS: usize = 100;
/// How far ahead a key's expiry may be: a key meant to live longer is meant to live for
/// ever, which is what leaving the expiry out says.
pub const KEY_MAX_LIFETIME_DAYS: i64 = 3650;

/// What a key is called, to tell keys apart in a list: 1–100 characters after trimming, one
/// line (no control characters but tab).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let t = raw.trim();
        let n = t.chars().count();
        if n == 0 || n > KEY_NAME_MAX_CHARS {
            return Err(format!(
                "must be 1 to {KEY_NAME_MAX_CHARS} characters after trimming (got {n})"
            ));
        }
        check_controls(t, false)?;
        Ok(Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A key to create, fully validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    pub name: KeyName,
    pub scope: Scope,
    /// Its own quota; `None`: the server's default for keys.
    pub rate: Option<Rate>,
    /// When it stops working; `None`: never (until revoked).
    pub expires_at: Option<DateTime<Utc>>,
}

/// An expiry as asked for: after `now`, and at most [`KEY_MAX_LIFETIME_DAYS`] ahead.
pub fn check_expiry(t: DateTime<Utc>, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if t <= now {
        return Err("must be in the future".into());
    }
    if t > now + Duration::days(KEY_MAX_LIFETIME_DAYS) {
        return Err(format!(
            "must be at most {KEY_MAX_LIFETIME_DAYS} days ahead; leave it out for a key that \
             does not expire"
        ));
    }
    Ok(t)
}

/// `expires_at` of a request: an RFC 3339 time, checked by [`check_expiry`].
pub fn parse_expires_at(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let t = DateTime::parse_from_rfc3339(raw.trim())
        .map_err(|_| "must be an RFC 3339 timestamp like 2027-01-31T12:00:00Z".to_string())?;
    check_expiry(t.with_timezone(&Utc), now)
}

/// `kb keys create --expires`: an RFC 3339 time, or a lifetime from now as a whole number with
/// a unit, `s`, `m`, `h` or `d` (`30d`), as the server's other spans are written.
pub fn parse_expires(raw: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return check_expiry(t.with_timezone(&Utc), now);
    }
    let bad = || {
        format!(
            "`{raw}` is neither an RFC 3339 time (2027-01-31T12:00:00Z) nor a lifetime like 30d, \
             12h or 90m"
        )
    };
    let split = raw
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(raw.len(), |(i, _)| i);
    let (number, unit) = raw.split_at(split);
    let seconds: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    // Parsed as u32 so that no lifetime, times its unit, overflows what chrono adds.
    let number: u32 = number.parse().map_err(|_| bad())?;
    check_expiry(now + Duration::seconds(i64::from(number) * seconds), now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_trimmed_line_of_at_most_a_hundred_characters() {
        assert_eq!(
            KeyName::parse("  study app ").unwrap().as_str(),
            "study app"
        );
        assert!(KeyName::parse(&"钥".repeat(100)).is_ok());
        for bad in ["", "   ", "a\nb", "a\u{0}b"] {
            assert!(KeyName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(KeyName::parse(&"x".repeat(101)).is_err());
    }

    #[test]
    fn an_expiry_is_in_the_future_and_at_most_ten_years_ahead() {
        let now = Utc::now();
        assert!(check_expiry(now, now).is_err(), "now is already expired");
        assert!(check_expiry(now - Duration::seconds(1), now).is_err());
        assert!(check_expiry(now + Duration::seconds(1), now).is_ok());
        let limit = now + Duration::days(KEY_MAX_LIFETIME_DAYS);
        assert!(check_expiry(limit, now).is_ok());
        assert!(check_expiry(limit + Duration::seconds(1), now).is_err());
    }

    #[test]
    fn the_command_line_takes_a_time_or_a_lifetime() {
        let now = Utc::now();
        assert_eq!(parse_expires("30d", now).unwrap(), now + Duration::days(30));
        assert_eq!(
            parse_expires("90m", now).unwrap(),
            now + Duration::minutes(90)
        );
        assert_eq!(
            parse_expires("2999-01-01T00:00:00Z", now).unwrap_err(),
            check_expiry("2999-01-01T00:00:00Z".parse().unwrap(), now).unwrap_err()
        );
        let soon = (now + Duration::hours(1)).to_rfc3339();
        assert_eq!(parse_expires(&soon, now).unwrap().to_rfc3339(), soon);
        for bad in [
            "",
            "30",
            "d",
            "30y",
            "-1d",
            "0d",
            "1.5d",
            "99999999999d",
            "tomorrow",
        ] {
            assert!(parse_expires(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_takes_only_a_time() {
        let now = Utc::now();
        assert!(parse_expires_at("30d", now).is_err());
        assert!(parse_expires_at("2020-01-01T00:00:00Z", now).is_err());
        let soon = now + Duration::days(1);
        assert_eq!(parse_expires_at(&soon.to_rfc3339(), now).unwrap(), soon);
    }
}
