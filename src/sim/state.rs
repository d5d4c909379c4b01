//! The simulated organization and every write it accepts, with the rules the real service applies:
//! suspension stops billing and keeps groups; removing a membership removes the access that group
//! gave (unless another group grants it); deactivation only for managed accounts; IdP-synced groups
//! refuse changes; a product at its license limit refuses adds.
//!
//! Product access is never stored: it is derived from group memberships (a group grants
//! `atlassian/user` on product instances), so it cannot drift from the groups.

use std::collections::HashMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::product::Product;

/// Index of a product instance in [`SimState::products`].
pub type InstanceIdx = u16;
/// Index of a group in [`SimState::groups`].
pub type SimGroupIdx = u32;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SimState {
    pub org_id: String,
    pub org_name: String,
    pub directories: Vec<SimDirectory>,
    pub sites: Vec<SimSite>,
    pub products: Vec<ProductInstance>,
    /// Email domains the organization verified and claimed: accounts there are managed.
    pub claimed_domains: Vec<String>,
    pub groups: Vec<SimGroup>,
    /// In creation order; a user is never moved, so cursors (positions) stay valid across writes.
    pub users: Vec<SimUser>,
    /// The account that owns the org API key (an org admin).
    pub api_key_owner: Option<String>,
    /// User API tokens of managed accounts (API Access API), in creation order.
    #[serde(default)]
    pub api_tokens: Vec<SimApiToken>,
    /// Every write, applied or refused.
    pub events: Vec<SimEvent>,
    /// Account id -> its first directory entry in `users`.
    #[serde(skip)]
    pub(crate) index: HashMap<String, u32>,
    /// Per entry of `users`: the next entry of the same account (`u32::MAX`: none).
    #[serde(skip)]
    pub(crate) next_entry: Vec<u32>,
}

/// A user API token (id.atlassian.com) of a managed account, as the API Access API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimApiToken {
    pub id: String,
    pub label: String,
    pub account_id: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// When it last authenticated a request; `None` when never used.
    pub last_active_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDirectory {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimSite {
    /// The cloud id.
    pub id: String,
    /// `acme` for `acme.atlassian.net`.
    pub name: String,
}

/// A product as the simulator serves it: one seatwarden models, or one it does not (Loom, Atlas
/// as `townsquare`, Rovo, Jira Align, ...), which the APIs report under its own key all the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimProduct {
    Known(Product),
    /// `key` is what both API versions send; `name` is the display name.
    Unmodelled {
        key: String,
        name: String,
    },
}

impl SimProduct {
    pub fn v2_key(&self) -> &str {
        match self {
            SimProduct::Known(p) => p.v2_key(),
            SimProduct::Unmodelled { key, .. } => key,
        }
    }

    pub fn v1_key(&self) -> &str {
        match self {
            SimProduct::Known(p) => p.v1_key(),
            SimProduct::Unmodelled { key, .. } => key,
        }
    }

    pub fn display_name(&self) -> &str {
        match self {
            SimProduct::Known(p) => p.display_name(),
            SimProduct::Unmodelled { name, .. } => name,
        }
    }

    pub fn known(&self) -> Option<Product> {
        match self {
            SimProduct::Known(p) => Some(*p),
            SimProduct::Unmodelled { .. } => None,
        }
    }
}

impl PartialEq<Product> for SimProduct {
    fn eq(&self, other: &Product) -> bool {
        self.known() == Some(*other)
    }
}

impl From<Product> for SimProduct {
    fn from(p: Product) -> Self {
        SimProduct::Known(p)
    }
}

/// One product on one site (or the Bitbucket workspace), with its license limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductInstance {
    pub product: SimProduct,
    /// The product instance id the v2 API reports in `productAccess[].id`.
    pub id: String,
    /// Index in [`SimState::sites`].
    pub site: u16,
    /// Seats licensed: adds that would go past it are refused (409 `ADMIN-409-3`).
    pub license_limit: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Index in [`SimState::directories`].
    pub directory: u16,
    /// Synced from an identity provider: memberships can only change there.
    pub idp_synced: bool,
    /// Atlassian lets no admin change this group through the API though no identity provider syncs
    /// it (`managementAccess.modifiable: false`, e.g. a group managed by its team members).
    #[serde(default)]
    pub locked: bool,
    /// Product instances this group grants `atlassian/user` on (a license group when non-empty).
    pub grants: Vec<InstanceIdx>,
    /// The site (index in [`SimState::sites`]) whose admins this group makes.
    pub site_admin_of: Option<u16>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimAccountType {
    Atlassian,
    App,
    Customer,
}

