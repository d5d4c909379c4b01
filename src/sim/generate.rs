//! Generated organizations: reproducible from the seed, shaped like real ones.
//!
//! Departments; employees on two claimed domains and contractors on an external one; org admins
//! and site admins; app accounts; several products on two sites plus a Bitbucket workspace;
//! licensed and unlicensed groups, some synced from an IdP; a long-tailed activity distribution per
//! product (most users active this week, tails at 30, 60, 90 and 365 days, some products never
//! used); invitees who never logged in; a few suspended and deactivated accounts; license limits a
//! little above the seats in use (Jira Service Management nearly full).

use jiff::{SignedDuration, Timestamp};
use rand::{RngExt, SeedableRng, rngs::Xoshiro256PlusPlus};

use super::state::{
    AccountStatus, Activity, InstanceIdx, Membership, ProductInstance, SimAccountType, SimApiToken, SimDirectory,
    SimGroup, SimGroupIdx, SimManagementSource, SimProduct, SimSite, SimState, SimUser,
};
use crate::product::Product;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenerateSpec {
    pub users: u32,
    pub seed: u64,
    pub org_id: String,
    pub directories: u16,
    pub now: Timestamp,
    /// Share of the first directory's people who are also in another directory (one account id,
    /// two directory entries, each with its own status, groups and activity). Needs `directories > 1`.
    pub shared_accounts: f64,
    /// Add products seatwarden does not model (Loom, Atlas as `townsquare`, Rovo, Jira Align), with
    /// license groups in every directory and activity, including people active on nothing else.
    pub unmodelled_products: bool,
}

impl Default for GenerateSpec {
    fn default() -> Self {
        Self {
            users: 5000,
            seed: 7,
            org_id: "sim-org".to_string(),
            directories: 1,
            now: Timestamp::UNIX_EPOCH,
            shared_accounts: 0.0,
            unmodelled_products: false,
        }
    }
}

impl GenerateSpec {
    /// The shape `seatwarden demo` runs: two directories sharing 15% of the people, with same-named
    /// groups in each, and products seatwarden does not model.
    pub fn two_directories(self) -> Self {
        Self { directories: 2, shared_accounts: 0.15, unmodelled_products: true, ..self }
    }
}

pub const EMPLOYEE_DOMAINS: [&str; 2] = ["acme.example", "acme-labs.example"];
pub const CONTRACTOR_DOMAIN: &str = "contractors-partner.example";

const FIRST: [&str; 48] = [
    "ada", "alan", "amara", "anna", "aiko", "ben", "bruno", "carla", "chen", "dana", "diego", "eva", "farah", "felix",
    "grace", "hana", "ivan", "jana", "jon", "kai", "kemal", "lara", "leo", "lina", "malik", "maya", "mei", "nadia",
    "nils", "omar", "olga", "paula", "priya", "quinn", "rahul", "rosa", "sam", "sofia", "tariq", "tess", "uma",
    "viktor", "wen", "xena", "yara", "yusuf", "zoe", "zane",
];
const LAST: [&str; 48] = [
    "adams", "baker", "costa", "dubois", "eriksen", "fischer", "garcia", "haddad", "ito", "jensen", "kowalski",
    "lopez", "meyer", "nakamura", "okafor", "patel", "quispe", "rossi", "silva", "tanaka", "ueda", "varga", "wagner",
    "xu", "yilmaz", "zhang", "novak", "berg", "moreau", "santos", "kim", "nguyen", "otieno", "popescu", "reyes",
    "schmidt", "horvat", "larsen", "murphy", "oconnor", "petrov", "quinn", "rahman", "sato", "torres", "volkov",
    "weber", "young",
];
/// Departments with their weight (share of employees).
const DEPARTMENTS: [(&str, u32); 8] = [
    ("engineering", 34),
    ("product", 8),
    ("design", 5),
    ("support", 16),
    ("sales", 14),
    ("marketing", 8),
    ("finance", 7),
    ("people", 8),
];
/// Products seatwarden does not model: (key, display name, group name, share of people with access).
const UNMODELLED: [(&str, &str, &str, f64); 4] = [
    ("loom", "Loom", "loom-users", 0.25),
    ("townsquare", "Atlas", "atlas-users", 0.10),
    ("rovo", "Rovo", "rovo-users", 0.15),
    ("jira-align", "Jira Align", "jira-align-users", 0.02),
];
const TOKEN_LABELS: [&str; 6] = ["ci", "jira-cli", "backup script", "terraform", "zapier", "grafana"];
const APP_NAMES: [&str; 6] =
    ["Automation for Jira", "Slack", "Jira Cloud for Microsoft Teams", "Zapier", "Tempo", "GitHub for Jira"];

