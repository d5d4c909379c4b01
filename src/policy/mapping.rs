//! What a GroupLicenseMapping's group references resolve to, and why one resolves to nothing.
//!
//! Group ids are unique per directory only and names repeat across directories, so a reference
//! may match groups in several directories. Such a reference is taken as meant only when Atlassian
//! itself says every one of those groups grants the mapping's product (the snapshot's role
//! assignments); otherwise it is ambiguous: it resolves to no group — never a guess — and the
//! mapping, the plan and the policy say so, naming the directories and the field that settles it
//! (`spec.groups[i].directory`). One resolution serves the planner, the mapping's status and the
//! metrics, so they never disagree.

use crate::crd::GroupLicenseMappingSpec;
use crate::snapshot::{DirectorySnapshot, GroupIdx};

/// The groups a mapping grants through, and what did not resolve.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MappingResolution {
    /// Resolved groups, deduplicated, in the order of the references.
    pub groups: Vec<GroupIdx>,
    pub problems: Vec<MappingProblem>,
}

/// Why one group reference of a mapping resolves to no group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingProblem {
    /// No group with this id or name (in the pinned directory, when one is named).
    NotFound { field: String, named: String, directory: Option<String> },
    /// `spec.groups[i].directory` names a directory the organization's snapshot does not have.
    UnknownDirectory { field: String, directory: String, known: Vec<String> },
    /// The reference matches groups in several directories and Atlassian does not say that every
    /// one of them grants the product.
    Ambiguous { field: String, named: String, directories: Vec<String>, not_granting: Vec<String> },
}

impl MappingProblem {
    /// The condition reason (CamelCase).
    pub fn reason(&self) -> &'static str {
        match self {
            MappingProblem::NotFound { .. } => "UnresolvedGroup",
            MappingProblem::UnknownDirectory { .. } => "UnknownDirectory",
            MappingProblem::Ambiguous { .. } => "AmbiguousGroup",
        }
    }

    /// What an admin reads: the field, what it named, and what to do.
    pub fn message(&self, product: &str) -> String {
        match self {
            MappingProblem::NotFound { field, named, directory: None } => {
                format!("{field} names group {named}, which is not in the organization")
            }
            MappingProblem::NotFound { field, named, directory: Some(d) } => {
                format!("{field} names group {named}, which is not in directory {d}")
            }
            MappingProblem::UnknownDirectory { field, directory, known } => format!(
                "{field}.directory is {directory:?}, which is not a directory of the organization \
                 (known: {}): the group resolves to nothing; fix {field}.directory",
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            ),
            MappingProblem::Ambiguous { field, named, directories, not_granting } => format!(
                "{field} names group {named}, which exists in directories {} and Atlassian does not say \
                 every one grants {product} (not granting it, or unknown: {}): it resolves to no group \
                 rather than a guess; set {field}.directory to the directory meant",
                directories.join(", "),
                not_granting.join(", ")
            ),
        }
    }

    /// The field of the mapping the problem is about (`spec.groups[i]`).
    pub fn field(&self) -> &str {
        match self {
            MappingProblem::NotFound { field, .. }
            | MappingProblem::UnknownDirectory { field, .. }
            | MappingProblem::Ambiguous { field, .. } => field,
        }
    }
}

