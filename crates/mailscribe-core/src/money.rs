//! `Amount`: a decimal with two fractional digits, kept as hundredths.

use std::fmt;
use std::str::FromStr;

/// A cost per interaction. Stored as an integer number of hundredths so that
/// both databases keep it exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Amount(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an amount like 12 or 12.50 (at most two decimals, not negative)")]
pub struct AmountError(String);

impl Amount {
    pub fn from_hundredths(hundredths: i64) -> Amount {
        Amount(hundredths)
    }

    pub fn hundredths(self) -> i64 {
        self.0
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    fn from_str(input: &str) -> Result<Amount, AmountError> {
        let err = || AmountError(input.to_owned());
        let trimmed = input.trim();
        let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
        let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
            return Err(err());
        }
        let whole: i64 = whole.parse().map_err(|_| err())?;
        let fraction: i64 = format!("{fraction:0<2}").parse().map_err(|_| err())?;
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(fraction))
            .map(Amount)
            .ok_or_else(err)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let cases: &[(&str, Option<&str>)] = &[
            ("12", Some("12.00")),
            ("12.5", Some("12.50")),
            ("0.05", Some("0.05")),
            (" 3.10 ", Some("3.10")),
            ("1.234", None),
            ("-1", None),
            ("abc", None),
            ("", None),
            (".5", None),
        ];
        for (input, expected) in cases {
            let got = input.parse::<Amount>().ok().map(|a| a.to_string());
            assert_eq!(got.as_deref(), *expected, "input {input:?}");
        }
    }
}