/// Product instances: (product, site).
const INSTANCES: [(Product, u16); 6] = [
    (Product::JiraSoftware, 0),
    (Product::JiraServiceManagement, 0),
    (Product::Confluence, 0),
    (Product::Bitbucket, 0),
    (Product::JiraSoftware, 1),
    (Product::Confluence, 1),
];
const JIRA: InstanceIdx = 0;
const JSM: InstanceIdx = 1;
const CONFLUENCE: InstanceIdx = 2;
const BITBUCKET: InstanceIdx = 3;
const LABS_JIRA: InstanceIdx = 4;
const LABS_CONFLUENCE: InstanceIdx = 5;

/// Group slots created in every directory (offset by `GROUPS_PER_DIRECTORY * directory`).
mod slot {
    pub const JIRA: u32 = 0;
    pub const JSM: u32 = 1;
    pub const CONFLUENCE: u32 = 2;
    pub const BITBUCKET: u32 = 3;
    pub const LABS_JIRA: u32 = 4;
    pub const LABS_CONFLUENCE: u32 = 5;
    pub const OKTA_ENGINEERING: u32 = 6;
    pub const SITE_ADMINS: u32 = 7;
    pub const LABS_SITE_ADMINS: u32 = 8;
    pub const CONTRACTORS: u32 = 9;
    #[allow(dead_code)] // an opt-in group no one starts in
    pub const ACCESS_REQUESTS: u32 = 10;
    /// Then one group per department.
    pub const FIRST_DEPARTMENT: u32 = 11;
}
const GROUPS_PER_DIRECTORY: u32 = slot::FIRST_DEPARTMENT + DEPARTMENTS.len() as u32;

/// A uuid-shaped id, reproducible from the generator.
fn uuid(rng: &mut Xoshiro256PlusPlus) -> String {
    let a: u64 = rng.random();
    let b: u64 = rng.random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0x3fff | 0x8000,
        b & 0xffff_ffff_ffff
    )
}

/// A 24-hex-digit Atlassian account id.
pub fn account_id(rng: &mut Xoshiro256PlusPlus) -> String {
    let a: u64 = rng.random();
    let b: u32 = rng.random();
    format!("{a:016x}{b:08x}")
}