/// Resolves every group reference of `spec` against `snapshot`. Pure.
pub fn resolve_mapping(snapshot: &DirectorySnapshot, spec: &GroupLicenseMappingSpec) -> MappingResolution {
    let mut out = MappingResolution::default();
    for (i, r) in spec.groups.iter().enumerate() {
        let field = format!("spec.groups[{i}]");
        let pinned = match r.directory.as_deref().filter(|d| !d.is_empty()) {
            None => None,
            Some(d) => match snapshot.directory_index(d) {
                Some(idx) => Some(idx),
                None => {
                    out.problems.push(MappingProblem::UnknownDirectory {
                        field,
                        directory: d.to_owned(),
                        known: snapshot.directories.iter().map(|x| x.id.clone()).collect(),
                    });
                    continue;
                }
            },
        };
        let in_scope = |g: &crate::snapshot::Group| pinned.is_none_or(|d| g.directory == d);
        let matching = |pred: &dyn Fn(&crate::snapshot::Group) -> bool| -> Vec<GroupIdx> {
            snapshot
                .groups
                .iter()
                .enumerate()
                .filter(|(_, g)| in_scope(g) && pred(g))
                .map(|(i, _)| i as GroupIdx)
                .collect()
        };
        // The id when given (stable), the name when the id is absent or unknown.
        let mut hits = r.id.as_deref().map(|id| matching(&|g| g.id == id)).unwrap_or_default();
        if hits.is_empty() {
            hits = r.name.as_deref().map(|n| matching(&|g| g.name.eq_ignore_ascii_case(n))).unwrap_or_default();
        }
        let named = r.name.clone().or_else(|| r.id.clone()).unwrap_or_default();
        if hits.is_empty() {
            out.problems.push(MappingProblem::NotFound {
                field,
                named,
                directory: pinned.map(|d| snapshot.directory_id(d).to_owned()),
            });
            continue;
        }
        let mut directories: Vec<u16> = hits.iter().map(|g| snapshot.groups[*g as usize].directory).collect();
        directories.sort_unstable();
        directories.dedup();
        if directories.len() > 1 {
            let mut not_granting: Vec<String> = hits
                .iter()
                .map(|g| &snapshot.groups[*g as usize])
                .filter(|g| !g.grants.contains(&spec.product))
                .map(|g| snapshot.directory_id(g.directory).to_owned())
                .collect();
            not_granting.dedup();
            if !not_granting.is_empty() {
                out.problems.push(MappingProblem::Ambiguous {
                    field,
                    named,
                    directories: directories.iter().map(|d| snapshot.directory_id(*d).to_owned()).collect(),
                    not_granting,
                });
                continue;
            }
        }
        for g in hits {
            if !out.groups.contains(&g) {
                out.groups.push(g);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fixture::prelude::*;

    fn spec(refs: Vec<GroupRef>) -> GroupLicenseMappingSpec {
        GroupLicenseMappingSpec {
            organization_ref: LocalRef { name: "acme".into() },
            product: Product::JiraSoftware,
            site: None,
            groups: refs,
            seat_price: None,
        }
    }

    fn by_name(name: &str, directory: Option<&str>) -> GroupRef {
        GroupRef { name: Some(name.into()), id: None, directory: directory.map(str::to_owned) }
    }

    #[test]
    fn a_name_in_one_directory_resolves_without_any_grant_data() {
        let s = snapshot(vec![user("ann")]);
        let r = resolve_mapping(&s, &spec(vec![by_name("jira-users", None)]));
        assert_eq!(r, MappingResolution { groups: vec![JIRA_USERS], problems: vec![] });
    }

    #[test]
    fn a_name_in_two_directories_resolves_to_both_when_atlassian_says_both_grant_the_product() {
        let mut s = two_directories(vec![user("ann")]);
        s.groups[JIRA_USERS as usize].grants = vec![Product::JiraSoftware];
        s.groups[(DIR2 + JIRA_USERS) as usize].grants = vec![Product::Confluence, Product::JiraSoftware];
        let r = resolve_mapping(&s, &spec(vec![by_name("jira-users", None)]));
        assert_eq!(r.groups, vec![JIRA_USERS, DIR2 + JIRA_USERS]);
        assert!(r.problems.is_empty());
    }

    #[test]
    fn a_name_in_two_directories_that_disagree_is_ambiguous_and_resolves_to_nothing() {
        let mut s = two_directories(vec![user("ann")]);
        s.groups[JIRA_USERS as usize].grants = vec![Product::JiraSoftware];
        // Directory 2's group of that name grants Confluence only.
        s.groups[(DIR2 + JIRA_USERS) as usize].grants = vec![Product::Confluence];
        let r = resolve_mapping(&s, &spec(vec![by_name("jira-users", None), by_name("jira-extra", Some("dir-1"))]));
        assert_eq!(r.groups, vec![JIRA_EXTRA], "the ambiguous ref adds no group; the pinned one resolves");
        assert_eq!(
            r.problems,
            vec![MappingProblem::Ambiguous {
                field: "spec.groups[0]".into(),
                named: "jira-users".into(),
                directories: vec!["dir-1".into(), "dir-2".into()],
                not_granting: vec!["dir-2".into()],
            }]
        );
        let msg = r.problems[0].message("jira-software");
        assert_eq!(r.problems[0].reason(), "AmbiguousGroup");
        assert!(msg.contains("dir-1, dir-2") && msg.contains("set spec.groups[0].directory"), "{msg}");
    }

    #[test]
    fn without_grant_data_a_repeated_name_is_ambiguous() {
        // The fixture's groups carry no role data: Atlassian says nothing, so nothing is guessed.
        let s = two_directories(vec![user("ann")]);
        let r = resolve_mapping(&s, &spec(vec![by_name("jira-users", None)]));
        assert!(r.groups.is_empty());
        assert!(matches!(&r.problems[..], [MappingProblem::Ambiguous { not_granting, .. }] if not_granting.len() == 2));
    }

    #[test]
    fn a_pinned_directory_resolves_to_that_directorys_group_only() {
        let s = two_directories(vec![user("ann")]);
        let r = resolve_mapping(&s, &spec(vec![by_name("JIRA-USERS", Some("dir-2"))]));
        assert_eq!(r, MappingResolution { groups: vec![DIR2 + JIRA_USERS], problems: vec![] });
        // By id too: an id of directory 1 pinned to directory 2 is not there.
        let by_id = GroupRef { name: None, id: Some("g-jira".into()), directory: Some("dir-2".into()) };
        let r = resolve_mapping(&s, &spec(vec![by_id]));
        assert!(r.groups.is_empty());
        assert_eq!(
            r.problems,
            vec![MappingProblem::NotFound {
                field: "spec.groups[0]".into(),
                named: "g-jira".into(),
                directory: Some("dir-2".into())
            }]
        );
    }

    #[test]
    fn an_unknown_directory_id_is_a_condition_naming_the_field() {
        let s = two_directories(vec![user("ann")]);
        let r = resolve_mapping(
            &s,
            &spec(vec![by_name("jira-users", Some("dir-1")), by_name("jira-users", Some("dir-9"))]),
        );
        assert_eq!(r.groups, vec![JIRA_USERS]);
        assert_eq!(r.problems.len(), 1);
        assert_eq!(r.problems[0].reason(), "UnknownDirectory");
        let msg = r.problems[0].message("jira-software");
        assert!(msg.contains("spec.groups[1].directory is \"dir-9\"") && msg.contains("known: dir-1, dir-2"), "{msg}");
    }

    #[test]
    fn an_ambiguous_mapping_is_a_plan_warning_and_licenses_nothing() {
        let mut fx = Fx::new(vec![idle("ann", 200), user("bob")], vec![jira_idle()]);
        fx.snapshot = two_directories(vec![idle("ann", 200), user("bob")]);
        fx.snapshot.groups[(DIR2 + JIRA_USERS) as usize].grants = vec![Product::Confluence];
        let plan = fx.plan();
        let c = plan
            .conditions
            .iter()
            .find(|c| c.reason == "AmbiguousGroup" && c.message.starts_with("GroupLicenseMapping jira:"))
            .expect("a warning");
        assert!(
            c.message.starts_with("GroupLicenseMapping jira: spec.groups[0] names group jira-users"),
            "{}",
            c.message
        );
        // Ann's only mapped Jira group was the ambiguous one: nothing to take her out of.
        assert!(acts(&plan, "jira").iter().all(|(_, a)| a != "remove-group:g-jira"), "{:?}", acts(&plan, "jira"));
        // Pinned, the same mapping is unambiguous and the rule acts on directory 1's group.
        fx.mappings[0].spec.groups[0].directory = Some("dir-1".into());
        let plan = fx.plan();
        assert!(!plan.conditions.iter().any(
            |c| c.reason == "AmbiguousGroup" && c.message.starts_with("GroupLicenseMapping jira: spec.groups[0] ")
        ));
        assert_eq!(acts(&plan, "jira"), vec![pair("ann", "remove-group:g-jira")]);
    }
}
