//! `DirectorySnapshot`: an immutable, complete picture of one organization's users and groups at one
//! instant. The client builds it (all or nothing); the planner reads it; nothing mutates it.
//!
//! Kept compact (the planner target is 1,000,000 users, < 400 bytes each): group memberships are
//! indices into `groups`, per-product activity is a short vector.

use std::collections::BTreeSet;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::product::Product;

/// Index of a group in [`DirectorySnapshot::groups`].
pub type GroupIdx = u32;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DirectorySnapshot {
    pub org_id: String,
    /// Every directory read (all of the organization's unless the spec named some).
    pub directories: Vec<DirectoryInfo>,
    /// When the listing started (activity data is as of this instant, minus Atlassian's lag).
    pub taken_at: Timestamp,
    /// Sorted by account id; an account in several directories appears once per directory.
    pub users: Vec<User>,
    pub groups: Vec<Group>,
    /// The account that owns the API key, when Atlassian tells us (never acted on).
    pub api_key_owner: Option<String>,
    /// Products for which the source delivered activity data at all. A product absent here has no
    /// activity data: rules depending on it must act on no one.
    pub activity_products: BTreeSet<Product>,
    /// How the snapshot was obtained: calls, pages and every fallback used, never silently.
    pub report: SnapshotReport,
    /// Why the listing is incomplete (a page failed, a body did not parse); None when complete.
    /// The planner plans nothing destructive from an incomplete snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryInfo {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub account_id: String,
    pub email: Option<String>,
    pub name: String,
    pub account_type: AccountType,
    /// Managed: the organization claimed the email domain. External otherwise.
    pub managed: bool,
    pub status: UserStatus,
    pub added_to_org: Option<Timestamp>,
    /// Products the user has access to, each with the last time the user was active on it (None:
    /// access but never active).
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
    pub product: Product,
    pub last_active: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum AccountType {
    Atlassian,
    App,
    Customer,
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

impl User {
    /// Last activity on any product.
    pub fn last_active_any(&self) -> Option<Timestamp> {
        self.product_access.iter().filter_map(|p| p.last_active).max()
    }

    pub fn last_active_on(&self, product: Product) -> Option<Timestamp> {
        self.product_access.iter().find(|p| p.product == product).and_then(|p| p.last_active)
    }

    pub fn has_access_to(&self, product: Product) -> bool {
        self.product_access.iter().any(|p| p.product == product)
    }

    pub fn email_domain(&self) -> Option<&str> {
        self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d)
    }
}

impl DirectorySnapshot {
    pub fn group_by_id(&self, id: &str) -> Option<(GroupIdx, &Group)> {
        self.groups.iter().enumerate().find(|(_, g)| g.id == id).map(|(i, g)| (i as GroupIdx, g))
    }

    /// A group named by id or (case-insensitive) name.
    pub fn find_group(&self, id_or_name: &str) -> Option<(GroupIdx, &Group)> {
        self.group_by_id(id_or_name).or_else(|| {
            self.groups
                .iter()
                .enumerate()
                .find(|(_, g)| g.name.eq_ignore_ascii_case(id_or_name))
                .map(|(i, g)| (i as GroupIdx, g))
        })
    }

    pub fn user(&self, account_id: &str) -> Option<&User> {
        self.users.binary_search_by(|u| u.account_id.as_str().cmp(account_id)).ok().map(|i| &self.users[i])
    }
}