pub fn generate(spec: &GenerateSpec) -> SimState {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(spec.seed);
    let now = spec.now;
    let directories: Vec<SimDirectory> = (0..spec.directories.max(1))
        .map(|d| SimDirectory {
            id: uuid(&mut rng),
            name: if d == 0 { "Acme".to_string() } else { format!("Acme userbase {}", d + 1) },
        })
        .collect();
    let sites = vec![
        SimSite { id: uuid(&mut rng), name: "acme".to_string() },
        SimSite { id: uuid(&mut rng), name: "acme-labs".to_string() },
    ];
    let products: Vec<ProductInstance> = INSTANCES
        .iter()
        .map(|&(product, site)| ProductInstance {
            product: product.into(),
            id: uuid(&mut rng),
            site,
            license_limit: u32::MAX,
        })
        .collect();

    let mut groups = Vec::new();
    // Every directory has its own groups under the same names, as userbases of one organization do.
    for d in 0..directories.len() as u16 {
        let mut push =
            |name: &str, description: &str, idp_synced: bool, grants: Vec<InstanceIdx>, admin: Option<u16>| {
                groups.push(SimGroup {
                    id: uuid(&mut rng),
                    name: name.to_string(),
                    description: description.to_string(),
                    directory: d,
                    idp_synced,
                    locked: false,
                    grants,
                    site_admin_of: admin,
                })
            };
        push("jira-software-users", "Grants access to Jira on acme", false, vec![JIRA], None);
        push("jira-servicemanagement-users", "Agents of Jira Service Management on acme", false, vec![JSM], None);
        push("confluence-users", "Grants access to Confluence on acme", false, vec![CONFLUENCE], None);
        push("bitbucket-users", "Grants access to the Bitbucket workspace", false, vec![BITBUCKET], None);
        push("labs-jira-users", "Grants access to Jira on acme-labs", false, vec![LABS_JIRA], None);
        push("labs-confluence-users", "Grants access to Confluence on acme-labs", false, vec![LABS_CONFLUENCE], None);
        push("okta-engineering", "Synced from Okta: engineering", true, vec![JIRA, BITBUCKET], None);
        push("site-admins", "Site administrators of acme", false, vec![JIRA, CONFLUENCE], Some(0));
        push("labs-site-admins", "Site administrators of acme-labs", false, vec![LABS_JIRA], Some(1));
        push("contractors", "External contractors", false, vec![], None);
        push("access-requests", "Opt-in: join to ask for your access back", false, vec![], None);
        for (dept, _) in DEPARTMENTS {
            push(&format!("dept-{dept}"), &format!("Everyone in {dept}"), dept == "engineering", vec![], None);
        }
    }

    let n = spec.users as usize;
    let mut users = Vec::with_capacity(n);
    let name_offset = rng.random_range(0..FIRST.len() * LAST.len());
    let dept_total: u32 = DEPARTMENTS.iter().map(|(_, w)| w).sum();
    for i in 0..n {
        users.push(generate_user(&mut rng, i, name_offset, dept_total, directories.len() as u16, now));
    }
    let mut state = SimState {
        org_id: spec.org_id.clone(),
        org_name: "Acme Corporation".to_string(),
        directories,
        sites,
        products,
        claimed_domains: EMPLOYEE_DOMAINS.iter().map(|d| d.to_string()).collect(),
        groups,
        users,
        api_key_owner: None,
        events: Vec::new(),
        ..Default::default()
    };
    state.api_key_owner = state.users.iter().find(|u| u.org_admin).map(|u| u.account_id.clone());
    // The shapes below draw from streams of their own, so an organization without them is the same
    // as before they existed.
    if spec.directories > 1 && spec.shared_accounts > 0.0 {
        add_shared_accounts(&mut state, spec, &mut Xoshiro256PlusPlus::seed_from_u64(spec.seed ^ 0x5a4e_d0c5));
    }
    if spec.unmodelled_products {
        add_unmodelled_products(&mut state, now, &mut Xoshiro256PlusPlus::seed_from_u64(spec.seed ^ 0x10_0a));
    }
    state.reindex();
    add_api_tokens(&mut state, now, &mut Xoshiro256PlusPlus::seed_from_u64(spec.seed ^ 0x70_4e45));
    for inst in 0..state.products.len() as InstanceIdx {
        let used = state.seats_used(inst);
        state.products[inst as usize].license_limit = if inst == JSM { used + 1 } else { used + (used / 10).max(5) };
    }
    state
}

/// When someone last used a product, `days` ago at some time of that day.
fn days_ago(rng: &mut Xoshiro256PlusPlus, now: Timestamp, days: i64) -> Timestamp {
    now - SignedDuration::from_hours(24 * days) - SignedDuration::from_secs(rng.random_range(60..86_400))
}

/// A share of the first directory's people get an entry in another directory: the same groups by
/// name there (some license groups left out), their own status, and activity of their own there,
/// often quite unlike the first (idle in one, active yesterday in the other).
fn add_shared_accounts(state: &mut SimState, spec: &GenerateSpec, rng: &mut Xoshiro256PlusPlus) {
    let now = spec.now;
    let dirs = state.directories.len() as u16;
    let mut extra = Vec::new();
    for u in state.users.iter().filter(|u| u.directory == 0 && u.account_type == SimAccountType::Atlassian) {
        if !rng.random_bool(spec.shared_accounts) {
            continue;
        }
        let other = rng.random_range(1..dirs);
        let groups: Vec<SimGroupIdx> = u
            .groups
            .iter()
            .map(|&g| g % GROUPS_PER_DIRECTORY)
            .filter(|&slot| slot >= slot::OKTA_ENGINEERING || rng.random_bool(0.7))
            .map(|slot| GROUPS_PER_DIRECTORY * other as u32 + slot)
            .collect();
        let mut entry = SimUser {
            directory: other,
            membership: if rng.random_bool(0.1) { Membership::Suspended } else { Membership::Active },
            groups,
            activity: Vec::new(),
            ..u.clone()
        };
        let never = u.activity.is_empty() && !u.email_verified;
        let base = if rng.random_bool(0.5) { rng.random_range(0..3) } else { rng.random_range(180..400) };
        let mut oldest = base;
        if !never {
            for p in state.access_of(&entry) {
                if rng.random_bool(0.1) {
                    continue;
                }
                let days = base + rng.random_range(0..3);
                oldest = oldest.max(days);
                entry.activity.push(Activity { instance: p, last_active: days_ago(rng, now, days) });
            }
        }
        entry.added_to_org = now - SignedDuration::from_hours(24 * (oldest + rng.random_range(30..900)));
        extra.push(entry);
    }
    state.users.extend(extra);
}

