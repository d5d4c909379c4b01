//! Whether the command line's changes fit the products' user limits. Atlassian refuses a restore,
//! a group add or an invitation that would take a product past its user limit, and no API
//! publishes the limit: the admin declares it (`--user-limit`, `spec.userLimits`), the seats in use
//! are counted from the snapshot (accounts, as the planner counts them), and this module replays
//! the changes on each person's seats to find the rows that would be refused.
//!
//! Rows are taken in file order and whole: a row fits when, after all its changes (removals free
//! seats first), no product it takes more of is past its limit; a row that doesn't fit is left
//! out entirely and frees nothing. Applying the rows that fit in the apply's own order (removals
//! first, then activations, adds, invitations) never passes a limit either: after the removals
//! the count only rises, to the total the file-order replay ended at.

use std::collections::{BTreeMap, BTreeSet};

use crate::product::Product;
use crate::snapshot::{DirectorySnapshot, GroupIdx, UserStatus};
use crate::users::import::{Change, ChangeKind};

/// One product's seats against its limit, with what the changes do to them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProductFit {
    pub product: Product,
    /// None: unknown (not declared).
    pub limit: Option<u32>,
    /// Accounts holding a seat now.
    pub licensed: u32,
    /// Seats the changes would take, net of those they free, if every row were applied.
    pub wanted: i64,
    /// Rows left out because they would pass this product's limit.
    pub refused_rows: usize,
}

/// The changes that fit, those that would be refused (with the product they would pass), and
/// each product the changes touch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitCheck {
    pub fits: Vec<Change>,
    pub refused: Vec<(Change, Product)>,
    pub products: Vec<ProductFit>,
}

/// One directory membership of a person, as far as seats go.
#[derive(Clone, Debug)]
struct Seats {
    directory: u16,
    live: bool,
    deactivated: bool,
    groups: BTreeSet<GroupIdx>,
    /// Products Atlassian lists that none of the groups grants (a direct role).
    direct: BTreeSet<Product>,
}

fn holds(grants: &[Vec<Product>], person: &[Seats], product: Product) -> bool {
    person.iter().filter(|m| m.live).any(|m| {
        m.direct.contains(&product)
            || m.groups.iter().any(|g| grants.get(*g as usize).is_some_and(|p| p.contains(&product)))
    })
}

/// Replays `changes` (in apply order, from one plan) against `limits` and the seats in use.
pub fn check_fit(
    snapshot: &DirectorySnapshot,
    grants: &[Vec<Product>],
    licensed: &BTreeMap<Product, u32>,
    limits: &BTreeMap<Product, u32>,
    changes: &[Change],
) -> FitCheck {
    // Rows in file order (a change's line; changes of `--group` or `--account` share line 0 and
    // keep their order), each person's changes in apply order.
    let mut rows: Vec<((u64, String), Vec<&Change>)> = Vec::new();
    for c in changes {
        let key = (c.line, c.account_id.clone().or_else(|| c.email.clone()).unwrap_or_default());
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, list)) => list.push(c),
            None => rows.push((key, vec![c])),
        }
    }
    rows.sort_by_key(|((line, _), _)| *line);

    let mut people: BTreeMap<String, Vec<Seats>> = BTreeMap::new();
    let mut counts: BTreeMap<Product, i64> = licensed.iter().map(|(p, n)| (*p, i64::from(*n))).collect();
    let mut wanted: BTreeMap<Product, i64> = BTreeMap::new();
    let mut refused_rows: BTreeMap<Product, usize> = BTreeMap::new();
    let mut out = FitCheck::default();
    for ((_, person), row) in rows {
        let before = people.get(&person).cloned().unwrap_or_else(|| seats_of(snapshot, grants, &person));
        let mut after = before.clone();
        for c in &row {
            replay(snapshot, &mut after, c);
        }
        let mut delta: BTreeMap<Product, i64> = BTreeMap::new();
        for p in Product::ALL {
            let d = i64::from(holds(grants, &after, p)) - i64::from(holds(grants, &before, p));
            if d != 0 {
                delta.insert(p, d);
                *wanted.entry(p).or_default() += d;
            }
        }
        let over = delta.iter().find(|(p, d)| {
            **d > 0 && limits.get(p).is_some_and(|l| counts.get(p).copied().unwrap_or(0) + **d > i64::from(*l))
        });
        match over {
            Some((p, _)) => {
                *refused_rows.entry(*p).or_default() += 1;
                out.refused.extend(row.into_iter().map(|c| (c.clone(), *p)));
            }
            None => {
                for (p, d) in delta {
                    *counts.entry(p).or_default() += d;
                }
                people.insert(person, after);
                out.fits.extend(row.into_iter().cloned());
            }
        }
    }
    // The apply's own order, as the plan had it.
    out.fits.sort_by_key(|c| changes.iter().position(|x| x == c));
    for (p, w) in wanted {
        out.products.push(ProductFit {
            product: p,
            limit: limits.get(&p).copied(),
            licensed: licensed.get(&p).copied().unwrap_or(0),
            wanted: w,
            refused_rows: refused_rows.get(&p).copied().unwrap_or(0),
        });
    }
    out
}

/// A person's seats as the snapshot has them (none for someone new: an invitee).
fn seats_of(snapshot: &DirectorySnapshot, grants: &[Vec<Product>], person: &str) -> Vec<Seats> {
    let Some(account) = snapshot.account(person) else { return vec![] };
    account
        .memberships
        .iter()
        .map(|m| {
            let granted = |p: Product| m.groups.iter().any(|g| grants.get(*g as usize).is_some_and(|x| x.contains(&p)));
            Seats {
                directory: m.directory,
                live: m.is_live(),
                deactivated: m.status == UserStatus::Deactivated,
                groups: m.groups.iter().copied().collect(),
                direct: m.product_access.iter().filter_map(|p| p.product.known()).filter(|p| !granted(*p)).collect(),
            }
        })
        .collect()
}

