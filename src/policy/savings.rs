//! Seats and money. Follows Atlassian's billing rules (shared/reference/market-anchors.md §(d)):
//! suspended users are not billed, invitees are; a group removal frees a seat only when no other
//! group of the user grants the same product; monthly plans (maximum quantity billing) give no
//! credit mid-cycle, so savings show from the next cycle; annual plans at renewal.

use std::collections::{BTreeMap, HashMap};

use jiff::{Timestamp, ToSpan, civil::Date, tz::TimeZone};

use crate::crd::{AtlassianOrganizationSpec, BillingCycle, GroupLicenseMapping};
use crate::product::Product;
use crate::snapshot::{Account, DirectorySnapshot, GroupIdx, Membership};

use super::types::{PlannedAction, Savings, Totals};

/// The organization's GroupLicenseMappings and prices, resolved against the snapshot.
#[derive(Debug, Default)]
pub(crate) struct Licensing {
    /// Licensed groups per product (the groups a per-product rule removes).
    pub licensed: BTreeMap<Product, Vec<GroupIdx>>,
    /// Products each group grants, by group index: from the mappings (primary), completed by the
    /// snapshot's grants. (Indexed, not hashed: asked of every group of every targeted account.)
    pub grants: Vec<Vec<Product>>,
    /// Seat price overrides by group (from the mapping listing the group).
    pub group_price: HashMap<GroupIdx, f64>,
    /// Seat prices from the organization's billing.
    pub base_price: BTreeMap<Product, f64>,
    pub currency: Option<String>,
    /// Mapping references that resolved to no group (not found, unknown directory, ambiguous):
    /// (mapping, its product, why).
    pub problems: Vec<(String, Product, super::mapping::MappingProblem)>,
}

impl Licensing {
    pub fn new(
        snapshot: &DirectorySnapshot,
        org: &AtlassianOrganizationSpec,
        mappings: &[&GroupLicenseMapping],
    ) -> Self {
        let mut out = Licensing { grants: vec![Vec::new(); snapshot.groups.len()], ..Licensing::default() };
        if let Some(billing) = &org.billing {
            out.currency = Some(billing.currency.clone());
            for sp in &billing.seat_prices {
                out.base_price.insert(sp.product, sp.monthly_price);
            }
        }
        for m in mappings {
            let name = m.metadata.name.clone().unwrap_or_default();
            // One resolution for the plan, the mapping's status and the metrics: an ambiguous
            // reference resolves to no group and is reported, never guessed.
            let resolved = super::mapping::resolve_mapping(snapshot, &m.spec);
            out.problems.extend(resolved.problems.into_iter().map(|p| (name.clone(), m.spec.product, p)));
            let groups = out.licensed.entry(m.spec.product).or_default();
            for i in resolved.groups {
                if !groups.contains(&i) {
                    groups.push(i);
                }
                let g = &mut out.grants[i as usize];
                if !g.contains(&m.spec.product) {
                    g.push(m.spec.product);
                }
                if let Some(price) = m.spec.seat_price {
                    out.group_price.entry(i).or_insert(price);
                }
            }
        }
        // The snapshot's own grants (from Atlassian's role data) complete the picture: a group the
        // mappings don't list may still grant a product, and then keeps the user's seat.
        for (i, g) in snapshot.groups.iter().enumerate() {
            for product in &g.grants {
                let list = &mut out.grants[i];
                if !list.contains(product) {
                    list.push(*product);
                }
            }
        }
        out
    }

