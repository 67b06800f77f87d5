//! The mails identity sends (verification, password reset, email change,
//! invitation), each as plain text and HTML. User-supplied values (tenant
//! and inviter names) are escaped in the HTML part.

use crate::mail::Mail;

/// Which code a mail carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMail<'a> {
    VerifyEmail,
    ResetPassword,
    ChangeEmail,
    Invitation { tenant_name: &'a str, invited_by: &'a str },
}

/// The mail that carries `code` to `to`, valid for `valid_for_hours`.
pub fn render(kind: CodeMail<'_>, to: &str, code: &str, valid_for_hours: i64) -> Mail {
    let validity = if valid_for_hours == 1 { "1 hour".to_owned() } else { format!("{valid_for_hours} hours") };
    let (subject, lead, action) = match kind {
        CodeMail::VerifyEmail => (
            "Verify your email for Parley".to_owned(),
            "Welcome to Parley. Confirm that this address is yours with the code below.".to_owned(),
            "Enter it where you signed up (POST /v1/auth/verify-email).",
        ),
        CodeMail::ResetPassword => (
            "Reset your Parley password".to_owned(),
            "Someone asked to reset the password of the Parley account with this address.".to_owned(),
            "Use it to choose a new password (POST /v1/auth/reset-password). If it was not you, ignore this mail.",
        ),
        CodeMail::ChangeEmail => (
            "Confirm your new email for Parley".to_owned(),
            "Your Parley account asked to use this address from now on.".to_owned(),
            "Enter it to confirm the change (POST /v1/auth/change-email with the code).",
        ),
        CodeMail::Invitation { tenant_name, invited_by } => (
            format!("You are invited to {} on Parley", one_line(tenant_name)),
            format!("{} invited you to join {} on Parley.", one_line(invited_by), one_line(tenant_name)),
            "Accept with this code and a password of your choice (POST /v1/members/accept).",
        ),
    };
    let text = format!("{lead}\n\nYour code: {code}\n\n{action}\nThe code works once and expires in {validity}.\n");
    let html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<p>{}</p>\n\
         <p style=\"font-size:24px;letter-spacing:4px\"><strong>{}</strong></p>\n<p>{}<br>\
         The code works once and expires in {}.</p>\n</body></html>\n",
        escape(&lead),
        escape(code),
        escape(action),
        validity
    );
    Mail { to: to.to_owned(), subject, text, html: Some(html) }
}

/// The code in a mail rendered by [`render`] (for tests and the local walk-through).
pub fn code_in(text: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix("Your code: ")).map(|c| c.trim().to_owned())
}

/// Names go into a subject line: no line breaks.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mail_has_text_and_html_with_the_code() {
        for kind in [
            CodeMail::VerifyEmail,
            CodeMail::ResetPassword,
            CodeMail::ChangeEmail,
            CodeMail::Invitation { tenant_name: "Acme", invited_by: "o@acme.test" },
        ] {
            let mail = render(kind, "a@x.test", "123456", 24);
            assert_eq!(code_in(&mail.text).as_deref(), Some("123456"), "{kind:?}");
            assert!(mail.html.as_deref().unwrap().contains("123456"));
            assert!(crate::mail::validate(&mail).is_ok());
        }
    }

    #[test]
    fn names_cannot_inject_markup_or_headers() {
        let mail = render(
            CodeMail::Invitation { tenant_name: "<b>Evil</b>\r\nBcc: x@y", invited_by: "o@acme.test" },
            "a@x.test",
            "1",
            1,
        );
        assert!(!mail.subject.contains('\n') && !mail.subject.contains('\r'));
        assert!(mail.html.unwrap().contains("&lt;b&gt;Evil"));
        assert!(mail.text.contains("expires in 1 hour."));
    }
}
