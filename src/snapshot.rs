//! `DirectorySnapshot`: an immutable, complete picture of one organization's accounts and groups at
//! one instant. The client builds it (all or nothing); the planner reads it; nothing mutates it.
//!
//! Account-centric (DESIGN.md, "The organization model"): one [`Account`] per account id with the
//! facts that belong to the account, and one [`Membership`] per directory the account is in, with
//! that directory's status, groups and product activity. Groups are (directory, id).
//!
//! Kept compact (the planner target is 1,000,000 accounts, < 400 bytes each): group memberships are
//! indices into `groups`, per-product activity is a short vector of `Copy` entries whose unknown
//! product keys are interned ([`ProductKey::Other`]).

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::product::{Product, ProductKey};

/// Index of a group in [`DirectorySnapshot::groups`].
pub type GroupIdx = u32;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectorySnapshot {
    pub org_id: String,
    /// Every directory read (all of the organization's unless the spec named some).
    pub directories: Vec<DirectoryInfo>,
    /// When the listing started (activity data is as of this instant, minus Atlassian's lag).
    pub taken_at: Timestamp,
    /// One entry per account, sorted by account id; each lists its directories in `memberships`.
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    /// The account that owns the API key, when Atlassian tells us (never acted on).
    pub api_key_owner: Option<String>,
    /// Product keys for which the source delivered activity data at all. A product absent here has
    /// no activity data: rules depending on it must act on no one.
    pub activity_products: BTreeSet<ProductKey>,
    /// Whether API-token activity (API Access API) was read, and if not, why.
    #[serde(default)]
    pub api_tokens: ApiTokenActivity,
    /// How the snapshot was obtained: calls, pages and every fallback used, never silently.
    pub report: SnapshotReport,
    /// Why the listing is incomplete (a page failed, a body did not parse, a directory answered far
    /// less than its own counts), naming the directory; None when complete. The planner plans
    /// nothing destructive from an incomplete snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

/// What the snapshot knows about API-token use (API Access API, API.md §2.10).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ApiTokenActivity {
    /// Not read (a snapshot built by hand, or a source without the API).
    #[default]
    NotRead,
    /// Read in full: `tokens` tokens, of which `accounts` accounts own at least one.
    #[serde(rename_all = "camelCase")]
    Read { tokens: u64, accounts: u64 },
    /// Atlassian refused the read (403: plan or scope): token use is unknown, rules work on product
    /// activity alone, and the policy says so.
    Refused { reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryInfo {
    pub id: String,
    pub name: String,
}

/// One account (one `accountId`) with the facts that belong to the account, and its directories.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub account_id: String,
    pub email: Option<String>,
    pub name: String,
    pub account_type: AccountType,
    /// Managed: the organization claimed the email domain. External otherwise.
    pub managed: bool,
    pub management_source: ManagementSource,
    pub org_admin: bool,
    /// Site admin by role or by a site-admin group in any directory.
    pub site_admin: bool,
    /// The earliest over the account's directories.
    pub added_to_org: Option<Timestamp>,
    /// The latest `lastActiveAt` of the account's API tokens (API Access API); None: no token used,
    /// or token use not read (see [`DirectorySnapshot::api_tokens`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_last_active: Option<Timestamp>,
    /// One per directory the account is in, sorted by directory index (never empty in a snapshot).
    pub memberships: Vec<Membership>,
}

/// An account's presence in one directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    /// Index in [`DirectorySnapshot::directories`].
    pub directory: u16,
    pub status: UserStatus,
    /// Groups of this directory the account is in (sorted).
    pub groups: Vec<GroupIdx>,
    /// Products the account has access to through this directory, each with the last time it was
    /// active there (None: access but never active). Unknown product keys are kept.
    pub product_access: Vec<ProductActivity>,
}

