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
    AccountStatus, Activity, InstanceIdx, Membership, ProductInstance, SimAccountType, SimDirectory, SimGroup,
    SimGroupIdx, SimManagementSource, SimSite, SimState, SimUser,
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
        .map(|&(product, site)| ProductInstance { product, id: uuid(&mut rng), site, license_limit: u32::MAX })
        .collect();

    let mut groups = Vec::new();
    for d in 0..directories.len() as u16 {
        let suffix = if d == 0 { String::new() } else { format!("-dir{}", d + 1) };
        let mut push =
            |name: &str, description: &str, idp_synced: bool, grants: Vec<InstanceIdx>, admin: Option<u16>| {
                groups.push(SimGroup {
                    id: uuid(&mut rng),
                    name: format!("{name}{suffix}"),
                    description: description.to_string(),
                    directory: d,
                    idp_synced,
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
    for inst in 0..state.products.len() as InstanceIdx {
        let used = state.seats_used(inst);
        state.products[inst as usize].license_limit = if inst == JSM { used + 1 } else { used + (used / 10).max(5) };
    }
    state.reindex();
    state
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
}
