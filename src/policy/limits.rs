//! Product user limits. Atlassian refuses restores, group adds and invitations when a product is at
//! its user limit (409 `ADMIN-409-3`, 400 `ADMIN-400-32`), and no Atlassian API publishes the limit.
//! Seatwarden knows it two ways: the admin declares it (`spec.userLimits`), and Atlassian's own
//! refusal, which the ledger remembers with how many accounts held the product then. Seats in use
//! are counted from the snapshot, per account (an account in two directories holds one seat).
//!
//! The limit in force is the declared one, lowered to the count Atlassian refused at. A refusal is
//! forgotten ([`LedgerUpdate::UserLimitLifted`]) when a limit above that count is declared after
//! it, or when more accounts hold the product than when it refused (the limit was raised in
//! Atlassian). Freed seats need no forgetting: the room is the limit minus the seats in use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crd::{AtlassianOrganizationSpec, GroupLicenseMapping};
use crate::ledger::{Ledger, LedgerUpdate, UserLimitHit};
use crate::product::Product;
use crate::snapshot::{Account, DirectorySnapshot};

use super::savings::Licensing;

/// One product's seats against its user limit, as the plan saw them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductSeats {
    pub product: Product,
    /// Accounts holding a seat: billed (a live membership) with access to the product there.
    pub licensed: u32,
    /// The limit `spec.userLimits` declares.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared_limit: Option<u32>,
    /// Atlassian's last refusal at the limit, while it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<UserLimitHit>,
}

impl ProductSeats {
    /// The limit in force: the declared one, lowered to the count Atlassian refused at.
    pub fn limit(&self) -> Option<u32> {
        match (self.declared_limit, self.refused.as_ref().map(|r| r.licensed)) {
            (Some(d), Some(r)) => Some(d.min(r)),
            (d, r) => d.or(r),
        }
    }

    /// Seats left under the limit (None: the limit is unknown).
    pub fn room(&self) -> Option<u32> {
        self.limit().map(|l| l.saturating_sub(self.licensed))
    }

    /// For people: `Jira Service Management: 51 of 51 seats in use (limit 51, Atlassian refused at 51 on 2026-11-02)`.
    pub fn describe(&self) -> String {
        let source = match (self.declared_limit, &self.refused) {
            (Some(d), Some(r)) if r.licensed < d => {
                format!("declared {d}, but Atlassian refused at {} on {}", r.licensed, r.at.strftime("%Y-%m-%d"))
            }
            (Some(_), _) => "declared in spec.userLimits".to_owned(),
            (None, Some(r)) => format!(
                "Atlassian refused at {} on {}; no limit is declared in spec.userLimits",
                r.licensed,
                r.at.strftime("%Y-%m-%d")
            ),
            (None, None) => "unknown".to_owned(),
        };
        match self.limit() {
            Some(l) => {
                format!("{}: {} of {l} seats in use (limit {l}: {source})", self.product.display_name(), self.licensed)
            }
            None => format!("{}: {} seats in use, limit unknown", self.product.display_name(), self.licensed),
        }
    }
}

/// Whether `user` holds a seat of `product`: a live membership (active or invited: invitees are
/// billed, suspended users are not) with access to it, listed by Atlassian or granted by a group.
pub(crate) fn holds_seat(licensing: &Licensing, user: &Account, product: Product) -> bool {
    user.memberships.iter().filter(|m| m.is_live()).any(|m| {
        m.product_access.iter().any(|p| p.product == product)
            || m.groups.iter().any(|g| licensing.grants(*g).contains(&product))
    })
}

/// Accounts holding a seat of each of `products`.
pub(crate) fn licensed_counts(
    snapshot: &DirectorySnapshot,
    licensing: &Licensing,
    products: &[Product],
) -> BTreeMap<Product, u32> {
    let mut out: BTreeMap<Product, u32> = products.iter().map(|p| (*p, 0)).collect();
    if products.is_empty() {
        return out;
    }
    for user in &snapshot.accounts {
        for p in products {
            if holds_seat(licensing, user, *p) {
                *out.entry(*p).or_default() += 1;
            }
        }
    }
    out
}

/// The seats of every product with a limit in force (declared, or refused by Atlassian), and the
/// refusals the snapshot and the declarations lift. Products without a limit are not counted (the
/// planner's cost stays where it was for organizations that declare none).
pub(crate) fn product_seats(
    snapshot: &DirectorySnapshot,
    licensing: &Licensing,
    declared: &BTreeMap<Product, u32>,
    ledger: &Ledger,
) -> (BTreeMap<Product, ProductSeats>, Vec<LedgerUpdate>) {
    let mut products: Vec<Product> = declared.keys().chain(ledger.user_limits.keys()).copied().collect();
    products.sort();
    products.dedup();
    let counts = licensed_counts(snapshot, licensing, &products);
    let mut updates = Vec::new();
    let mut out = BTreeMap::new();
    for p in products {
        let licensed = counts.get(&p).copied().unwrap_or(0);
        let declared_limit = declared.get(&p).copied();
        let mut refused = ledger.user_limits.get(&p).cloned();
        if let Some(r) = &refused {
            let lifted = match declared_limit {
                Some(d) if d > r.licensed && Some(d) != r.declared_limit => {
                    Some(format!("a limit of {d} is declared since Atlassian refused at {} seats", r.licensed))
                }
                _ if licensed > r.licensed => Some(format!(
                    "{licensed} accounts hold it now, more than the {} when Atlassian refused: the limit was raised",
                    r.licensed
                )),
                _ => None,
            };
            if let Some(why) = lifted {
                updates.push(LedgerUpdate::UserLimitLifted { product: p, why });
                refused = None;
            }
        }
        out.insert(p, ProductSeats { product: p, licensed, declared_limit, refused });
    }
    (out, updates)
}