impl SimAccountType {
    pub fn api(self) -> &'static str {
        match self {
            SimAccountType::Atlassian => "atlassian",
            SimAccountType::App => "app",
            SimAccountType::Customer => "customer",
        }
    }
}

/// The account's own lifecycle (User management API): `inactive` = deactivated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountStatus {
    Active,
    Inactive,
    Closed,
}

impl AccountStatus {
    pub fn api(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Inactive => "inactive",
            AccountStatus::Closed => "closed",
        }
    }
}

/// The account's membership of its directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    Active,
    Suspended,
    /// Removed from the directory: listed nowhere, must be invited again.
    None,
}

impl Membership {
    pub fn api(self) -> &'static str {
        match self {
            Membership::Active => "active",
            Membership::Suspended => "suspended",
            Membership::None => "no_membership",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimManagementSource {
    Invited,
    Synced,
}

impl SimManagementSource {
    pub fn api(self) -> &'static str {
        match self {
            SimManagementSource::Invited => "invited",
            SimManagementSource::Synced => "synced",
        }
    }
}

/// Last activity on one product instance. A product the user can use but never used has no entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub instance: InstanceIdx,
    pub last_active: Timestamp,
}

/// One directory entry of an account: the account's own facts (name, email, type, managed, account
/// status, deactivation) are the same in every entry of that account; membership, groups, product
/// activity and the date added are the directory's. An account in two directories has two entries
/// with the same `account_id`; account-wide writes (deactivate, enable) change them all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimUser {
    pub account_id: String,
    pub name: String,
    /// Absent for app accounts.
    pub email: Option<String>,
    pub account_type: SimAccountType,
    /// The organization claimed the email domain.
    pub managed: bool,
    pub account_status: AccountStatus,
    /// When the account was deactivated (set while `account_status` is not active).
    #[serde(default)]
    pub deactivated_on: Option<Timestamp>,
    pub membership: Membership,
    /// Index in [`SimState::directories`].
    pub directory: u16,
    pub added_to_org: Timestamp,
    pub management_source: Option<SimManagementSource>,
    pub email_verified: bool,
    pub org_admin: bool,
    pub department: Option<String>,
    pub groups: Vec<SimGroupIdx>,
    pub activity: Vec<Activity>,
}

/// One write the simulator received, applied or refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimEvent {
    pub seq: u64,
    pub time: Timestamp,
    /// `user.suspend`, `user.restore`, `user.remove`, `user.invite`, `user.deactivate`,
    /// `user.activate`, `group.membership.add`, `group.membership.remove`.
    pub operation: String,
    /// Which API received it: `admin-v2`, `admin-v1`, `user-management`, `jira`, `confluence`.
    pub api: String,
    pub account_id: Option<String>,
    pub group_id: Option<String>,
    pub outcome: SimOutcome,
    /// The directory a directory-level write (suspend, restore, remove, group membership) named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "camelCase")]
pub enum SimOutcome {
    Applied,
    /// Nothing to do (already in that state); answered as success.
    Unchanged,
    Refused {
        status: u16,
        code: String,
    },
}

/// A refused write, in API-neutral terms; each API renders it in its own error shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteError {
    pub status: u16,
    /// The Admin API code (`ADMIN-404-8`, ...).
    pub code: &'static str,
    /// The User management API key (`forbidden.action`, ...).
    pub key: &'static str,
    pub title: &'static str,
    pub detail: String,
}

impl WriteError {
    pub fn user_not_found(account_id: &str) -> Self {
        Self {
            status: 404,
            code: "ADMIN-404-8",
            key: "notFound",
            title: "User not found",
            detail: format!("No user with account id {account_id} in this directory."),
        }
    }

    pub fn group_not_found(group_id: &str) -> Self {
        Self {
            status: 404,
            code: "ADMIN-404-10",
            key: "notFound",
            title: "Group not found",
            detail: format!("No group with id {group_id} in this directory."),
        }
    }

    fn idp_synced(group: &SimGroup) -> Self {
        let detail = if group.idp_synced {
            format!(
                "Group {} is synced from an identity provider: change its memberships in the identity provider.",
                group.name
            )
        } else {
            format!("Group {} cannot be modified by organization admins.", group.name)
        };
        Self {
            status: 403,
            code: "ADMIN-403-5",
            key: "forbidden.action",
            title: "Not allowed to manage the group",
            detail,
        }
    }

