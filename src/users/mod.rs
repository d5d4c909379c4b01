//! User administration from the command line (`seatwarden users`, issue 8): listing with filters,
//! CSV export, CSV import and bulk activation.
//!
//! Pure where it can be: [`filter`] selects users, [`export`] renders a snapshot as CSV,
//! [`import`] parses and validates a CSV and plans its diff against a snapshot, [`activate`] plans
//! bulk activation. Only [`apply`] talks to Atlassian and the audit trail.

pub mod activate;
pub mod apply;
pub mod export;
pub mod filter;
pub mod guard;
pub mod import;
pub mod limits;

use crate::snapshot::UserStatus;

pub use activate::{ActivationPlan, ActivationTarget, plan_activation};
pub use apply::{AppliedChange, apply_changes, audit_record};
pub use export::{ExportColumns, write_export_csv};
pub use filter::{ActivityFilter, UserFilter};
pub use guard::{Guard, Refused};
pub use import::{Change, ChangeKind, ImportFile, ImportOptions, ImportPlan, RowError, parse_import_csv, plan_import};

/// Parses a status as people write it: `active`, `suspended`, `deactivated`, `invited-never-active`
/// (any case; `_` or space for `-`).
pub fn parse_status(text: &str) -> Option<UserStatus> {
    let norm: String =
        text.trim().chars().map(|c| if c == '_' || c == ' ' { '-' } else { c.to_ascii_lowercase() }).collect();
    Some(match norm.as_str() {
        "active" => UserStatus::Active,
        "suspended" => UserStatus::Suspended,
        "deactivated" => UserStatus::Deactivated,
        "invited-never-active" | "invitedneveractive" | "never-active" => UserStatus::InvitedNeverActive,
        _ => return None,
    })
}

/// Whether `text` is a plausible email address: one `@`, a non-empty local part, a dotted domain,
/// no spaces or separators a CSV or an address list would split on.
pub fn is_valid_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else { return false };
    if local.is_empty() || local.len() > 64 || domain.len() > 255 || domain.contains('@') {
        return false;
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control() || ",;<>()[]\\\"".contains(c)) {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_in_every_spelling_people_use() {
        assert_eq!(parse_status("Active"), Some(UserStatus::Active));
        assert_eq!(parse_status(" SUSPENDED "), Some(UserStatus::Suspended));
        assert_eq!(parse_status("invited_never_active"), Some(UserStatus::InvitedNeverActive));
        assert_eq!(parse_status("invited-never-active"), Some(UserStatus::InvitedNeverActive));
        assert_eq!(parse_status("enabled"), None);
        for s in [UserStatus::Active, UserStatus::Suspended, UserStatus::Deactivated, UserStatus::InvitedNeverActive] {
            assert_eq!(parse_status(s.label()), Some(s));
        }
    }

    #[test]
    fn emails_are_checked_for_shape() {
        for ok in ["a@b.io", "first.last+tag@sub.example.com", "x_y@acme-corp.example"] {
            assert!(is_valid_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.io", "a@b", "a b@c.io", "a@@b.io", "a@b..io", "a;b@c.io", ".a@b.io", "a@-b.io",
            "a@b.io\n",
        ] {
            assert!(!is_valid_email(bad), "{bad:?}");
        }
    }
}