/// Loom, Atlas, Rovo and Jira Align: one instance each on the first site, a license group for each
/// in every directory, people with access and activity there, and some whose only recent activity
/// is there (active on Loom yesterday, idle for a year everywhere seatwarden models).
fn add_unmodelled_products(state: &mut SimState, now: Timestamp, rng: &mut Xoshiro256PlusPlus) {
    let first_instance = state.products.len() as InstanceIdx;
    for (key, name, _, _) in UNMODELLED {
        state.products.push(ProductInstance {
            product: SimProduct::Unmodelled { key: key.to_string(), name: name.to_string() },
            id: uuid(rng),
            site: 0,
            license_limit: u32::MAX,
        });
    }
    let first_group = state.groups.len() as SimGroupIdx;
    for d in 0..state.directories.len() as u16 {
        for (k, (_, name, group, _)) in UNMODELLED.iter().enumerate() {
            state.groups.push(SimGroup {
                id: uuid(rng),
                name: group.to_string(),
                description: format!("Grants access to {name}"),
                directory: d,
                idp_synced: false,
                locked: false,
                grants: vec![first_instance + k as InstanceIdx],
                site_admin_of: None,
            });
        }
    }
    for u in state.users.iter_mut().filter(|u| u.account_type == SimAccountType::Atlassian) {
        let invitee = u.activity.is_empty() && !u.email_verified;
        let idle_elsewhere =
            u.activity.iter().all(|a| now.duration_since(a.last_active) > SignedDuration::from_hours(24 * 180));
        // Active on this product only: the people a product-blind rule would call never active.
        let only_here = !invitee && idle_elsewhere && rng.random_bool(0.3);
        for (k, (_, _, _, share)) in UNMODELLED.iter().enumerate() {
            if !(rng.random_bool(*share) || (only_here && k == 0)) {
                continue;
            }
            let g = first_group + (u.directory as u32) * UNMODELLED.len() as u32 + k as u32;
            u.groups.push(g);
            if invitee {
                continue;
            }
            let days = if only_here && k == 0 { rng.random_range(0..3) } else { days_inactive(rng) };
            let at = days_ago(rng, now, days).max(u.added_to_org);
            u.activity.push(Activity { instance: first_instance + k as InstanceIdx, last_active: at });
        }
    }
}

/// User API tokens of managed accounts: a few people (scripts, CLIs, integrations) have one or two,
/// most used lately; and some accounts work only through the API: idle on every product for half a
/// year or more while a token of theirs was used in the last two days.
fn add_api_tokens(state: &mut SimState, now: Timestamp, rng: &mut Xoshiro256PlusPlus) {
    let mut tokens = Vec::new();
    for (i, u) in state.users.iter().enumerate() {
        if !state.is_first_entry(i)
            || !u.managed
            || u.account_type != SimAccountType::Atlassian
            || u.account_status != AccountStatus::Active
            || !u.email_verified
        {
            continue;
        }
        let activity = state.account_activity(&u.account_id);
        let idle = activity
            .iter()
            .all(|(_, t)| t.is_none_or(|t| now.duration_since(t) > SignedDuration::from_hours(24 * 180)));
        let api_only = idle && rng.random_bool(0.15);
        let count = if api_only || rng.random_bool(0.07) { 1 + u32::from(rng.random_bool(0.3)) } else { 0 };
        for n in 0..count {
            let age = rng.random_range(1..360);
            let created_at = days_ago(rng, now, age).max(u.added_to_org);
            let last_active_at = if api_only && n == 0 {
                let days = rng.random_range(0..2);
                Some(days_ago(rng, now, days))
            } else if rng.random_bool(0.1) {
                None
            } else {
                let days = match rng.random_range(0..100) {
                    0..60 => rng.random_range(0..7),
                    60..85 => rng.random_range(7..90),
                    _ => rng.random_range(90..360),
                };
                Some(days_ago(rng, now, days))
            };
            tokens.push(SimApiToken {
                id: uuid(rng),
                label: TOKEN_LABELS[rng.random_range(0..TOKEN_LABELS.len())].to_string(),
                account_id: u.account_id.clone(),
                created_at,
                expires_at: created_at + SignedDuration::from_hours(24 * 365),
                last_active_at: last_active_at.map(|t| t.max(created_at)),
            });
        }
    }
    state.api_tokens = tokens;
}