    fn license_limit(instance: &ProductInstance) -> Self {
        Self {
            status: 409,
            code: "ADMIN-409-3",
            key: "conflict.licenseLimit",
            title: "License limit exceeded",
            detail: format!(
                "{} has reached its user limit of {}: increase your limit or suspend another user first.",
                instance.product.display_name(),
                instance.license_limit
            ),
        }
    }

    fn forbidden_action(detail: String) -> Self {
        Self { status: 403, code: "ADMIN-403-3", key: "forbidden.action", title: "Forbidden", detail }
    }

    pub fn bad_request(detail: String) -> Self {
        Self { status: 400, code: "ADMIN-400-24", key: "bodyParseFailure", title: "Invalid request body", detail }
    }
}

/// The v2 composite status (`active`, `suspended`, `not_invited`, `deactivated`).
pub fn v2_status(user: &SimUser) -> &'static str {
    match (user.account_status, user.membership) {
        (AccountStatus::Inactive | AccountStatus::Closed, _) => "deactivated",
        (AccountStatus::Active, Membership::Active) => "active",
        (AccountStatus::Active, Membership::Suspended) => "suspended",
        (AccountStatus::Active, Membership::None) => "not_invited",
    }
}

impl SimUser {
    pub fn last_active_on(&self, instance: InstanceIdx) -> Option<Timestamp> {
        self.activity.iter().find(|a| a.instance == instance).map(|a| a.last_active)
    }

    /// Records activity on a product instance (replacing any earlier date).
    pub fn set_last_active(&mut self, instance: InstanceIdx, at: Option<Timestamp>) {
        self.activity.retain(|a| a.instance != instance);
        if let Some(at) = at {
            self.activity.push(Activity { instance, last_active: at });
        }
    }

    pub fn email_domain(&self) -> Option<&str> {
        self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d)
    }

    /// In a directory: listed, and counted for seats unless suspended.
    pub fn is_member(&self) -> bool {
        self.membership != Membership::None
    }

    /// Listed by the Admin API's directory endpoints: an `atlassian` account that is a member. App
    /// accounts appear only in the sites' user search (API.md §2.11).
    pub fn is_directory_user(&self) -> bool {
        self.is_member() && self.account_type == SimAccountType::Atlassian
    }

    /// Holds a seat for the products their groups grant.
    pub fn is_billable(&self) -> bool {
        self.account_type == SimAccountType::Atlassian
            && self.account_status == AccountStatus::Active
            && self.membership == Membership::Active
    }
}

impl SimGroup {
    /// Memberships can change through the Admin and site APIs.
    pub fn modifiable(&self) -> bool {
        !self.idp_synced && !self.locked
    }
}

impl ProductInstance {
    /// `ari:cloud:<product>::site/<siteId>`.
    pub fn resource_id(&self, sites: &[SimSite]) -> String {
        let site = sites.get(self.site as usize).map(|s| s.id.as_str()).unwrap_or("unknown");
        format!("ari:cloud:{}::site/{}", self.product.v2_key(), site)
    }
}

impl SimState {
    /// Rebuilds the account-id index; call after adding users by hand.
    pub fn reindex(&mut self) {
        self.index = HashMap::with_capacity(self.users.len());
        self.next_entry = vec![u32::MAX; self.users.len()];
        let mut last: HashMap<&str, u32> = HashMap::new();
        for (i, u) in self.users.iter().enumerate() {
            match last.insert(&u.account_id, i as u32) {
                Some(prev) => self.next_entry[prev as usize] = i as u32,
                None => {
                    self.index.insert(u.account_id.clone(), i as u32);
                }
            }
        }
    }

    /// How many entries the index covers (differs from `users.len()` after entries were added).
    pub(crate) fn index_len(&self) -> usize {
        self.next_entry.len()
    }

    /// The account's first directory entry.
    pub fn user_idx(&self, account_id: &str) -> Option<usize> {
        self.index.get(account_id).map(|&i| i as usize)
    }

