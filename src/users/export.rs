//! `users export`: one CSV row per account, columns
//! `accountId,email,name,status,accountType,managed,addedToOrg,lastActive,lastActive.<product>…,groups`
//! (groups by name, `;`-separated). `lastActive` is the latest activity from every source (any
//! product, known to seatwarden or not, in any directory, and API tokens); one `lastActive.<key>`
//! column per product key the organization shows, unknown keys (`loom`, `townsquare`) included,
//! and `lastActive.api-token` when token use was read. RFC 4180 quoting through the csv crate;
//! UTF-8 without a BOM. The same file imports back with no change (see [`super::import`]).

use std::io::Write;

use serde_json::{Value, json};

use crate::product::ProductKey;
use crate::snapshot::{Account, AccountType, ApiTokenActivity, DirectorySnapshot};

/// Separates group names in the `groups` column.
pub const GROUP_SEPARATOR: char = ';';

/// The columns of an export of one snapshot: the fixed ones, then one `lastActive.<product>` per
/// product the snapshot knows (activity data or access), in the canonical product order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportColumns {
    pub products: Vec<ProductKey>,
    /// Token use was read: a `lastActive.api-token` column.
    pub api_tokens: bool,
}

/// The column name of API-token activity.
pub const API_TOKEN_COLUMN: &str = "lastActive.api-token";

impl ExportColumns {
    pub fn of(snapshot: &DirectorySnapshot) -> Self {
        let mut products: Vec<ProductKey> = snapshot.activity_products.iter().copied().collect();
        for u in &snapshot.accounts {
            for p in u.product_access() {
                if !products.contains(&p.product) {
                    products.push(p.product);
                }
            }
        }
        // Modelled products in canonical order, then the others by key.
        products.sort_by(|a, b| match (a, b) {
            (ProductKey::Known(x), ProductKey::Known(y)) => x.cmp(y),
            (ProductKey::Known(_), ProductKey::Other(_)) => std::cmp::Ordering::Less,
            (ProductKey::Other(_), ProductKey::Known(_)) => std::cmp::Ordering::Greater,
            (ProductKey::Other(x), ProductKey::Other(y)) => x.key().cmp(y.key()),
        });
        Self { products, api_tokens: matches!(snapshot.api_tokens, ApiTokenActivity::Read { .. }) }
    }

    pub fn header(&self) -> Vec<String> {
        let mut h: Vec<String> =
            ["accountId", "email", "name", "status", "accountType", "managed", "addedToOrg", "lastActive"]
                .map(str::to_owned)
                .to_vec();
        h.extend(self.products.iter().map(|p| format!("lastActive.{}", p.label())));
        if self.api_tokens {
            h.push(API_TOKEN_COLUMN.to_owned());
        }
        h.push("groups".to_owned());
        h
    }

    /// One user's row, in header order.
    pub fn row(&self, snapshot: &DirectorySnapshot, user: &Account) -> Vec<String> {
        let time = |t: Option<jiff::Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
        let mut r = vec![
            user.account_id.clone(),
            user.email.clone().unwrap_or_default(),
            user.name.clone(),
            user.status().label().to_owned(),
            account_type_label(user.account_type).to_owned(),
            user.managed.to_string(),
            time(user.added_to_org),
            time(user.last_activity()),
        ];
        r.extend(self.products.iter().map(|p| time(last_active_on_key(user, *p))));
        if self.api_tokens {
            r.push(time(user.api_token_last_active));
        }
        r.push(group_names(snapshot, user).join(&GROUP_SEPARATOR.to_string()));
        r
    }

    /// One user as JSON (for `users list --output json`): the same fields, activity per product as an object.
    pub fn json(&self, snapshot: &DirectorySnapshot, user: &Account) -> Value {
        let per_product: serde_json::Map<String, Value> = user
            .product_access()
            .map(|p| p.product)
            .map(|p| (p.label().to_owned(), json!(last_active_on_key(user, p).map(|t| t.to_string()))))
            .collect();
        let directories: Vec<Value> = user
            .memberships
            .iter()
            .map(|m| json!({"directoryId": snapshot.directory_id(m.directory), "status": m.status.label()}))
            .collect();
        json!({
            "accountId": user.account_id,
            "email": user.email,
            "name": user.name,
            "status": user.status().label(),
            "accountType": account_type_label(user.account_type),
            "managed": user.managed,
            "addedToOrg": user.added_to_org.map(|t| t.to_string()),
            "lastActive": user.last_activity().map(|t| t.to_string()),
            "lastActiveByProduct": per_product,
            "apiTokenLastActive": user.api_token_last_active.map(|t| t.to_string()),
            "directories": directories,
            "groups": group_names(snapshot, user),
        })
    }
}