fn replay(snapshot: &DirectorySnapshot, person: &mut Vec<Seats>, change: &Change) {
    let dir = snapshot.directory_index(&change.directory_id).unwrap_or(0);
    let membership = |person: &mut Vec<Seats>, d: u16| -> usize {
        match person.iter().position(|m| m.directory == d) {
            Some(i) => i,
            None => {
                person.push(Seats {
                    directory: d,
                    live: true,
                    deactivated: false,
                    groups: BTreeSet::new(),
                    direct: BTreeSet::new(),
                });
                person.len() - 1
            }
        }
    };
    let group = |id: &str| snapshot.group_by_id(id).map(|(i, g)| (i, g.directory));
    match &change.kind {
        ChangeKind::RemoveFromGroup { group_id, .. } => {
            if let Some((g, d)) = group(group_id)
                && let Some(m) = person.iter_mut().find(|m| m.directory == d)
            {
                m.groups.remove(&g);
            }
        }
        ChangeKind::AddToGroup { group_id, .. } => {
            if let Some((g, d)) = group(group_id) {
                let i = membership(person, d);
                person[i].groups.insert(g);
            }
        }
        ChangeKind::Restore => {
            let i = membership(person, dir);
            person[i].live = true;
        }
        ChangeKind::Enable => {
            for m in person.iter_mut().filter(|m| m.deactivated) {
                m.live = true;
                m.deactivated = false;
            }
        }
        ChangeKind::Invite { group_ids, .. } => {
            let i = membership(person, dir);
            person[i].live = true;
            for id in group_ids {
                if let Some((g, _)) = group(id) {
                    person[i].groups.insert(g);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::filter::tests::org;
    use crate::users::import::{ImportOptions, parse_import_csv, plan_import};

    /// jira-users grants Jira, confluence-users Confluence (as mappings would say).
    fn grants(s: &DirectorySnapshot) -> Vec<Vec<Product>> {
        s.groups
            .iter()
            .map(|g| match g.name.as_str() {
                "jira-users" => vec![Product::JiraSoftware],
                "confluence-users" => vec![Product::Confluence],
                _ => vec![],
            })
            .collect()
    }

    fn check(csv: &str, limits: &[(Product, u32)]) -> (FitCheck, DirectorySnapshot) {
        let s = org();
        let plan = plan_import(&parse_import_csv(csv.as_bytes()).unwrap(), &s, ImportOptions::default());
        assert_eq!(plan.errors, vec![]);
        let g = grants(&s);
        let licensed = count(&s, &g);
        (check_fit(&s, &g, &licensed, &limits.iter().copied().collect(), &plan.changes), s)
    }

    fn count(s: &DirectorySnapshot, g: &[Vec<Product>]) -> BTreeMap<Product, u32> {
        let mut out = BTreeMap::new();
        for a in &s.accounts {
            let person = seats_of(s, g, &a.account_id);
            for p in Product::ALL {
                if holds(g, &person, p) {
                    *out.entry(p).or_default() += 1;
                }
            }
        }
        out
    }

    #[test]
    fn rows_past_a_declared_limit_are_refused_in_file_order_and_whole() {
        let s = org();
        let g = grants(&s);
        let in_use = count(&s, &g);
        let confluence = in_use.get(&Product::Confluence).copied().unwrap_or(0);
        // bob (suspended) restored into his groups, cat enabled, a newcomer invited into Confluence.
        let csv = "email,groups,status\n\
                   bob@contractor.example,jira-users;confluence-users,active\n\
                   new.hire@acme.example,confluence-users,\n\
                   other.hire@acme.example,confluence-users,\n";
        let (fit, _) = check(csv, &[(Product::Confluence, confluence + 1)]);
        let lines = |v: &[Change]| v.iter().map(|c| c.line).collect::<BTreeSet<_>>();
        // Line 2 takes the one Confluence seat left; lines 3 and 4 would pass the limit.
        assert_eq!(lines(&fit.fits), BTreeSet::from([2]));
        assert_eq!(
            fit.refused.iter().map(|(c, p)| (c.line, *p)).collect::<Vec<_>>(),
            [(3, Product::Confluence), (4, Product::Confluence)]
        );
        let c = fit.products.iter().find(|p| p.product == Product::Confluence).unwrap();
        assert_eq!((c.limit, c.licensed, c.wanted, c.refused_rows), (Some(confluence + 1), confluence, 3, 2));
        // Without a limit nothing is refused, and the product still shows what the file adds.
        let (fit, _) = check(csv, &[]);
        assert!(fit.refused.is_empty());
        assert_eq!(fit.fits.len(), 4, "{:?}", fit.fits);
        assert_eq!(fit.products.iter().find(|p| p.product == Product::Confluence).unwrap().limit, None);
    }

    #[test]
    fn removals_earlier_in_the_file_make_room_and_a_refused_row_frees_nothing() {
        let s = org();
        let g = grants(&s);
        let confluence = count(&s, &g).get(&Product::Confluence).copied().unwrap_or(0);
        assert!(confluence >= 1, "someone holds Confluence in the fixture");
        // ann leaves confluence-users (a seat freed), then two newcomers want one: one fits.
        let csv = "email,groups\n\
                   ann@acme.example,jira-users\n\
                   new.hire@acme.example,confluence-users\n\
                   other.hire@acme.example,confluence-users\n";
        let (fit, _) = check(csv, &[(Product::Confluence, confluence)]);
        assert_eq!(fit.fits.iter().map(|c| c.line).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(fit.refused.iter().map(|(c, _)| c.line).collect::<Vec<_>>(), [4]);
    }
}
