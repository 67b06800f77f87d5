//! The password policy (SPEC 5.1): long enough, mixed character classes,
//! and not built from the account's email. Both identity adapters get
//! passwords only after this check, so the rules and their messages are one.

/// Fewer characters than this are refused.
pub const MIN_LENGTH: usize = 12;
/// Argon2 hashes any length, but a bound keeps hashing cost bounded.
pub const MAX_LENGTH: usize = 256;

/// What is wrong with a password; the message says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("must be at least {MIN_LENGTH} characters long")]
    TooShort,
    #[error("must be at most {MAX_LENGTH} characters long")]
    TooLong,
    #[error("must contain a lower-case letter, an upper-case letter and a digit (missing: {0})")]
    MissingClasses(String),
    #[error("must not contain the email address or its name part")]
    ContainsEmail,
}

/// Checks `password` for the account `email` (already lower-case).
pub fn check(password: &str, email: &str) -> Result<(), PasswordProblem> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordProblem::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordProblem::TooLong);
    }
    let missing: Vec<&str> = [
        (password.chars().any(char::is_lowercase), "lower-case letter"),
        (password.chars().any(char::is_uppercase), "upper-case letter"),
        (password.chars().any(|c| c.is_ascii_digit()), "digit"),
    ]
    .into_iter()
    .filter_map(|(present, name)| (!present).then_some(name))
    .collect();
    if !missing.is_empty() {
        return Err(PasswordProblem::MissingClasses(missing.join(", ")));
    }
    let lower = password.to_lowercase();
    let local = email.split('@').next().unwrap_or(email);
    // A name part of one or two letters would forbid half the alphabet.
    if lower.contains(email) || (local.chars().count() >= 3 && lower.contains(local)) {
        return Err(PasswordProblem::ContainsEmail);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_passwords_pass_and_each_rule_says_what_failed() {
        assert_eq!(check("Correct-Horse-9", "ann@example.com"), Ok(()));
        assert_eq!(check("Short1a", "ann@example.com"), Err(PasswordProblem::TooShort));
        assert_eq!(check(&"Aa1".repeat(90), "ann@example.com"), Err(PasswordProblem::TooLong));
        assert_eq!(
            check("alllowercase99", "ann@example.com"),
            Err(PasswordProblem::MissingClasses("upper-case letter".into()))
        );
        assert_eq!(check("NoDigitsAtAllHere", "ann@example.com"), Err(PasswordProblem::MissingClasses("digit".into())));
        assert_eq!(check("Annabelle-2024x", "annabelle@example.com"), Err(PasswordProblem::ContainsEmail));
        assert_eq!(check("X1ann@example.comY", "ann@example.com"), Err(PasswordProblem::ContainsEmail));
        // Multibyte characters count as characters, not bytes.
        assert_eq!(check("Äöü1äöüäöüä", "ann@example.com"), Err(PasswordProblem::TooShort));
    }
}
