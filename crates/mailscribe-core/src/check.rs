//! The result of "check setup" (PRODUCT.md section 6): one line per check,
//! each with a hint that says what to fix. The worker produces the lines;
//! the CLI prints them and the web app shows them, so both say the same.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Pass,
    Fail,
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "PASS",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "SKIP",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub status: CheckStatus,
    /// A stable name, e.g. `server_reachable`.
    pub check: &'static str,
    pub hint: String,
}

impl CheckLine {
    pub fn pass(check: &'static str, hint: impl Into<String>) -> CheckLine {
        CheckLine {
            status: CheckStatus::Pass,
            check,
            hint: hint.into(),
        }
    }
    pub fn fail(check: &'static str, hint: impl Into<String>) -> CheckLine {
        CheckLine {
            status: CheckStatus::Fail,
            check,
            hint: hint.into(),
        }
    }
    pub fn skip(check: &'static str, hint: impl Into<String>) -> CheckLine {
        CheckLine {
            status: CheckStatus::Skip,
            check,
            hint: hint.into(),
        }
    }

    pub fn failed(&self) -> bool {
        self.status == CheckStatus::Fail
    }
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.status.as_str(), self.check, self.hint)
    }
}

/// True when no line failed: logging may be enabled.
pub fn all_passed(lines: &[CheckLine]) -> bool {
    !lines.iter().any(CheckLine::failed)
}
