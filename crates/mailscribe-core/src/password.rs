//! The rule for new passwords (OWASP ASVS 4.0, V2.1): at least 12
//! characters once runs of spaces count as one, at most 128, and not a
//! common password.
//!
//! Only new passwords meet this rule; passwords set before it keep working,
//! since sign-in only compares hashes.

use std::collections::HashSet;
use std::sync::OnceLock;

/// The shortest new password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest (ASVS V2.1.2: at least 64 allowed, more than 128 refused).
pub const MAX_PASSWORD_CHARS: usize = 128;

/// Why a new password is refused; the message is safe to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPassword {
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password may have at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error(
        "the password is too common or too easy to guess; choose another, a few unrelated words work well"
    )]
    Common,
    #[error("the password must not be built on the user name")]
    UserName,
}

/// Checks a new password for the user `user_name`.
pub fn check_new_password(password: &str, user_name: &str) -> Result<(), WeakPassword> {
    // ASVS V2.1.1: the minimum counts runs of spaces as one space, so that
    // "abcde" and seven spaces is not twelve characters.
    let mut n_collapsed = 0;
    let mut previous_was_space = false;
    for c in password.chars() {
        let is_space = c == ' ';
        if !(is_space && previous_was_space) {
            n_collapsed += 1;
        }
        previous_was_space = is_space;
    }
    if n_collapsed < MIN_PASSWORD_CHARS {
        return Err(WeakPassword::TooShort);
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(WeakPassword::TooLong);
    }
    let lower = password.to_lowercase();
    let distinct: HashSet<char> = lower.chars().collect();
    if distinct.len() < 5 || is_sequence(&lower) {
        return Err(WeakPassword::Common);
    }
    let base = lower.trim_matches(|c: char| !c.is_alphabetic());
    let user = user_name.trim().to_lowercase();
    if !user.is_empty() && (base == user || lower == user) {
        return Err(WeakPassword::UserName);
    }
    let common = common_passwords();
    if common.contains(lower.as_str())
        || common.contains(base)
        || common.contains(squash(base).as_str())
    {
        return Err(WeakPassword::Common);
    }
    Ok(())
}

/// The base without separators: "pass word", "pass-word" and "password"
/// are one guess for an attacker.
fn squash(base: &str) -> String {
    base.chars().filter(|c| c.is_alphanumeric()).collect()
}

/// "123456789012", "abcdefghijkl", "987654321098": each character one after
/// (or before) the one before it, digits wrapping around.
fn is_sequence(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let step = |a: char, b: char| -> i64 {
        let difference = i64::from(u32::from(b)) - i64::from(u32::from(a));
        if a.is_ascii_digit() && b.is_ascii_digit() {
            difference.rem_euclid(10)
        } else {
            difference
        }
    };
    let steps: Vec<i64> = chars
        .windows(2)
        .map(|pair| step(pair[0], pair[1]))
        .collect();
    steps.iter().all(|s| *s == 1) || steps.iter().all(|s| *s == -1 || *s == 9)
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str) -> Result<(), WeakPassword> {
        check_new_password(password, "sally")
    }

    #[test]
    fn length() {
        assert_eq!(check("short-pw-1"), Err(WeakPassword::TooShort));
        assert_eq!(check("elevenchars"), Err(WeakPassword::TooShort));
        assert_eq!(check(&"x y z w v ".repeat(13)), Err(WeakPassword::TooLong));
        assert_eq!(
            check(&"x y z w v ".repeat(12)),
            Ok(()),
            "120 characters are allowed"
        );
        assert_eq!(
            check("abcde       "),
            Err(WeakPassword::TooShort),
            "runs of spaces count as one"
        );
        assert_eq!(check("tulip  garden"), Ok(()));
        assert_eq!(check("twelve chars"), Ok(()));
        // Characters, not bytes: twelve accented letters pass.
        assert_eq!(check("ääkkösiäöåéü"), Ok(()));
    }

    #[test]
    fn common_passwords_and_their_decorations() {
        for weak in [
            "password1234",
            "Password2024!",
            "P@ssw0rd12345",
            "!!Welcome2026",
            "123qwertyuiop",
            "qwertyuiop123",
            "correct horse battery staple",
            "123456789012",
            "987654321098",
            "abcdefghijklm",
            "aaaaaaaaaaaaaa",
            "abababababab",
            "mailscribe2026",
            "Summer-2026!!",
        ] {
            assert_eq!(check(weak), Err(WeakPassword::Common), "{weak}");
        }
        assert_eq!(check("Sally12345678"), Err(WeakPassword::UserName));
    }

    #[test]
    fn ordinary_good_passwords() {
        for good in [
            "a-long-password-1",
            "correct horse battery",
            "another-password-2",
            "tulip kettle orbit",
            "x8#kP2!qZr9m",
        ] {
            assert_eq!(check(good), Ok(()), "{good}");
        }
    }
}