    /// Every directory entry of the account, in listing order.
    pub fn entries_of(&self, account_id: &str) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.index.get(account_id).copied().unwrap_or(u32::MAX);
        std::iter::from_fn(move || {
            (at != u32::MAX).then(|| {
                let i = at as usize;
                at = self.next_entry.get(i).copied().unwrap_or(u32::MAX);
                i
            })
        })
    }

    /// The account's entry in `directory`.
    pub fn entry_in(&self, account_id: &str, directory: u16) -> Option<usize> {
        self.entries_of(account_id).find(|&i| self.users[i].directory == directory)
    }

    /// The account's first entry that is a member of its directory: the one listings across all
    /// directories (`-`) and org-wide listings show.
    pub fn listed_entry(&self, account_id: &str) -> Option<usize> {
        self.entries_of(account_id).find(|&i| self.users[i].is_member())
    }

    /// The entry is its account's first.
    pub fn is_first_entry(&self, i: usize) -> bool {
        self.index.get(&self.users[i].account_id) == Some(&(i as u32))
    }

    /// Directories the account is a member of (not removed), sorted.
    pub fn directories_of(&self, account_id: &str) -> Vec<u16> {
        let mut dirs: Vec<u16> = self
            .entries_of(account_id)
            .filter(|&i| self.users[i].is_member())
            .map(|i| self.users[i].directory)
            .collect();
        dirs.sort_unstable();
        dirs
    }

    /// Product instances the account can use in any directory, with its latest activity on each.
    pub fn account_activity(&self, account_id: &str) -> Vec<(InstanceIdx, Option<Timestamp>)> {
        let mut out: Vec<(InstanceIdx, Option<Timestamp>)> = Vec::new();
        for i in self.entries_of(account_id).filter(|&i| self.users[i].is_member()) {
            let u = &self.users[i];
            for inst in self.access_of(u) {
                let at = u.last_active_on(inst);
                match out.iter_mut().find(|(x, _)| *x == inst) {
                    Some((_, t)) => *t = (*t).max(at),
                    None => out.push((inst, at)),
                }
            }
        }
        out.sort_unstable_by_key(|(i, _)| *i);
        out
    }

    pub fn user(&self, account_id: &str) -> Option<&SimUser> {
        self.user_idx(account_id).map(|i| &self.users[i])
    }

    pub fn user_mut(&mut self, account_id: &str) -> Option<&mut SimUser> {
        self.user_idx(account_id).map(move |i| &mut self.users[i])
    }

    pub fn group_idx(&self, group_id: &str) -> Option<SimGroupIdx> {
        self.groups.iter().position(|g| g.id == group_id).map(|i| i as SimGroupIdx)
    }

    pub fn group_by_name(&self, name: &str) -> Option<SimGroupIdx> {
        self.groups.iter().position(|g| g.name.eq_ignore_ascii_case(name)).map(|i| i as SimGroupIdx)
    }

    pub fn directory_idx(&self, directory_id: &str) -> Option<u16> {
        self.directories.iter().position(|d| d.id == directory_id).map(|i| i as u16)
    }

    /// Every group of that name (case-insensitive), one per directory that has it.
    pub fn groups_named(&self, name: &str) -> Vec<SimGroupIdx> {
        (0..self.groups.len())
            .filter(|&i| self.groups[i].name.eq_ignore_ascii_case(name))
            .map(|i| i as SimGroupIdx)
            .collect()
    }

    pub fn instance_of(&self, product: Product) -> Vec<InstanceIdx> {
        (0..self.products.len()).filter(|&i| self.products[i].product == product).map(|i| i as InstanceIdx).collect()
    }

    /// Product instances the user can use through their groups (whatever their status), sorted.
    pub fn access_of(&self, user: &SimUser) -> Vec<InstanceIdx> {
        let mut access: Vec<InstanceIdx> =
            user.groups.iter().flat_map(|&g| self.groups[g as usize].grants.iter().copied()).collect();
        access.sort_unstable();
        access.dedup();
        access
    }

    pub fn is_site_admin(&self, user: &SimUser) -> bool {
        user.groups.iter().any(|&g| self.groups[g as usize].site_admin_of.is_some())
    }

    /// Seats in use on a product instance: billable accounts whose groups grant it (an account
    /// in two directories holds one seat).
    pub fn seats_used(&self, instance: InstanceIdx) -> u32 {
        let granting: Vec<bool> = self.groups.iter().map(|g| g.grants.contains(&instance)).collect();
        let holds = |u: &SimUser| u.is_billable() && u.groups.iter().any(|&g| granting[g as usize]);
        (0..self.users.len())
            .filter(|&i| {
                let u = &self.users[i];
                // Count an account at its first entry that holds the seat.
                holds(u) && self.entries_of(&u.account_id).find(|&j| holds(&self.users[j])) == Some(i)
            })
            .count() as u32
    }

    /// Directory members of every group, counted in one pass (app accounts are not directory users).
    pub fn member_counts(&self) -> Vec<u32> {
        let mut counts = vec![0u32; self.groups.len()];
        for u in self.users.iter().filter(|u| u.is_directory_user()) {
            for &g in &u.groups {
                counts[g as usize] += 1;
            }
        }
        counts
    }

    fn is_managed_email(&self, email: &str) -> bool {
        email.rsplit_once('@').is_some_and(|(_, d)| self.claimed_domains.iter().any(|c| c.eq_ignore_ascii_case(d)))
    }

    /// Refuses when giving `user` access to `new_access` would take any product past its limit.
    fn check_license(&self, user: &SimUser, new_access: &[InstanceIdx]) -> Result<(), WriteError> {
        if user.account_type != SimAccountType::Atlassian || user.account_status != AccountStatus::Active {
            return Ok(());
        }
        for &inst in new_access {
            let product = &self.products[inst as usize];
            if self.seats_used(inst) >= product.license_limit {
                return Err(WriteError::license_limit(product));
            }
        }
        Ok(())
    }

    /// The account's entry as a member of `directory` (or of any directory when `None`).
    fn member_in(&self, directory: Option<u16>, account_id: &str) -> Result<usize, WriteError> {
        self.entries_of(account_id)
            .find(|&i| {
                let u = &self.users[i];
                u.is_member() && directory.is_none_or(|d| u.directory == d)
            })
            .ok_or_else(|| WriteError::user_not_found(account_id))
    }

    /// Sets the account's own status in every entry (deactivation is account-wide).
    fn set_account_status(&mut self, account_id: &str, status: AccountStatus, now: Option<Timestamp>) {
        let entries: Vec<usize> = self.entries_of(account_id).collect();
        for i in entries {
            let u = &mut self.users[i];
            u.account_status = status;
            u.deactivated_on = if status == AccountStatus::Active { None } else { u.deactivated_on.or(now) };
        }
    }

    fn group_in(&self, directory: Option<u16>, group_id: &str) -> Result<SimGroupIdx, WriteError> {
        self.group_idx(group_id)
            .filter(|&g| directory.is_none_or(|d| self.groups[g as usize].directory == d))
            .ok_or_else(|| WriteError::group_not_found(group_id))
    }

    pub fn suspend(&mut self, directory: Option<u16>, account_id: &str) -> Result<SimOutcome, WriteError> {
        let i = self.member_in(directory, account_id)?;
        let user = &mut self.users[i];
        if user.membership == Membership::Suspended {
            return Ok(SimOutcome::Unchanged);
        }
        user.membership = Membership::Suspended;
        Ok(SimOutcome::Applied)
    }

    /// Brings access back, unless a product the user's groups grant is at its limit.
    pub fn restore(&mut self, directory: Option<u16>, account_id: &str) -> Result<SimOutcome, WriteError> {
        let i = self.member_in(directory, account_id)?;
        if self.users[i].membership == Membership::Active {
            return Ok(SimOutcome::Unchanged);
        }
        let mut would_be = self.users[i].clone();
        would_be.membership = Membership::Active;
        let access = self.access_of(&would_be);
        self.check_license(&would_be, &access)?;
        self.users[i].membership = Membership::Active;
        Ok(SimOutcome::Applied)
    }

    /// Removes the user from the directory: access, roles and group memberships go.
    pub fn remove_user(&mut self, directory: Option<u16>, account_id: &str) -> Result<SimOutcome, WriteError> {
        let i = self.member_in(directory, account_id)?;
        let user = &mut self.users[i];
        user.membership = Membership::None;
        user.groups.clear();
        user.org_admin = false;
        Ok(SimOutcome::Applied)
    }

    pub fn add_membership(
        &mut self,
        directory: Option<u16>,
        group_id: &str,
        account_id: &str,
    ) -> Result<SimOutcome, WriteError> {
        let g = self.group_in(directory, group_id)?;
        let i = self.member_in(Some(self.groups[g as usize].directory), account_id)?;
        let group = &self.groups[g as usize];
        if !group.modifiable() {
            return Err(WriteError::idp_synced(group));
        }
        let user = &self.users[i];
        if user.groups.contains(&g) {
            return Ok(SimOutcome::Unchanged);
        }
        let current = self.access_of(user);
        let new_access: Vec<InstanceIdx> = group.grants.iter().copied().filter(|p| !current.contains(p)).collect();
        if user.is_billable() {
            self.check_license(user, &new_access)?;
        }
        self.users[i].groups.push(g);
        Ok(SimOutcome::Applied)
    }

    pub fn remove_membership(
        &mut self,
        directory: Option<u16>,
        group_id: &str,
        account_id: &str,
    ) -> Result<SimOutcome, WriteError> {
        let g = self.group_in(directory, group_id)?;
        let i = self.member_in(Some(self.groups[g as usize].directory), account_id)?;
        let group = &self.groups[g as usize];
        if !group.modifiable() {
            return Err(WriteError::idp_synced(group));
        }
        let user = &mut self.users[i];
        let Some(pos) = user.groups.iter().position(|&x| x == g) else {
            return Err(WriteError {
                detail: format!("User {account_id} is not a member of group {group_id}."),
                ..WriteError::user_not_found(account_id)
            });
        };
        user.groups.remove(pos);
        Ok(SimOutcome::Applied)
    }

    /// Deactivates a managed account (User management API) in every directory it is in. External
    /// and IdP-managed accounts are refused: their lifecycle belongs to someone else.
    pub fn deactivate(&mut self, account_id: &str, now: Timestamp) -> Result<SimOutcome, WriteError> {
        let i = self.user_idx(account_id).ok_or_else(|| WriteError::user_not_found(account_id))?;
        self.lifecycle_allowed(&self.users[i])?;
        if self.users[i].account_status == AccountStatus::Inactive {
            return Ok(SimOutcome::Unchanged);
        }
        self.set_account_status(account_id, AccountStatus::Inactive, Some(now));
        Ok(SimOutcome::Applied)
    }

    pub fn activate(&mut self, account_id: &str) -> Result<SimOutcome, WriteError> {
        let i = self.user_idx(account_id).ok_or_else(|| WriteError::user_not_found(account_id))?;
        self.lifecycle_allowed(&self.users[i])?;
        if self.users[i].account_status == AccountStatus::Active {
            return Ok(SimOutcome::Unchanged);
        }
        let entries: Vec<usize> = self.entries_of(account_id).collect();
        for e in entries {
            let mut would_be = self.users[e].clone();
            would_be.account_status = AccountStatus::Active;
            let access = if would_be.is_billable() { self.access_of(&would_be) } else { Vec::new() };
            self.check_license(&would_be, &access)?;
        }
        self.set_account_status(account_id, AccountStatus::Active, None);
        Ok(SimOutcome::Applied)
    }

    /// Why the User management API refuses lifecycle changes for this account, if it does: the
    /// `reason.key` of `lifecycle.enablement`.
    pub fn lifecycle_refusal(&self, user: &SimUser) -> Option<&'static str> {
        if !user.managed || user.account_type != SimAccountType::Atlassian {
            Some("managedAccount")
        } else if user.management_source == Some(SimManagementSource::Synced) {
            Some("externalDirectory.scim")
        } else {
            None
        }
    }

    fn lifecycle_allowed(&self, user: &SimUser) -> Result<(), WriteError> {
        match self.lifecycle_refusal(user) {
            None => Ok(()),
            Some("externalDirectory.scim") => Err(WriteError::forbidden_action(format!(
                "Account {} is managed by an identity provider: change it there.",
                user.account_id
            ))),
            Some(_) => Err(WriteError::forbidden_action(format!(
                "Account {} is not managed by this organization.",
                user.account_id
            ))),
        }
    }

    /// Invites one person into `directory`: a new account, or a removed one brought back. Groups
    /// named in `groups` are joined; the license limit of every product they grant is checked first.
    pub fn invite(
        &mut self,
        directory: u16,
        email: &str,
        groups: &[SimGroupIdx],
        now: Timestamp,
        new_account_id: impl FnOnce() -> String,
    ) -> Result<(String, SimOutcome), WriteError> {
        if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
            return Err(WriteError::bad_request(format!("emails: {email:?} is not an email address")));
        }
        let account = self.users.iter().position(|u| u.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(email)));
        // The account's entry in this directory; an account known only elsewhere gets a new entry.
        let existing = account.and_then(|i| self.entry_in(&self.users[i].account_id.clone(), directory));
        if let Some(i) = existing.or(account) {
            let user = &self.users[i];
            if user.account_status != AccountStatus::Active {
                return Err(WriteError {
                    status: 400,
                    code: "ADMIN-UAM-400-2",
                    key: "forbidden.action",
                    title: "Inactive user",
                    detail: format!("Account {} is deactivated: enable it before inviting it.", user.account_id),
                });
            }
            if existing.is_some() && user.is_member() {
                return Ok((user.account_id.clone(), SimOutcome::Unchanged));
            }
        }
        let mut candidate = match (existing, account) {
            (Some(i), _) => self.users[i].clone(),
            (None, Some(i)) => {
                SimUser { groups: Vec::new(), activity: Vec::new(), added_to_org: now, ..self.users[i].clone() }
            }
            (None, None) => SimUser {
                account_id: new_account_id(),
                name: email.split('@').next().unwrap_or(email).replace('.', " "),
                email: Some(email.to_string()),
                account_type: SimAccountType::Atlassian,
                managed: self.is_managed_email(email),
                account_status: AccountStatus::Active,
                deactivated_on: None,
                membership: Membership::None,
                directory,
                added_to_org: now,
                management_source: None,
                email_verified: false,
                org_admin: false,
                department: None,
                groups: Vec::new(),
                activity: Vec::new(),
            },
        };
        candidate.directory = directory;
        candidate.membership = Membership::Active;
        candidate.management_source = Some(SimManagementSource::Invited);
        for &g in groups {
            if !self.groups[g as usize].modifiable() {
                return Err(WriteError::idp_synced(&self.groups[g as usize]));
            }
            if !candidate.groups.contains(&g) {
                candidate.groups.push(g);
            }
        }
        let access = self.access_of(&candidate);
        self.check_license(&candidate, &access)?;
        let account_id = candidate.account_id.clone();
        match existing {
            Some(i) => self.users[i] = candidate,
            None => {
                let at = self.users.len() as u32;
                match self.entries_of(&account_id).last() {
                    Some(last) => self.next_entry[last] = at,
                    None => {
                        self.index.insert(account_id.clone(), at);
                    }
                }
                self.users.push(candidate);
                self.next_entry.push(u32::MAX);
            }
        }
        Ok((account_id, SimOutcome::Applied))
    }

    /// Appends an event to the log and returns it.
    pub fn record(
        &mut self,
        time: Timestamp,
        operation: &str,
        api: &str,
        account_id: Option<&str>,
        group_id: Option<&str>,
        outcome: SimOutcome,
    ) -> SimEvent {
        let event = SimEvent {
            seq: self.events.len() as u64 + 1,
            time,
            operation: operation.to_string(),
            api: api.to_string(),
            account_id: account_id.map(str::to_string),
            group_id: group_id.map(str::to_string),
            outcome,
            directory_id: None,
        };
        self.events.push(event.clone());
        event
    }

    /// Names the directory of the event just recorded (a directory-level write).
    pub fn name_directory_of_last_event(&mut self, directory: Option<u16>) {
        let id = directory.and_then(|d| self.directories.get(usize::from(d))).map(|d| d.id.clone());
        if let Some(e) = self.events.last_mut() {
            e.directory_id = id;
        }
    }

    /// Records the result of a write and passes it on.
    pub fn record_result<T>(
        &mut self,
        time: Timestamp,
        operation: &str,
        api: &str,
        account_id: Option<&str>,
        group_id: Option<&str>,
        result: Result<(T, SimOutcome), WriteError>,
    ) -> Result<(T, SimOutcome), WriteError> {
        let outcome = match &result {
            Ok((_, o)) => o.clone(),
            Err(e) => SimOutcome::Refused { status: e.status, code: e.code.to_string() },
        };
        self.record(time, operation, api, account_id, group_id, outcome);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    /// A two-user organization: one license group for Jira (limit 2), one IdP-synced group.
    fn tiny() -> SimState {
        let user = |id: &str, email: &str, managed: bool| SimUser {
            account_id: id.into(),
            name: id.into(),
            email: Some(email.into()),
            account_type: SimAccountType::Atlassian,
            managed,
            account_status: AccountStatus::Active,
            deactivated_on: None,
            membership: Membership::Active,
            directory: 0,
            added_to_org: ts("2025-01-01T00:00:00Z"),
            management_source: None,
            email_verified: true,
            org_admin: false,
            department: None,
            groups: vec![],
            activity: vec![],
        };
        let mut s = SimState {
            org_id: "o".into(),
            directories: vec![SimDirectory { id: "d".into(), name: "D".into() }],
            sites: vec![SimSite { id: "s1".into(), name: "acme".into() }],
            products: vec![ProductInstance {
                product: Product::JiraSoftware.into(),
                id: "p1".into(),
                site: 0,
                license_limit: 2,
            }],
            claimed_domains: vec!["acme.example".into()],
            groups: vec![
                SimGroup {
                    id: "g-jira".into(),
                    name: "jira-users".into(),
                    description: String::new(),
                    directory: 0,
                    idp_synced: false,
                    locked: false,
                    grants: vec![0],
                    site_admin_of: None,
                },
                SimGroup {
                    id: "g-idp".into(),
                    name: "okta".into(),
                    description: String::new(),
                    directory: 0,
                    idp_synced: true,
                    locked: false,
                    grants: vec![],
                    site_admin_of: None,
                },
            ],
            users: vec![user("a", "a@acme.example", true), user("b", "b@contractor.example", false)],
            ..Default::default()
        };
        s.reindex();
        s
    }

    #[test]
    fn suspension_frees_the_seat_and_keeps_groups() {
        let mut s = tiny();
        s.add_membership(None, "g-jira", "a").unwrap();
        assert_eq!(s.seats_used(0), 1);
        s.suspend(None, "a").unwrap();
        assert_eq!(s.seats_used(0), 0);
        assert_eq!(s.user("a").unwrap().groups, vec![0]);
        assert_eq!(s.restore(None, "a").unwrap(), SimOutcome::Applied);
        assert_eq!(s.seats_used(0), 1);
    }

    #[test]
    fn a_full_product_refuses_adds_and_restores() {
        let mut s = tiny();
        s.products[0].license_limit = 1;
        s.add_membership(None, "g-jira", "a").unwrap();
        let err = s.add_membership(None, "g-jira", "b").unwrap_err();
        assert_eq!((err.status, err.code), (409, "ADMIN-409-3"));
        s.suspend(None, "a").unwrap();
        s.add_membership(None, "g-jira", "b").unwrap();
        assert_eq!(s.restore(None, "a").unwrap_err().code, "ADMIN-409-3");
    }

    #[test]
    fn idp_synced_groups_and_external_accounts_refuse() {
        let mut s = tiny();
        assert_eq!(s.add_membership(None, "g-idp", "a").unwrap_err().code, "ADMIN-403-5");
        assert_eq!(s.deactivate("b", ts("2026-01-01T00:00:00Z")).unwrap_err().key, "forbidden.action");
        assert_eq!(s.deactivate("a", ts("2026-01-01T00:00:00Z")).unwrap(), SimOutcome::Applied);
        assert_eq!(s.user("a").unwrap().deactivated_on, Some(ts("2026-01-01T00:00:00Z")));
        assert_eq!(v2_status(s.user("a").unwrap()), "deactivated");
    }

    #[test]
    fn removal_drops_groups_and_a_removed_user_can_be_invited_back() {
        let mut s = tiny();
        s.add_membership(None, "g-jira", "a").unwrap();
        s.remove_user(None, "a").unwrap();
        assert!(s.user("a").unwrap().groups.is_empty());
        assert_eq!(s.suspend(None, "a").unwrap_err().code, "ADMIN-404-8");
        let (id, outcome) = s.invite(0, "A@acme.example", &[0], ts("2026-01-01T00:00:00Z"), || "new".into()).unwrap();
        assert_eq!((id.as_str(), outcome), ("a", SimOutcome::Applied));
        assert_eq!(s.user("a").unwrap().management_source, Some(SimManagementSource::Invited));
        let (id, _) = s.invite(0, "c@acme.example", &[], ts("2026-01-01T00:00:00Z"), || "c1".into()).unwrap();
        assert_eq!(id, "c1");
        assert!(s.user("c1").unwrap().managed);
    }

    #[test]
    fn removing_a_group_keeps_access_another_group_grants() {
        let mut s = tiny();
        s.groups.push(SimGroup { id: "g2".into(), name: "jira-too".into(), grants: vec![0], ..s.groups[0].clone() });
        s.add_membership(None, "g-jira", "a").unwrap();
        s.add_membership(None, "g2", "a").unwrap();
        s.remove_membership(None, "g-jira", "a").unwrap();
        assert_eq!(s.access_of(s.user("a").unwrap()), vec![0]);
        s.remove_membership(None, "g2", "a").unwrap();
        assert!(s.access_of(s.user("a").unwrap()).is_empty());
        assert_eq!(s.remove_membership(None, "g2", "a").unwrap_err().status, 404);
    }
}