/// Accounts holding a seat of each product, as the planner counts them (for the command line).
pub fn licensed_accounts(
    snapshot: &DirectorySnapshot,
    organization: &AtlassianOrganizationSpec,
    mappings: &[GroupLicenseMapping],
) -> BTreeMap<Product, u32> {
    let mappings: Vec<&GroupLicenseMapping> = mappings.iter().collect();
    let licensing = Licensing::new(snapshot, organization, &mappings);
    licensed_counts(snapshot, &licensing, &Product::ALL)
}

/// The products each group of `snapshot` grants (by group index): the mappings' and Atlassian's.
pub fn group_grants(
    snapshot: &DirectorySnapshot,
    organization: &AtlassianOrganizationSpec,
    mappings: &[GroupLicenseMapping],
) -> Vec<Vec<Product>> {
    let mappings: Vec<&GroupLicenseMapping> = mappings.iter().collect();
    Licensing::new(snapshot, organization, &mappings).grants
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixture::prelude::*;

    fn hit(licensed: u32, declared: Option<u32>) -> UserLimitHit {
        UserLimitHit { licensed, declared_limit: declared, at: ago(3), message: "full".into() }
    }

    #[test]
    fn seats_count_accounts_with_a_live_membership_once() {
        let mut suspended = user("sus");
        suspended.status = UserStatus::Suspended;
        let mut invited = user("inv");
        invited.status = UserStatus::InvitedNeverActive;
        let fx = Fx::new(vec![user("a"), user("b"), suspended, invited], vec![]);
        let mappings: Vec<&GroupLicenseMapping> = fx.mappings.iter().collect();
        let licensing = Licensing::new(&fx.snapshot, &fx.org.spec, &mappings);
        let counts = licensed_counts(&fx.snapshot, &licensing, &[Product::JiraSoftware, Product::Confluence]);
        // Everyone is in jira-users; the suspended user holds no seat, the invitee does.
        assert_eq!(counts[&Product::JiraSoftware], 3);
        assert_eq!(counts[&Product::Confluence], 0);
    }

    #[test]
    fn the_limit_is_the_declared_one_lowered_to_atlassians_refusal() {
        let s = |declared, refused| ProductSeats {
            product: Product::JiraSoftware,
            licensed: 48,
            declared_limit: declared,
            refused,
        };
        assert_eq!(s(None, None).room(), None);
        assert_eq!(s(Some(50), None).room(), Some(2));
        assert_eq!(s(Some(50), Some(hit(49, Some(50)))).room(), Some(1));
        assert_eq!(s(None, Some(hit(48, None))).room(), Some(0));
        assert_eq!(s(Some(40), None).room(), Some(0), "over the limit: no room, not an underflow");
        assert!(s(None, Some(hit(48, None))).describe().contains("48 of 48 seats in use"));
    }

    #[test]
    fn a_refusal_is_lifted_by_a_higher_declared_limit_or_more_seats_in_use() {
        let fx = Fx::new(vec![user("a"), user("b"), user("c")], vec![]);
        let mappings: Vec<&GroupLicenseMapping> = fx.mappings.iter().collect();
        let licensing = Licensing::new(&fx.snapshot, &fx.org.spec, &mappings);
        let mut ledger = Ledger::new("org-1");
        let seats = |ledger: &Ledger, declared: &[(Product, u32)]| {
            product_seats(&fx.snapshot, &licensing, &declared.iter().copied().collect(), ledger)
        };
        // Refused at 3: full, and stays full while 3 hold it and nothing higher is declared.
        ledger.record_user_limit(Product::JiraSoftware, hit(3, None));
        let (s, lifted) = seats(&ledger, &[]);
        assert_eq!((s[&Product::JiraSoftware].licensed, s[&Product::JiraSoftware].room()), (3, Some(0)));
        assert!(lifted.is_empty());
        assert_eq!(seats(&ledger, &[(Product::JiraSoftware, 3)]).1, vec![]);
        // A higher declared limit lifts it.
        let (s, lifted) = seats(&ledger, &[(Product::JiraSoftware, 10)]);
        assert_eq!(s[&Product::JiraSoftware].room(), Some(7));
        assert!(matches!(&lifted[..], [LedgerUpdate::UserLimitLifted { product: Product::JiraSoftware, .. }]));
        // A refusal at 2 while 3 hold it now: the limit was raised in Atlassian.
        ledger.record_user_limit(Product::JiraSoftware, hit(2, None));
        let (s, lifted) = seats(&ledger, &[]);
        assert_eq!(s[&Product::JiraSoftware].room(), None);
        assert_eq!(lifted.len(), 1);
        // Freed seats: refused at 5, 3 hold it now, room for 2 (nothing to lift).
        ledger.record_user_limit(Product::JiraSoftware, hit(5, None));
        let (s, lifted) = seats(&ledger, &[]);
        assert_eq!(s[&Product::JiraSoftware].room(), Some(2));
        assert!(lifted.is_empty());
    }
}