pub fn account_type_label(t: AccountType) -> &'static str {
    match t {
        AccountType::Atlassian => "atlassian",
        AccountType::App => "app",
        AccountType::Customer => "customer",
        AccountType::Unknown => "unknown",
    }
}

/// Last activity on one product key, in any directory.
pub fn last_active_on_key(user: &Account, key: ProductKey) -> Option<jiff::Timestamp> {
    user.product_access().filter(|p| p.product == key).filter_map(|p| p.last_active).max()
}

/// The user's group names, sorted (a stable order, so two exports of one state are identical).
pub fn group_names<'s>(snapshot: &'s DirectorySnapshot, user: &Account) -> Vec<&'s str> {
    let mut names: Vec<&str> =
        user.groups().filter_map(|g| snapshot.groups.get(g as usize)).map(|g| g.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Writes `users` (all of the snapshot's when None) as CSV; `on_row` is called after each row
/// (progress). Returns the number of rows written.
pub fn write_export_csv<W: Write>(
    snapshot: &DirectorySnapshot,
    users: Option<&[&Account]>,
    out: W,
    mut on_row: impl FnMut(),
) -> Result<usize, csv::Error> {
    let columns = ExportColumns::of(snapshot);
    // LF line ends: what editors, diff and git show; `users import` accepts CRLF too.
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(out);
    w.write_record(columns.header())?;
    let mut n = 0;
    let mut write = |u: &Account| -> Result<(), csv::Error> {
        w.write_record(columns.row(snapshot, u))?;
        n += 1;
        on_row();
        Ok(())
    };
    match users {
        Some(list) => list.iter().try_for_each(|u| write(u))?,
        None => snapshot.accounts.iter().try_for_each(&mut write)?,
    }
    w.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::filter::tests::org;

    #[test]
    fn export_has_the_documented_columns_and_quotes_per_rfc_4180() {
        let mut s = org();
        s.accounts[0].name = "Ann \"the admin\", Jr.".into();
        let mut out = Vec::new();
        let rows = write_export_csv(&s, None, &mut out, || {}).unwrap();
        assert_eq!(rows, 4);
        let text = String::from_utf8(out).unwrap();
        let mut lines = text.split('\n');
        assert_eq!(
            lines.next().unwrap(),
            "accountId,email,name,status,accountType,managed,addedToOrg,lastActive,lastActive.jira-software,lastActive.confluence,groups"
        );
        assert_eq!(
            lines.next().unwrap(),
            "acc-a,ann@acme.example,\"Ann \"\"the admin\"\", Jr.\",active,atlassian,true,2025-01-01T00:00:00Z,\
             2026-11-20T00:00:00Z,2026-11-20T00:00:00Z,2026-01-01T00:00:00Z,confluence-users;jira-users"
        );
        assert!(text.contains("acc-c,cat@acme.example,ACC-C,deactivated,atlassian,true,,,,,\n"), "{text}");
        // Parsed back by a reader, the awkward name survives intact.
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let first = r.records().next().unwrap().unwrap();
        assert_eq!(&first[2], "Ann \"the admin\", Jr.");
    }

    #[test]
    fn products_seatwarden_does_not_model_have_their_own_columns_and_count_as_activity() {
        let mut s = org();
        let loom = crate::product::ProductKey::from_api_key("loom");
        let when: jiff::Timestamp = "2026-11-24T00:00:00Z".parse().unwrap();
        s.accounts[1].memberships[0]
            .product_access
            .push(crate::snapshot::ProductActivity { product: loom, last_active: Some(when) });
        let mut out = Vec::new();
        write_export_csv(&s, None, &mut out, || {}).unwrap();
        let text = String::from_utf8(out).unwrap();
        let header = text.lines().next().unwrap();
        assert!(header.ends_with("lastActive.jira-software,lastActive.confluence,lastActive.loom,groups"), "{header}");
        let bob = text.lines().find(|l| l.starts_with("acc-b,")).unwrap();
        assert!(
            bob.contains(",2026-11-24T00:00:00Z,2026-03-01T00:00:00Z,,2026-11-24T00:00:00Z,"),
            "lastActive is Loom's: {bob}"
        );
        let json = ExportColumns::of(&s).json(&s, &s.accounts[1]);
        assert_eq!(json["lastActiveByProduct"]["loom"], "2026-11-24T00:00:00Z");
        assert_eq!(json["lastActive"], "2026-11-24T00:00:00Z");
    }
}