/// One row of one directory's user listing (or a re-read of one user in one directory), as the
/// client reads it; the snapshot folds rows into [`Account`]s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DirectoryUser {
    pub account_id: String,
    pub email: Option<String>,
    pub name: String,
    pub account_type: AccountType,
    pub managed: bool,
    pub status: UserStatus,
    pub added_to_org: Option<Timestamp>,
    pub product_access: Vec<ProductActivity>,
    pub groups: Vec<GroupIdx>,
    pub org_admin: bool,
    pub site_admin: bool,
    pub management_source: ManagementSource,
    /// Index in [`DirectorySnapshot::directories`].
    pub directory: u16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductActivity {
    pub product: ProductKey,
    pub last_active: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccountType {
    Atlassian,
    App,
    Customer,
    /// Missing or not one Atlassian documents: never acted on (invariant 1).
    Unknown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum UserStatus {
    Active,
    Suspended,
    Deactivated,
    /// Invited (or added) and never active on any product.
    InvitedNeverActive,
}

impl UserStatus {
    pub fn label(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Suspended => "suspended",
            UserStatus::Deactivated => "deactivated",
            UserStatus::InvitedNeverActive => "invited-never-active",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ManagementSource {
    /// Added by an admin invite.
    Invited,
    /// Synced from an identity provider: change it there, not here.
    Synced,
    #[default]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// Index in [`DirectorySnapshot::directories`].
    pub directory: u16,
    /// Synced from an identity provider: memberships can't be changed through Atlassian.
    pub idp_synced: bool,
    /// Atlassian says the caller may not modify this group (`managementAccess.modifiable: false`)
    /// though no identity provider syncs it: like a synced group, reported and never written.
    #[serde(default)]
    pub locked: bool,
    pub member_count: u32,
    /// Grants site-admin (members are site admins: never acted on).
    pub site_admin: bool,
    /// Products on which the group grants `atlassian/user` (a license group when non-empty).
    #[serde(default)]
    pub grants: Vec<Product>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotReport {
    pub calls: u64,
    pub pages: u64,
    /// Calls to the v1 users list made because v2 lacked data.
    pub v1_fallback_calls: u64,
    /// Per-user last-active-dates calls made because v2 lacked data.
    pub last_active_fallback_calls: u64,
    /// Human-readable notes on each fallback or gap.
    pub notes: Vec<String>,
}

impl Group {
    /// Memberships seatwarden may not change: an IdP-synced or locked group (invariant 7).
    pub fn read_only(&self) -> bool {
        self.idp_synced || self.locked
    }
}

impl DirectoryUser {
    /// Last activity on any product in this directory.
    pub fn last_active_any(&self) -> Option<Timestamp> {
        self.product_access.iter().filter_map(|p| p.last_active).max()
    }

    pub fn last_active_on(&self, product: Product) -> Option<Timestamp> {
        self.product_access.iter().find(|p| p.product == product).and_then(|p| p.last_active)
    }

    /// The account with this one membership.
    pub fn into_account(self) -> Account {
        Account {
            account_id: self.account_id,
            email: self.email,
            name: self.name,
            account_type: self.account_type,
            managed: self.managed,
            management_source: self.management_source,
            org_admin: self.org_admin,
            site_admin: self.site_admin,
            added_to_org: self.added_to_org,
            api_token_last_active: None,
            memberships: vec![Membership {
                directory: self.directory,
                status: self.status,
                groups: self.groups,
                product_access: self.product_access,
            }],
        }
    }
}

impl Membership {
    pub fn last_active_any(&self) -> Option<Timestamp> {
        self.product_access.iter().filter_map(|p| p.last_active).max()
    }

    /// Billed here: active or invited (suspended and deactivated users are not billed).
    pub fn is_live(&self) -> bool {
        matches!(self.status, UserStatus::Active | UserStatus::InvitedNeverActive)
    }
}

impl Account {
    /// Every group of every directory the account is in.
    pub fn groups(&self) -> impl Iterator<Item = GroupIdx> + '_ {
        self.memberships.iter().flat_map(|m| m.groups.iter().copied())
    }

    pub fn in_group(&self, group: GroupIdx) -> bool {
        self.memberships.iter().any(|m| m.groups.contains(&group))
    }

    /// Every product entry of every directory (a product can repeat across directories).
    pub fn product_access(&self) -> impl Iterator<Item = &ProductActivity> + '_ {
        self.memberships.iter().flat_map(|m| m.product_access.iter())
    }

    /// Last activity on any product, known or not, in any directory (API tokens not included).
    pub fn last_active_any(&self) -> Option<Timestamp> {
        self.product_access().filter_map(|p| p.last_active).max()
    }

    /// Last activity from any source: any product in any directory, or an API token.
    pub fn last_activity(&self) -> Option<Timestamp> {
        self.last_active_any().max(self.api_token_last_active)
    }

    pub fn last_active_on(&self, product: Product) -> Option<Timestamp> {
        self.product_access().filter(|p| p.product == product).filter_map(|p| p.last_active).max()
    }

    pub fn has_access_to(&self, product: Product) -> bool {
        self.product_access().any(|p| p.product == product)
    }

    pub fn email_domain(&self) -> Option<&str> {
        self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d)
    }

    pub fn membership(&self, directory: u16) -> Option<&Membership> {
        self.memberships.iter().find(|m| m.directory == directory)
    }

    /// The account's status across its directories: the most usable one (active, else invited,
    /// else suspended, else deactivated). Deactivation is account-wide; a suspension is per
    /// directory, so an account suspended in one directory and active in another is active.
    pub fn status(&self) -> UserStatus {
        let rank = |s: UserStatus| match s {
            UserStatus::Active => 0,
            UserStatus::InvitedNeverActive => 1,
            UserStatus::Suspended => 2,
            UserStatus::Deactivated => 3,
        };
        self.memberships.iter().map(|m| m.status).min_by_key(|s| rank(*s)).unwrap_or(UserStatus::Deactivated)
    }

    /// The row of one directory, as a listing of that directory would show it.
    pub fn directory_user(&self, membership: &Membership) -> DirectoryUser {
        DirectoryUser {
            account_id: self.account_id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            account_type: self.account_type,
            managed: self.managed,
            status: membership.status,
            added_to_org: self.added_to_org,
            product_access: membership.product_access.clone(),
            groups: membership.groups.clone(),
            org_admin: self.org_admin,
            site_admin: self.site_admin,
            management_source: self.management_source,
            directory: membership.directory,
        }
    }

    /// Folds another directory's row of the same account in: account facts are OR-ed or take the
    /// earliest; the membership is added (a row for a directory already held replaces nothing and
    /// is reported as `false`).
    pub fn absorb(&mut self, row: DirectoryUser) -> bool {
        if self.memberships.iter().any(|m| m.directory == row.directory) {
            return false;
        }
        if self.email.is_none() {
            self.email = row.email;
        }
        if self.name.is_empty() {
            self.name = row.name;
        }
        if self.account_type != row.account_type {
            // Rows that disagree on what the account is: never act on it.
            self.account_type = AccountType::Unknown;
        }
        self.managed |= row.managed;
        if row.management_source == ManagementSource::Synced {
            self.management_source = ManagementSource::Synced;
        } else if self.management_source == ManagementSource::Unknown {
            self.management_source = row.management_source;
        }
        self.org_admin |= row.org_admin;
        self.site_admin |= row.site_admin;
        self.added_to_org = match (self.added_to_org, row.added_to_org) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let at = self.memberships.partition_point(|m| m.directory < row.directory);
        self.memberships.insert(
            at,
            Membership {
                directory: row.directory,
                status: row.status,
                groups: row.groups,
                product_access: row.product_access,
            },
        );
        true
    }
}

impl DirectorySnapshot {
    pub fn group_by_id(&self, id: &str) -> Option<(GroupIdx, &Group)> {
        self.groups.iter().enumerate().find(|(_, g)| g.id == id).map(|(i, g)| (i as GroupIdx, g))
    }

    /// The group `id` of one directory (group ids are unique per directory only).
    pub fn group_in(&self, directory: u16, id: &str) -> Option<(GroupIdx, &Group)> {
        self.groups
            .iter()
            .enumerate()
            .find(|(_, g)| g.directory == directory && g.id == id)
            .map(|(i, g)| (i as GroupIdx, g))
    }

    /// The group a ledger entry names: `id` in the directory `directory_id` (None when that
    /// directory was not read this run). Entries recorded before directories were kept (an empty
    /// `directory_id`) are inferred from the snapshot: the group with that id in a directory the
    /// account is in, else the first group with that id.
    pub fn recorded_group(
        &self,
        directory_id: &str,
        id: &str,
        account: Option<&Account>,
    ) -> Option<(GroupIdx, &Group)> {
        if !directory_id.is_empty() {
            return self.group_in(self.directory_index(directory_id)?, id);
        }
        let in_account = account.and_then(|a| {
            self.groups
                .iter()
                .enumerate()
                .find(|(_, g)| g.id == id && a.membership(g.directory).is_some())
                .map(|(i, g)| (i as GroupIdx, g))
        });
        in_account.or_else(|| self.group_by_id(id))
    }

    /// Whether this directory was read for the snapshot (facts of directories not read are kept,
    /// never settled from their absence).
    pub fn read_directory(&self, directory_id: &str) -> bool {
        self.directory_index(directory_id).is_some()
    }

    /// A group named by id or (case-insensitive) name: the first match only. Prefer
    /// [`DirectorySnapshot::groups_named`], which finds every directory's group of that name.
    pub fn find_group(&self, id_or_name: &str) -> Option<(GroupIdx, &Group)> {
        self.group_by_id(id_or_name).or_else(|| {
            self.groups
                .iter()
                .enumerate()
                .find(|(_, g)| g.name.eq_ignore_ascii_case(id_or_name))
                .map(|(i, g)| (i as GroupIdx, g))
        })
    }

    /// Every group with this id, or else with this (case-insensitive) name, in every directory.
    pub fn groups_named(&self, id_or_name: &str) -> Vec<GroupIdx> {
        let by_id: Vec<GroupIdx> =
            self.groups.iter().enumerate().filter(|(_, g)| g.id == id_or_name).map(|(i, _)| i as GroupIdx).collect();
        if !by_id.is_empty() {
            return by_id;
        }
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.name.eq_ignore_ascii_case(id_or_name))
            .map(|(i, _)| i as GroupIdx)
            .collect()
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.account_index(account_id).map(|i| &self.accounts[i])
    }

    pub fn account_index(&self, account_id: &str) -> Option<usize> {
        self.accounts.binary_search_by(|u| u.account_id.as_str().cmp(account_id)).ok()
    }

    pub fn directory_id(&self, directory: u16) -> &str {
        self.directories.get(usize::from(directory)).map(|d| d.id.as_str()).unwrap_or("")
    }

    pub fn directory_index(&self, directory_id: &str) -> Option<u16> {
        self.directories.iter().position(|d| d.id == directory_id).map(|i| i as u16)
    }

    /// The row of `account_id` in the directory `directory_id` (its first directory when the id is
    /// empty), as that directory's listing would show it.
    pub fn directory_user(&self, account_id: &str, directory_id: &str) -> Option<DirectoryUser> {
        let account = self.account(account_id)?;
        let membership = if directory_id.is_empty() {
            account.memberships.first()?
        } else {
            account.membership(self.directory_index(directory_id)?)?
        };
        Some(account.directory_user(membership))
    }

    /// Every (account, membership) pair: one per row a directory listing shows.
    pub fn entries(&self) -> impl Iterator<Item = (&Account, &Membership)> + '_ {
        self.accounts.iter().flat_map(|a| a.memberships.iter().map(move |m| (a, m)))
    }

    /// Every directory row, materialized (for the command line's per-directory work).
    pub fn directory_users(&self) -> Vec<DirectoryUser> {
        self.entries().map(|(a, m)| a.directory_user(m)).collect()
    }

    /// Builds the account-centric list from directory rows: sorted by account id, one account per
    /// id, rows of the same id in other directories folded in. Returns the accounts and how many
    /// rows repeated a directory already held (duplicates: the caller decides what they mean).
    pub fn fold_rows(mut rows: Vec<DirectoryUser>) -> (Vec<Account>, u64) {
        rows.sort_by(|a, b| a.account_id.cmp(&b.account_id).then(a.directory.cmp(&b.directory)));
        let mut accounts: Vec<Account> = Vec::with_capacity(rows.len());
        let mut repeated = 0u64;
        for row in rows {
            match accounts.last_mut() {
                Some(last) if last.account_id == row.account_id => {
                    if !last.absorb(row) {
                        repeated += 1;
                    }
                }
                _ => accounts.push(row.into_account()),
            }
        }
        for a in &mut accounts {
            a.memberships.shrink_to_fit();
        }
        accounts.shrink_to_fit();
        (accounts, repeated)
    }
}