    pub fn licensed_groups_of(&self, product: Product) -> &[GroupIdx] {
        self.licensed.get(&product).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn grants(&self, group: GroupIdx) -> &[Product] {
        self.grants.get(group as usize).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Monthly price of one seat of `product` for this user: the override of a mapping group the
    /// user is in (or `via`), else the organization's price.
    pub fn price(&self, product: Product, user: &Account, via: Option<GroupIdx>) -> Option<f64> {
        via.into_iter()
            .chain(user.groups())
            .filter(|g| self.grants(*g).contains(&product))
            .find_map(|g| self.group_price.get(&g).copied())
            .or_else(|| self.base_price.get(&product).copied())
    }
}

/// Whether the account is billed at all: in some directory where it is active or invited
/// (suspended and deactivated users are not billed; invitees are).
pub(crate) fn is_billed(user: &Account) -> bool {
    user.memberships.iter().any(Membership::is_live)
}

/// Seats taking the account out of the given directories frees: one per product the account holds
/// in a live membership there and in no live membership it keeps (a seat is per account and product,
/// whatever the number of directories).
pub(crate) fn seats_for_leaving(user: &Account, leaving: impl Fn(&Membership) -> bool) -> BTreeMap<Product, i32> {
    let mut out = BTreeMap::new();
    for m in user.memberships.iter().filter(|m| m.is_live() && leaving(m)) {
        for p in m.product_access.iter().filter_map(|p| p.product.known()) {
            let kept = user
                .memberships
                .iter()
                .any(|k| k.is_live() && !leaving(k) && k.product_access.iter().any(|x| x.product == p));
            if !kept {
                out.insert(p, 1);
            }
        }
    }
    out
}

/// Seats an account-wide action (deactivate, or suspend/remove in every directory) frees: every
/// product of a billed account, once.
pub(crate) fn seats_for_account_action(user: &Account) -> BTreeMap<Product, i32> {
    seats_for_leaving(user, |_| true)
}

/// Seats freed by taking `user` out of `removing`: a product is freed only when none of the
/// groups the user keeps grants it. Returns, per product, the index in `removing` of the last
/// group granting it (where the seat is booked).
pub(crate) fn seats_for_group_removals(
    licensing: &Licensing,
    user: &Account,
    removing: &[GroupIdx],
) -> BTreeMap<Product, usize> {
    let mut out = BTreeMap::new();
    if !is_billed(user) {
        return out;
    }
    for (pos, g) in removing.iter().enumerate() {
        for product in licensing.grants(*g) {
            let kept = user.groups().any(|k| !removing.contains(&k) && licensing.grants(k).contains(product));
            if !kept {
                out.insert(*product, pos);
            }
        }
    }
    out
}

/// Adds an action's seats and money into `totals`.
pub(crate) fn add_to_totals(totals: &mut Totals, action: &PlannedAction, prices: impl Fn(Product) -> Option<f64>) {
    for (product, n) in &action.seats {
        let price = prices(*product);
        if *n > 0 {
            *totals.seats_freed.entry(*product).or_default() += *n as u32;
        } else if *n < 0 {
            *totals.seats_added.entry(*product).or_default() += n.unsigned_abs();
        }
        match price {
            Some(p) => {
                let amount = p * f64::from(*n);
                *totals.savings.by_product.entry(*product).or_default() += amount;
                totals.savings.projected_monthly += amount;
            }
            None if *n > 0 && !totals.savings.unpriced_products.contains(product) => {
                totals.savings.unpriced_products.push(*product);
                totals.savings.unpriced_products.sort();
            }
            None => {}
        }
    }
}

/// When a saving made at `now` shows on the bill.
pub(crate) fn realized_from(org: &AtlassianOrganizationSpec, now: Timestamp) -> (Option<Date>, String) {
    let Some(billing) = &org.billing else {
        return (None, "no billing section in the organization: savings are not priced".to_owned());
    };
    let today = now.to_zoned(TimeZone::UTC).date();
    let given = billing.renewal_date.as_deref().map(|s| (s, s.parse::<Date>()));
    match (billing.cycle, given) {
        (_, Some((raw, Err(_)))) => (None, format!("renewalDate {raw:?} is not a date (YYYY-MM-DD)")),
        (BillingCycle::Monthly, Some((_, Ok(mut date)))) => {
            while date <= today {
                date = date.saturating_add(1.month());
            }
            (Some(date), format!("monthly plan: from the next cycle, {date} (no credit mid-cycle)"))
        }
        (BillingCycle::Monthly, None) => {
            let date = today.first_of_month().saturating_add(1.month());
            (Some(date), format!("monthly plan: from the next cycle, assumed {date} (no renewalDate given)"))
        }
        (BillingCycle::Annual, Some((_, Ok(mut date)))) => {
            while date <= today {
                date = date.saturating_add(1.year());
            }
            (Some(date), format!("annual plan: at renewal, {date}"))
        }
        (BillingCycle::Annual, None) => {
            (None, "annual plan: at renewal (no renewalDate given, so the date is unknown)".to_owned())
        }
    }
}

/// Fills the savings header (currency, realization date) of a totals block.
pub(crate) fn finish_savings(savings: &mut Savings, currency: Option<&str>, realized: &(Option<Date>, String)) {
    savings.currency = currency.map(str::to_owned);
    savings.realized_from = realized.0;
    savings.realized_note = realized.1.clone();
    // Cents, so reports and comparisons don't show float noise.
    savings.projected_monthly = (savings.projected_monthly * 100.0).round() / 100.0;
    for v in savings.by_product.values_mut() {
        *v = (*v * 100.0).round() / 100.0;
    }
}

/// Whole plans exercising what this module decides.
#[cfg(test)]
mod tests {
    use crate::policy::fixture::prelude::*;

    #[test]
    fn savings_use_billing_prices_mapping_overrides_and_the_next_cycle() {
        let mut both = idle("both", 200);
        both.product_access.push(ProductActivity { product: Product::Confluence.into(), last_active: Some(ago(200)) });
        both.groups.push(CONFLUENCE_USERS);
        let mut suspended = idle("suspended", 200);
        suspended.status = UserStatus::Suspended;
        let plan = Fx::new(vec![both, suspended, idle("jira-only", 200), user("bob")], vec![suspend_idle()]).plan();
        let t = &plan.totals;
        // The suspended user isn't billed and isn't suspended again.
        assert_eq!(t.seats_freed, BTreeMap::from([(Product::JiraSoftware, 2), (Product::Confluence, 1)]));
        // Jira 2 × 8.00 (billing) + Confluence 1 × 5.00 (mapping override of confluence-users).
        assert_eq!(t.savings.projected_monthly, 21.0);
        assert_eq!(t.savings.by_product.get(&Product::Confluence), Some(&5.0));
        assert_eq!(t.savings.currency.as_deref(), Some("USD"));
        assert_eq!(t.savings.realized_from, Some("2026-12-10".parse().unwrap()));
    }

    #[test]
    fn annual_plans_realize_at_renewal_and_missing_prices_are_reported() {
        let mut fx = Fx::new(vec![idle("alice", 200), user("bob")], vec![suspend_idle()]);
        let billing = fx.org.spec.billing.as_mut().unwrap();
        billing.cycle = BillingCycle::Annual;
        billing.renewal_date = Some("2025-03-01".into());
        billing.seat_prices.clear();
        let plan = fx.plan();
        assert_eq!(plan.totals.savings.realized_from, Some("2027-03-01".parse().unwrap()));
        assert_eq!(plan.totals.savings.unpriced_products, vec![Product::JiraSoftware]);
        assert_eq!(plan.totals.savings.projected_monthly, 0.0);
    }

    #[test]
    fn a_group_the_snapshot_says_grants_the_product_keeps_the_seat() {
        let mut alice = idle("alice", 94);
        alice.groups = vec![JIRA_USERS, VIPS];
        let mut fx = Fx::new(vec![alice, user("bob")], vec![jira_idle()]);
        fx.snapshot.groups[VIPS as usize].grants = vec![Product::JiraSoftware];
        // By default such a removal is reported instead (see semantics_tests); the option removes.
        fx.policies[0].spec.remove_when_no_seat_freed = true;
        let plan = fx.plan();
        // vips isn't a mapped licensed group: it's not removed, and it keeps Alice's Jira seat.
        assert_eq!(acts(&plan, "jira"), vec![pair("alice", "remove-group:g-jira")]);
        let a = &plan.policy("jira").unwrap().actions[0];
        assert!(a.seats.is_empty());
        assert!(a.reason.ends_with("(another group still grants the product: no seat freed)"), "{}", a.reason);
    }
}
