//! Manifests from files: the same YAML as the custom resources, read offline (`seatwarden plan`,
//! `demo`). A file or a directory (its `.yaml`/`.yml` files, sorted, not recursive) of multi-document
//! YAML becomes typed lists. Every error names the file, the document (1-based) and the field.
//!
//! Offline there is no API server to apply the CRDs' validation rules, so the rules a manifest
//! could break silently are checked here too: unknown fields (a typo in a ProtectedUser would
//! otherwise unprotect someone), one trigger per rule, the trigger/action pairs, unique rule names.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::crd::{
    AtlassianOrganization, GroupLicenseMapping, LifecyclePolicy, LifecyclePolicySpec, ProtectedUser, RuleAction,
};

/// Everything seatwarden understands from a set of manifests.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    pub organizations: Vec<AtlassianOrganization>,
    pub policies: Vec<LifecyclePolicy>,
    pub protections: Vec<ProtectedUser>,
    pub mappings: Vec<GroupLicenseMapping>,
    /// Documents of other kinds (Secrets, Deployments, LifecycleRuns...), as `file#doc kind/name`.
    pub ignored: Vec<String>,
}

/// A manifest that can't be used, and exactly where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based; 0 when the error is about the file itself.
    pub document: usize,
    /// `kind/name` when known.
    pub object: Option<String>,
    /// Dotted path, e.g. `spec.rules[0].action`; None for syntax errors.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.document > 0 {
            write!(f, ", document {}", self.document)?;
        }
        if let Some(o) = &self.object {
            write!(f, " ({o})")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ManifestError {}

impl Manifests {
    /// Loads a file, or every `.yaml`/`.yml` file of a directory in name order.
    pub fn load(path: &Path) -> Result<Manifests, ManifestError> {
        let io_err = |file: &Path, e: std::io::Error| ManifestError {
            file: file.to_owned(),
            document: 0,
            object: None,
            field: None,
            message: format!("cannot read: {e}"),
        };
        let mut out = Manifests::default();
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| io_err(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(ManifestError {
                    file: path.to_owned(),
                    document: 0,
                    object: None,
                    field: None,
                    message: "no .yaml or .yml files in this directory".into(),
                });
            }
            for f in files {
                let text = std::fs::read_to_string(&f).map_err(|e| io_err(&f, e))?;
                out.add_str(&f, &text)?;
            }
        } else {
            let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
            out.add_str(path, &text)?;
        }
        Ok(out)
    }

    /// Parses one file's text (named `file` in errors).
    pub fn from_str(file: &Path, text: &str) -> Result<Manifests, ManifestError> {
        let mut out = Manifests::default();
        out.add_str(file, text)?;
        Ok(out)
    }

    fn add_str(&mut self, file: &Path, text: &str) -> Result<(), ManifestError> {
        for (i, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let document = i + 1;
            let err = |object: Option<String>, field: Option<String>, message: String| ManifestError {
                file: file.to_owned(),
                document,
                object,
                field,
                message,
            };
            let value = Value::deserialize(doc).map_err(|e| err(None, None, format!("not valid YAML: {e}")))?;
            if value.is_null() {
                continue;
            }
            let Value::Mapping(map) = &value else {
                return Err(err(None, None, "a manifest must be a mapping with apiVersion and kind".into()));
            };
            let text_of = |k: &str| map.get(k).and_then(Value::as_str).map(str::to_owned);
            let api_version =
                text_of("apiVersion").ok_or_else(|| err(None, Some("apiVersion".into()), "missing".into()))?;
            let kind = text_of("kind").ok_or_else(|| err(None, Some("kind".into()), "missing".into()))?;
            let name = map.get("metadata").and_then(|m| m.get("name")).and_then(Value::as_str).map(str::to_owned);
            let object_name = format!("{kind}/{}", name.as_deref().unwrap_or("?"));
            let object = Some(object_name.clone());
            let Some(version) = api_version.strip_prefix("seatwarden.io/") else {
                self.ignored.push(format!("{}#{document} {}", file.display(), object.as_deref().unwrap_or("")));
                continue;
            };
            if version != crate::crd::VERSION {
                return Err(err(
                    object,
                    Some("apiVersion".into()),
                    format!("seatwarden.io/{version} is not supported; use seatwarden.io/{}", crate::crd::VERSION),
                ));
            }
            if name.as_deref().is_none_or(str::is_empty) {
                return Err(err(object, Some("metadata.name".into()), "missing".into()));
            }
            let typed_err = |(field, message): (Option<String>, String)| err(object.clone(), field, message);
            match kind.as_str() {
                "AtlassianOrganization" => {
                    let o: crate::crd::AtlassianOrganization = typed(&value).map_err(typed_err)?;
                    let limits = &o.spec.user_limits;
                    if let Some(i) =
                        (1..limits.len()).find(|&i| limits[..i].iter().any(|l| l.product == limits[i].product))
                    {
                        return Err(err(
                            object,
                            Some(format!("spec.userLimits[{i}].product")),
                            format!("{:?} is listed twice: one limit per product", limits[i].product),
                        ));
                    }
                    self.organizations.push(o);
                }
                "LifecyclePolicy" => {
                    let p: LifecyclePolicy = typed(&value).map_err(typed_err)?;
                    validate_policy(&p.spec).map_err(|(f, m)| err(object.clone(), Some(f), m))?;
                    self.policies.push(p);
                }
                "ProtectedUser" => {
                    let p: ProtectedUser = typed(&value).map_err(typed_err)?;
                    let s = &p.spec;
                    if s.reason.trim().is_empty() {
                        return Err(err(object, Some("spec.reason".into()), "a protection needs a reason".into()));
                    }
                    if s.account_ids.is_empty()
                        && s.emails.is_empty()
                        && s.email_patterns.is_empty()
                        && s.groups.is_empty()
                    {
                        return Err(err(
                            object,
                            Some("spec".into()),
                            "name at least one account id, email, email pattern or group".into(),
                        ));
                    }
                    self.protections.push(p);
                }
                "GroupLicenseMapping" => {
                    let m: GroupLicenseMapping = typed(&value).map_err(typed_err)?;
                    if m.spec.groups.is_empty() {
                        return Err(err(object, Some("spec.groups".into()), "name at least one group".into()));
                    }
                    if let Some(i) = m.spec.groups.iter().position(|g| g.id.is_none() && g.name.is_none()) {
                        return Err(err(
                            object,
                            Some(format!("spec.groups[{i}]")),
                            "a group needs a name or an id".into(),
                        ));
                    }
                    self.mappings.push(m);
                }
                "LifecycleRun" => self.ignored.push(format!("{}#{document} {}", file.display(), object_name)),
                other => {
                    return Err(err(
                        object,
                        Some("kind".into()),
                        format!(
                            "unknown kind {other}: expected AtlassianOrganization, LifecyclePolicy, ProtectedUser or GroupLicenseMapping"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Deserializes with the failing field's path, then refuses fields the type doesn't know.
fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> Result<T, (Option<String>, String)> {
    let parsed: T = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let path = e.path().to_string();
        (Some(if path == "." { "(top level)".to_owned() } else { path }), e.into_inner().to_string())
    })?;
    let back = serde_yaml::to_value(&parsed).map_err(|e| (None, e.to_string()))?;
    if let Some(path) = unknown_field(value, &back, String::new()) {
        return Err((Some(path), "unknown field (misspelled?)".into()));
    }
    Ok(parsed)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Sequence(s) => s.is_empty(),
        Value::Mapping(m) => m.is_empty(),
        _ => false,
    }
}

/// The first key of `original` the typed round trip dropped (and that held something).
fn unknown_field(original: &Value, back: &Value, prefix: String) -> Option<String> {
    match (original, back) {
        (Value::Mapping(o), Value::Mapping(b)) => {
            for (k, v) in o {
                let key = k.as_str().unwrap_or("?");
                // status is written by the operator; metadata carries Kubernetes' own fields.
                if prefix.is_empty() && (key == "status" || key == "apiVersion" || key == "kind") {
                    continue;
                }
                let path = if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
                match b.get(k) {
                    None if !is_empty(v) => return Some(path),
                    None => {}
                    Some(bv) => {
                        if let Some(p) = unknown_field(v, bv, path) {
                            return Some(p);
                        }
                    }
                }
            }
            None
        }
        (Value::Sequence(o), Value::Sequence(b)) => {
            o.iter().zip(b).enumerate().find_map(|(i, (ov, bv))| unknown_field(ov, bv, format!("{prefix}[{i}]")))
        }
        _ => None,
    }
}

/// The CRD's validation rules (CEL on the API server), applied offline. Returns (field, message).
pub fn validate_policy(spec: &LifecyclePolicySpec) -> Result<(), (String, String)> {
    let mut names = HashSet::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let at = |f: &str| format!("spec.rules[{i}]{f}");
        let triggers = [
            rule.product_inactivity.is_some(),
            rule.account_inactivity.is_some(),
            rule.never_active.is_some(),
            rule.suspended_for.is_some(),
        ]
        .iter()
        .filter(|t| **t)
        .count();
        if triggers != 1 {
            return Err((
                at(""),
                "a rule needs exactly one trigger: productInactivity, accountInactivity, neverActive or suspendedFor"
                    .into(),
            ));
        }
        if rule.product_inactivity.is_some() != (rule.action == RuleAction::RemoveLicensedGroups) {
            return Err((
                at(".action"),
                "productInactivity goes with action RemoveLicensedGroups, and RemoveLicensedGroups only with productInactivity"
                    .into(),
            ));
        }
        if rule.suspended_for.is_some()
            && !matches!(rule.action, RuleAction::Deactivate | RuleAction::RemoveFromDirectory)
        {
            return Err((
                at(".action"),
                "an escalation (suspendedFor) deactivates or removes from the directory".into(),
            ));
        }
        if rule.name.is_empty() || !rule.name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err((at(".name"), format!("{:?} is not a lowercase name (a-z, 0-9, -)", rule.name)));
        }
        if !names.insert(rule.name.as_str()) {
            return Err((at(".name"), format!("rule name {} is used twice", rule.name)));
        }
        if rule.notice_lead_times.len() > 5 {
            return Err((at(".noticeLeadTimes"), "at most 5 lead times".into()));
        }
    }
    if let Some(w) = &spec.schedule.window {
        crate::controller::schedule::validate_window(w)?;
    }
    if spec.scope.account_types.is_empty() {
        return Err(("spec.scope.accountTypes".into(), "name Managed, External or both".into()));
    }
    if !(0..=100).contains(&spec.caps.max_action_percent) {
        return Err(("spec.caps.maxActionPercent".into(), "must be between 0 and 100".into()));
    }
    if spec.caps.max_actions_per_run < 0 {
        return Err(("spec.caps.maxActionsPerRun".into(), "must not be negative".into()));
    }
    let mut onboarding = HashSet::new();
    for (i, ob) in spec.onboarding.iter().enumerate() {
        if !onboarding.insert(ob.name.as_str()) {
            return Err((format!("spec.onboarding[{i}].name"), format!("onboarding name {} is used twice", ob.name)));
        }
        if ob.groups.is_empty() {
            return Err((format!("spec.onboarding[{i}].groups"), "name at least one group".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: seatwarden.io/v1alpha1
kind: AtlassianOrganization
metadata: {name: acme, namespace: seatwarden}
spec:
  orgId: org-1
  credentials: {apiKeySecretRef: {name: atl, key: apiKey}}
  billing: {cycle: Annual, renewalDate: "2027-03-01", currency: EUR, seatPrices: [{product: JiraSoftware, monthlyPrice: 8.6}]}
---
apiVersion: seatwarden.io/v1alpha1
kind: LifecyclePolicy
metadata: {name: idle}
spec:
  organizationRef: {name: acme}
  mode: Enforce
  rules:
    - name: jira-idle
      productInactivity: {product: JiraSoftware, inactiveFor: 60d}
      action: RemoveLicensedGroups
      noticeLeadTimes: [14d, 3d]
---
# a comment-only document is skipped
---
apiVersion: v1
kind: Secret
metadata: {name: atl}
---
apiVersion: seatwarden.io/v1alpha1
kind: ProtectedUser
metadata: {name: break-glass}
spec: {reason: break-glass admins, emailPatterns: ["admin-*@acme.test"]}
---
apiVersion: seatwarden.io/v1alpha1
kind: GroupLicenseMapping
metadata: {name: jira}
spec: {organizationRef: {name: acme}, product: JiraSoftware, groups: [{name: jira-users}], seatPrice: 7.5}
"#;

    fn load(text: &str) -> Result<Manifests, ManifestError> {
        Manifests::from_str(Path::new("m.yaml"), text)
    }

    #[test]
    fn loads_every_kind_and_ignores_foreign_ones() {
        let m = load(GOOD).unwrap();
        assert_eq!(m.organizations.len(), 1);
        assert_eq!(m.organizations[0].spec.org_id, "org-1");
        assert_eq!(m.policies[0].spec.rules[0].notice_lead_times.len(), 2);
        assert_eq!(m.protections[0].spec.email_patterns, vec!["admin-*@acme.test"]);
        assert_eq!(m.mappings[0].spec.seat_price, Some(7.5));
        assert_eq!(m.ignored.len(), 1);
        assert!(m.ignored[0].contains("Secret/atl"));
    }

    #[test]
    fn user_limits_are_read_and_a_product_listed_twice_is_named() {
        let one = GOOD.replace(
            "  orgId: org-1\n",
            "  orgId: org-1\n  userLimits: [{product: JiraServiceManagement, limit: 50}]\n",
        );
        let m = load(&one).unwrap();
        assert_eq!(
            m.organizations[0].spec.declared_user_limits(),
            [(crate::product::Product::JiraServiceManagement, 50)].into()
        );
        let twice = GOOD.replace(
            "  orgId: org-1\n",
            "  orgId: org-1\n  userLimits: [{product: Confluence, limit: 5}, {product: Confluence, limit: 9}]\n",
        );
        let e = load(&twice).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.userLimits[1].product"));
        assert!(e.message.contains("listed twice"), "{e}");
    }

    #[test]
    fn a_bad_value_names_file_document_and_field() {
        let text = GOOD.replace("inactiveFor: 60d", "inactiveFor: 60 days");
        let e = load(&text).unwrap_err();
        assert_eq!(e.file, Path::new("m.yaml"));
        assert_eq!(e.document, 2);
        assert_eq!(e.object.as_deref(), Some("LifecyclePolicy/idle"));
        assert_eq!(e.field.as_deref(), Some("spec.rules[0].productInactivity.inactiveFor"));
        assert!(e.to_string().contains("m.yaml, document 2 (LifecyclePolicy/idle), field spec.rules[0]"), "{e}");
    }

    #[test]
    fn an_unknown_variant_names_the_field() {
        let e = load(&GOOD.replace("mode: Enforce", "mode: Enforced")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.mode"));
        assert!(e.message.contains("Enforced"), "{}", e.message);
    }

    #[test]
    fn a_misspelled_field_is_refused_not_ignored() {
        let e = load(&GOOD.replace("emailPatterns:", "emailPattern:")).unwrap_err();
        assert_eq!(e.document, 5);
        // The protection then names nothing, which is refused too; either way it is named.
        assert!(e.field.as_deref().is_some_and(|f| f.starts_with("spec")), "{e}");
        let e = load(&GOOD.replace("noticeLeadTimes:", "noticeLeadTime:")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.rules[0].noticeLeadTime"));
    }

    #[test]
    fn a_missing_required_field_is_named() {
        let e = load(&GOOD.replace("  orgId: org-1\n", "")).unwrap_err();
        assert_eq!(e.document, 1);
        assert!(e.message.contains("orgId"), "{e}");
    }

    #[test]
    fn crd_validation_rules_apply_offline() {
        let e = load(&GOOD.replace("action: RemoveLicensedGroups", "action: Suspend")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("spec.rules[0].action"));
        let two = GOOD.replace(
            "      action: RemoveLicensedGroups",
            "      accountInactivity: {inactiveFor: 90d}\n      action: RemoveLicensedGroups",
        );
        let e = load(&two).unwrap_err();
        assert!(e.message.contains("exactly one trigger"), "{e}");
    }

    #[test]
    fn syntax_errors_name_the_document() {
        let e = load("apiVersion: seatwarden.io/v1alpha1\nkind: ProtectedUser\n---\nkind: [unclosed\n").unwrap_err();
        assert_eq!(e.document, 1); // the first document is incomplete (no metadata.name) and fails first
        let e = load("---\nkind: [unclosed\n").unwrap_err();
        assert_eq!(e.document, 1);
        assert!(e.message.contains("not valid YAML"), "{e}");
    }

    #[test]
    fn wrong_version_and_unknown_kind_are_refused() {
        let e = load(&GOOD.replacen("seatwarden.io/v1alpha1", "seatwarden.io/v2", 1)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("apiVersion"));
        let e = load("apiVersion: seatwarden.io/v1alpha1\nkind: Policy\nmetadata: {name: x}\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("kind"));
    }

    #[test]
    fn loads_a_directory_in_name_order_and_names_the_failing_file() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = GOOD.split_at(GOOD.find("---\n# a comment").unwrap());
        std::fs::write(dir.path().join("a.yaml"), a).unwrap();
        std::fs::write(dir.path().join("b.yml"), b).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
        let m = Manifests::load(dir.path()).unwrap();
        assert_eq!((m.organizations.len(), m.policies.len(), m.protections.len(), m.mappings.len()), (1, 1, 1, 1));
        std::fs::write(
            dir.path().join("c.yaml"),
            "apiVersion: seatwarden.io/v1alpha1\nkind: ProtectedUser\nmetadata: {name: p}\nspec: {reason: x}\n",
        )
        .unwrap();
        let e = Manifests::load(dir.path()).unwrap_err();
        assert_eq!(e.file, dir.path().join("c.yaml"));
        assert_eq!(e.document, 1);
    }
}