/// Days since last activity, long-tailed: most this week, tails at 30, 60, 90 and 365 days.
fn days_inactive(rng: &mut Xoshiro256PlusPlus) -> i64 {
    let roll: u32 = rng.random_range(0..100);
    match roll {
        0..=61 => rng.random_range(0..7),
        62..=73 => rng.random_range(7..30),
        74..=80 => rng.random_range(30..60),
        81..=86 => rng.random_range(60..90),
        87..=93 => rng.random_range(90..365),
        _ => rng.random_range(365..900),
    }
}

fn generate_user(
    rng: &mut Xoshiro256PlusPlus,
    i: usize,
    name_offset: usize,
    dept_total: u32,
    directories: u16,
    now: Timestamp,
) -> SimUser {
    let directory = if directories > 1 && rng.random_bool(0.3) { rng.random_range(1..directories) } else { 0 };
    let g = |slot: u32| -> SimGroupIdx { GROUPS_PER_DIRECTORY * directory as u32 + slot };
    let account_id = account_id(rng);
    // Fixed roles for the first few accounts so even a tiny organization has each kind.
    let is_app = i == 2 || (i > 10 && rng.random_bool(0.01));
    let is_contractor = !is_app && (i == 3 || (i > 10 && rng.random_bool(0.08)));
    let org_admin = i < 2 || (!is_app && !is_contractor && i > 10 && rng.random_bool(0.001));
    let never_logged_in = !org_admin && !is_app && (i == 4 || (i > 10 && rng.random_bool(0.03)));

    if is_app {
        let app = APP_NAMES[i % APP_NAMES.len()];
        let days = rng.random_range(0..3);
        return SimUser {
            account_id,
            name: app.to_string(),
            email: None,
            account_type: SimAccountType::App,
            managed: false,
            account_status: AccountStatus::Active,
            deactivated_on: None,
            membership: Membership::Active,
            directory,
            added_to_org: now - SignedDuration::from_hours(24 * rng.random_range(100..1500)),
            management_source: None,
            email_verified: false,
            org_admin: false,
            department: None,
            groups: vec![g(slot::JIRA)],
            activity: vec![Activity { instance: JIRA, last_active: now - SignedDuration::from_hours(24 * days + 1) }],
        };
    }

    let combo = (i * 7919 + name_offset) % (FIRST.len() * LAST.len());
    let (first, last) = (FIRST[combo % FIRST.len()], LAST[combo / FIRST.len()]);
    let round = i / (FIRST.len() * LAST.len());
    let local = if round == 0 { format!("{first}.{last}") } else { format!("{first}.{last}{round}") };
    let domain = if is_contractor {
        CONTRACTOR_DOMAIN
    } else if rng.random_bool(0.15) {
        EMPLOYEE_DOMAINS[1]
    } else {
        EMPLOYEE_DOMAINS[0]
    };
    let mut pick = rng.random_range(0..dept_total);
    let dept_idx = DEPARTMENTS
        .iter()
        .position(|(_, w)| {
            if pick < *w {
                true
            } else {
                pick -= w;
                false
            }
        })
        .unwrap_or(0);
    let dept = DEPARTMENTS[dept_idx].0;
    let engineering = dept == "engineering";
    let synced = !is_contractor && engineering && !org_admin && !never_logged_in;

    let mut groups: Vec<SimGroupIdx> = Vec::with_capacity(5);
    if is_contractor {
        groups.push(g(slot::CONTRACTORS));
        if rng.random_bool(0.9) {
            groups.push(g(slot::JIRA));
        }
        if rng.random_bool(0.5) {
            groups.push(g(slot::CONFLUENCE));
        }
        if rng.random_bool(0.3) {
            groups.push(g(slot::BITBUCKET));
        }
    } else {
        groups.push(g(slot::FIRST_DEPARTMENT + dept_idx as u32));
        if synced {
            groups.push(g(slot::OKTA_ENGINEERING));
        } else if rng.random_bool(if engineering { 0.9 } else { 0.75 }) {
            groups.push(g(slot::JIRA));
        }
        if rng.random_bool(0.85) {
            groups.push(g(slot::CONFLUENCE));
        }
        if dept == "support" || rng.random_bool(0.03) {
            groups.push(g(slot::JSM));
        }
        if !synced && rng.random_bool(0.05) {
            groups.push(g(slot::BITBUCKET));
        }
        if domain == EMPLOYEE_DOMAINS[1] || rng.random_bool(0.04) {
            groups.push(g(slot::LABS_JIRA));
            if rng.random_bool(0.7) {
                groups.push(g(slot::LABS_CONFLUENCE));
            }
        }
        if org_admin || rng.random_bool(0.002) {
            groups.push(g(slot::SITE_ADMINS));
        }
        if org_admin && domain == EMPLOYEE_DOMAINS[1] {
            groups.push(g(slot::LABS_SITE_ADMINS));
        }
    }

    // Instances reachable through the groups above (group slots map to fixed grants).
    let mut access: Vec<InstanceIdx> = Vec::with_capacity(4);
    for &grp in &groups {
        let grants: &[InstanceIdx] = match grp % GROUPS_PER_DIRECTORY {
            slot::JIRA => &[JIRA],
            slot::JSM => &[JSM],
            slot::CONFLUENCE => &[CONFLUENCE],
            slot::BITBUCKET => &[BITBUCKET],
            slot::LABS_JIRA => &[LABS_JIRA],
            slot::LABS_CONFLUENCE => &[LABS_CONFLUENCE],
            slot::OKTA_ENGINEERING => &[JIRA, BITBUCKET],
            slot::SITE_ADMINS => &[JIRA, CONFLUENCE],
            slot::LABS_SITE_ADMINS => &[LABS_JIRA],
            _ => &[],
        };
        for &p in grants {
            if !access.contains(&p) {
                access.push(p);
            }
        }
    }

    let suspended = !org_admin && !never_logged_in && rng.random_bool(0.03);
    let deactivated =
        !org_admin && !never_logged_in && !suspended && !is_contractor && !synced && rng.random_bool(0.01);
    let mut activity = Vec::with_capacity(access.len());
    let added_to_org;
    if never_logged_in {
        added_to_org = now
            - SignedDuration::from_hours(24 * rng.random_range(1..200))
            - SignedDuration::from_secs(rng.random_range(0..86_400));
    } else {
        // A person-level habit, then per-product spread: someone idle on Jira is often idle elsewhere.
        let mut base = days_inactive(rng);
        if suspended || deactivated {
            base = base.max(rng.random_range(90..400));
        }
        let mut oldest = base;
        for &p in &access {
            if rng.random_bool(0.08) {
                continue; // access to a product never used
            }
            let days =
                if rng.random_bool(0.8) { base - base.min(rng.random_range(0..2)) } else { base + days_inactive(rng) };
            oldest = oldest.max(days);
            let at =
                now - SignedDuration::from_hours(24 * days) - SignedDuration::from_secs(rng.random_range(60..86_400));
            activity.push(Activity { instance: p, last_active: at });
        }
        added_to_org = now
            - SignedDuration::from_hours(24 * (oldest + rng.random_range(30..1500)))
            - SignedDuration::from_secs(rng.random_range(0..86_400));
    }

    SimUser {
        account_id,
        name: format!("{} {}", capitalize(first), capitalize(last)),
        email: Some(format!("{local}@{domain}")),
        account_type: SimAccountType::Atlassian,
        managed: !is_contractor,
        account_status: if deactivated { AccountStatus::Inactive } else { AccountStatus::Active },
        // A month after their last activity (no draw: the stream stays as it was).
        deactivated_on: deactivated.then(|| {
            let last = activity.iter().map(|a| a.last_active).max().unwrap_or(added_to_org);
            (last + SignedDuration::from_hours(24 * 30)).min(now)
        }),
        membership: if suspended { Membership::Suspended } else { Membership::Active },
        directory,
        added_to_org,
        management_source: if synced {
            Some(SimManagementSource::Synced)
        } else if never_logged_in || is_contractor || rng.random_bool(0.7) {
            Some(SimManagementSource::Invited)
        } else {
            None
        },
        email_verified: !never_logged_in,
        org_admin,
        department: Some(dept.to_string()),
        groups,
        activity,
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(users: u32, seed: u64) -> GenerateSpec {
        GenerateSpec {
            users,
            seed,
            org_id: "sim-org".into(),
            directories: 1,
            now: "2026-09-01T12:00:00Z".parse().unwrap(),
            ..GenerateSpec::default()
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_organization() {
        let a = generate(&spec(500, 7));
        let b = generate(&spec(500, 7));
        let c = generate(&spec(500, 8));
        assert_eq!(a.users, b.users);
        assert_eq!(a.groups, b.groups);
        assert_ne!(a.users[0].account_id, c.users[0].account_id);
    }

    #[test]
    fn a_generated_organization_has_every_kind_of_account() {
        let s = generate(&spec(5000, 7));
        let now: Timestamp = "2026-09-01T12:00:00Z".parse().unwrap();
        let users = &s.users;
        assert_eq!(users.len(), 5000);
        let ids: std::collections::HashSet<_> = users.iter().map(|u| &u.account_id).collect();
        assert_eq!(ids.len(), 5000, "account ids are unique");
        let emails: std::collections::HashSet<_> = users.iter().filter_map(|u| u.email.as_ref()).collect();
        assert_eq!(emails.len(), users.iter().filter(|u| u.email.is_some()).count(), "emails are unique");
        let share = |f: &dyn Fn(&SimUser) -> bool| users.iter().filter(|u| f(u)).count() as f64 / 5000.0;
        assert!(share(&|u| u.account_type == SimAccountType::App) > 0.003);
        let contractors = share(&|u| u.email_domain() == Some(CONTRACTOR_DOMAIN));
        assert!((0.05..0.12).contains(&contractors), "contractors {contractors}");
        assert!(users.iter().filter(|u| u.email_domain() == Some(CONTRACTOR_DOMAIN)).all(|u| !u.managed));
        assert!(users.iter().filter(|u| u.org_admin).count() >= 2);
        let never = share(&|u| u.activity.is_empty() && u.management_source == Some(SimManagementSource::Invited));
        assert!((0.02..0.06).contains(&never), "never logged in {never}");
        assert!(share(&|u| u.membership == Membership::Suspended) > 0.01);
        assert!(share(&|u| u.account_status == AccountStatus::Inactive) > 0.003);
        assert!(share(&|u| u.management_source == Some(SimManagementSource::Synced)) > 0.15);
        // Long tail on Jira: most this week, some past each threshold.
        let jira_days: Vec<i64> =
            users.iter().filter_map(|u| u.last_active_on(JIRA)).map(|t| (now - t).get_seconds() / 86_400).collect();
        let past = |d: i64| jira_days.iter().filter(|&&x| x >= d).count() as f64 / jira_days.len() as f64;
        assert!(past(7) < 0.5, "most were active this week");
        for (days, min) in [(30, 0.15), (60, 0.1), (90, 0.07), (365, 0.02)] {
            assert!(past(days) > min, "tail past {days} days: {}", past(days));
        }
        assert!(
            users.iter().all(|u| u.activity.iter().all(|a| a.last_active <= now && a.last_active >= u.added_to_org))
        );
        assert!(s.groups.iter().any(|g| g.idp_synced && !g.grants.is_empty()));
        assert!(s.groups.iter().any(|g| !g.idp_synced && g.grants.is_empty()));
        assert_eq!(s.sites.len(), 2);
        for (i, p) in s.products.iter().enumerate() {
            assert!(p.license_limit > s.seats_used(i as InstanceIdx), "{:?} has room", p.product);
        }
        assert_eq!(s.api_key_owner.as_deref(), Some(users[0].account_id.as_str()));
    }

    #[test]
    fn several_directories_split_users_and_groups() {
        let mut sp = spec(1000, 3);
        sp.directories = 3;
        let s = generate(&sp);
        assert_eq!(s.directories.len(), 3);
        for d in 0..3u16 {
            assert!(s.users.iter().any(|u| u.directory == d));
        }
        assert!(
            s.users.iter().all(|u| u.groups.iter().all(|&g| s.groups[g as usize].directory == u.directory)),
            "users only join groups of their own directory"
        );
    }

    #[test]
    fn two_directories_share_accounts_and_group_names() {
        let s = generate(&GenerateSpec { users: 2000, ..spec(0, 5) }.two_directories());
        let now: Timestamp = "2026-09-01T12:00:00Z".parse().unwrap();
        let first: Vec<&SimUser> = s.users.iter().filter(|u| u.directory == 0).collect();
        let shared: Vec<&str> = s
            .users
            .iter()
            .filter(|u| u.directory == 1 && s.entry_in(&u.account_id, 0).is_some())
            .map(|u| u.account_id.as_str())
            .collect();
        let share = shared.len() as f64 / first.len() as f64;
        assert!((0.10..0.20).contains(&share), "shared share {share}");
        // Per-directory facts: some accounts are idle in one directory and active in the other.
        let split = shared.iter().filter(|id| {
            let last = |d| {
                let u = &s.users[s.entry_in(id, d).unwrap()];
                u.activity.iter().map(|a| a.last_active).max()
            };
            let (a, b) = (last(0), last(1));
            let recent = |t: Option<Timestamp>| t.is_some_and(|t| now.duration_since(t).as_hours() < 24 * 7);
            let idle = |t: Option<Timestamp>| t.is_some_and(|t| now.duration_since(t).as_hours() > 24 * 180);
            (recent(a) && idle(b)) || (idle(a) && recent(b))
        });
        assert!(split.count() > 10, "idle in one directory, active in the other");
        assert!(shared.iter().any(|id| {
            let m = |d| s.users[s.entry_in(id, d).unwrap()].membership;
            m(0) != m(1)
        }));
        // Account facts agree across entries; groups stay in their directory.
        for id in &shared {
            let entries: Vec<&SimUser> = s.entries_of(id).map(|i| &s.users[i]).collect();
            assert!(
                entries.iter().all(|e| e.email == entries[0].email && e.account_status == entries[0].account_status)
            );
        }
        assert!(s.users.iter().all(|u| u.groups.iter().all(|&g| s.groups[g as usize].directory == u.directory)));
        let jira = s.groups_named("jira-software-users");
        assert_eq!(jira.iter().map(|&g| s.groups[g as usize].directory).collect::<Vec<_>>(), vec![0, 1]);
        // One seat per account, however many directories it is in.
        for inst in 0..s.products.len() as InstanceIdx {
            let holders: std::collections::HashSet<&str> = s
                .users
                .iter()
                .filter(|u| u.is_billable() && s.access_of(u).contains(&inst))
                .map(|u| u.account_id.as_str())
                .collect();
            assert_eq!(s.seats_used(inst) as usize, holders.len());
        }
    }

    #[test]
    fn unmodelled_products_and_api_only_accounts_are_generated() {
        let s = generate(&GenerateSpec { users: 3000, ..spec(0, 9) }.two_directories());
        let now: Timestamp = "2026-09-01T12:00:00Z".parse().unwrap();
        let keys: Vec<&str> =
            s.products.iter().filter(|p| p.product.known().is_none()).map(|p| p.product.v2_key()).collect();
        assert_eq!(keys, ["loom", "townsquare", "rovo", "jira-align"]);
        let loom = s.products.iter().position(|p| p.product.v2_key() == "loom").unwrap() as InstanceIdx;
        let recent = |t: Timestamp| now.duration_since(t).as_hours() < 24 * 3;
        let loom_only = s.users.iter().filter(|u| {
            u.last_active_on(loom).is_some_and(recent)
                && u.activity
                    .iter()
                    .filter(|a| a.instance != loom)
                    .all(|a| now.duration_since(a.last_active).as_hours() > 24 * 180)
        });
        assert!(loom_only.count() >= 5, "people active on Loom only");
        // API tokens: some accounts' only recent activity is a token.
        assert!(!s.api_tokens.is_empty());
        assert!(s.api_tokens.iter().all(|t| s.user(&t.account_id).is_some_and(|u| u.managed)));
        assert!(s.api_tokens.iter().any(|t| t.last_active_at.is_none()), "tokens never used");
        let api_only = s.api_tokens.iter().filter(|t| {
            t.last_active_at.is_some_and(recent)
                && s.account_activity(&t.account_id)
                    .iter()
                    .all(|(_, at)| at.is_none_or(|at| !recent(at) && now.duration_since(at).as_hours() > 24 * 180))
        });
        assert!(api_only.count() >= 3, "accounts used only through the API");
        assert!(
            s.api_tokens
                .iter()
                .all(|t| t.created_at <= now && t.last_active_at.is_none_or(|l| l >= t.created_at && l <= now))
        );
        // Without the options the organization is what it was.
        let plain = generate(&spec(3000, 9));
        assert_eq!(plain.users.len(), 3000);
        assert!(plain.products.iter().all(|p| p.product.known().is_some()));
    }
}
