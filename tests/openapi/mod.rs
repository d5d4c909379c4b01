//! A small, strict validator for the subset of OpenAPI 3 schema keywords Atlassian's documents use
//! for response bodies: `$ref`, `type`, `properties`, `required`, `additionalProperties`, `items`,
//! `enum`, `nullable`, `allOf`, `oneOf`, `anyOf`, `minItems`, `minProperties`, and the `date` /
//! `date-time` formats. Strict: an object property no schema names is an error unless the schema
//! says `additionalProperties: true` or gives a schema for them (Atlassian's documents mostly say
//! nothing, which a lenient reader takes as "anything goes"; here it means "not documented").
//!
//! The documents are read from `$SEATWARDEN_SHARED_DIR/atlassian/specs` (default `../shared`) at
//! test time and never copied into the repository.
#![allow(dead_code)]

use std::{path::PathBuf, sync::OnceLock};

use jiff::Timestamp;
use serde_json::{Value, json};

pub fn shared_dir() -> PathBuf {
    std::env::var_os("SEATWARDEN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

pub struct Spec {
    pub name: &'static str,
    pub doc: Value,
}

impl Spec {
    pub fn load(name: &'static str) -> Spec {
        let path = shared_dir().join("atlassian/specs").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading spec {}: {e}", path.display()));
        Spec { name, doc: serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}")) }
    }

    pub fn pointer(&self, reference: &str) -> &Value {
        let ptr = reference.strip_prefix('#').unwrap_or_else(|| panic!("{}: external $ref {reference}", self.name));
        self.doc.pointer(ptr).unwrap_or_else(|| panic!("{}: dangling $ref {reference}", self.name))
    }

    /// A component schema, mutable (for overlays documented in API.md).
    pub fn component_mut(&mut self, name: &str) -> &mut Value {
        let name_for_panic = format!("{}: no component {name}", self.name);
        self.doc.pointer_mut(&format!("/components/schemas/{name}")).expect(&name_for_panic)
    }

    pub fn component(&self, name: &str) -> &Value {
        self.pointer(&format!("#/components/schemas/{name}"))
    }

    /// The operation's documented statuses.
    pub fn statuses(&self, path: &str, method: &str) -> Vec<u16> {
        let op = self.operation(path, method);
        op["responses"].as_object().into_iter().flatten().filter_map(|(k, _)| k.parse().ok()).collect()
    }

    pub fn has_operation(&self, path: &str, method: &str) -> bool {
        self.doc.pointer(&format!("/paths/{}/{method}", escape(path))).is_some()
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        self.doc
            .pointer(&format!("/paths/{}/{method}", escape(path)))
            .unwrap_or_else(|| panic!("{}: no operation {method} {path}", self.name))
    }

    /// The JSON schema of an operation's response, or `None` when the document names no body.
    pub fn response_schema(&self, path: &str, method: &str, status: u16) -> Option<&Value> {
        let op = self.operation(path, method);
        let mut response = op["responses"]
            .get(status.to_string())
            .unwrap_or_else(|| panic!("{}: {method} {path} documents no {status} response", self.name));
        if let Some(r) = response.get("$ref").and_then(Value::as_str) {
            response = self.pointer(r);
        }
        response.pointer("/content/application~1json/schema")
    }

    /// Validates `body` as the documented response; panics with every violation.
    pub fn check(&self, path: &str, method: &str, status: u16, body: &Value) {
        let schema = self
            .response_schema(path, method, status)
            .unwrap_or_else(|| panic!("{}: {method} {path} {status} documents no JSON body", self.name));
        self.check_schema(schema, body, &format!("{method} {path} {status}"));
    }

    /// Validates `body` against `schema`; panics with every violation.
    pub fn check_schema(&self, schema: &Value, body: &Value, what: &str) {
        let errors = self.errors(schema, body);
        assert!(errors.is_empty(), "{what} does not match {}:\n{}\nbody: {body:#}", self.name, errors.join("\n"));
    }

    /// Every violation of `schema` by `v` (empty: valid).
    pub fn errors(&self, schema: &Value, v: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.validate(schema, v, "$", true, &mut errors);
        errors
    }

    /// The names an object may carry under `schema`: its `properties` and those of its `allOf`s.
    /// `None` when it allows any (`additionalProperties` true or a schema, or no object keywords).
    fn known_properties(&self, schema: &Value) -> Option<Vec<String>> {
        let schema = self.resolve(schema);
        match schema.get("additionalProperties") {
            Some(Value::Bool(true)) | Some(Value::Object(_)) => return None,
            _ => {}
        }
        let mut names: Vec<String> =
            schema.get("properties").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k.clone()).collect();
        let mut constrained = schema.get("properties").is_some() || schema.get("additionalProperties").is_some();
        for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            match self.known_properties(sub) {
                Some(more) => {
                    names.extend(more);
                    constrained = true;
                }
                None if self.resolve(sub).get("properties").is_none() => {}
                None => return None,
            }
        }
        constrained.then_some(names)
    }

    fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        while let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            schema = self.pointer(r);
        }
        schema
    }

    /// `check_unknown`: this level decides which properties are known (false inside an `allOf`,
    /// whose parent checks against the union).
    fn validate(&self, schema: &Value, v: &Value, at: &str, check_unknown: bool, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if v.is_null() {
            let typed = schema.get("type").is_some() || schema.get("properties").is_some();
            if typed && schema.get("nullable") != Some(&Value::Bool(true)) {
                errors.push(format!("{at}: null where the schema does not allow it"));
            }
            return;
        }
        for sub in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
            self.validate(sub, v, at, false, errors);
        }
        for (keyword, exactly_one) in [("oneOf", true), ("anyOf", false)] {
            if let Some(alternatives) = schema.get(keyword).and_then(Value::as_array) {
                let passing = alternatives
                    .iter()
                    .filter(|alt| {
                        let mut e = Vec::new();
                        self.validate(alt, v, at, true, &mut e);
                        e.is_empty()
                    })
                    .count();
                if passing == 0 || (exactly_one && passing > 1) {
                    let why: Vec<String> = alternatives
                        .iter()
                        .map(|alt| {
                            let mut e = Vec::new();
                            self.validate(alt, v, at, true, &mut e);
                            e.join("; ")
                        })
                        .collect();
                    errors.push(format!("{at}: {passing} of the {keyword} alternatives match ({})", why.join(" | ")));
                }
            }
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(v)
        {
            errors.push(format!("{at}: {v} is not one of {}", Value::Array(allowed.clone())));
        }
        let ty = schema.get("type").and_then(Value::as_str);
        let type_ok = match ty {
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            Some("boolean") => v.is_boolean(),
            _ => true,
        };
        if !type_ok {
            errors.push(format!("{at}: expected {}, found {v}", ty.unwrap_or("?")));
            return;
        }
        if let (Some(format), Some(s)) = (schema.get("format").and_then(Value::as_str), v.as_str()) {
            let ok = match format {
                "date-time" => s.parse::<Timestamp>().is_ok(),
                "date" => s.parse::<jiff::civil::Date>().is_ok(),
                _ => true,
            };
            if !ok {
                errors.push(format!("{at}: {s:?} is not a valid {format}"));
            }
        }
        if let Some(obj) = v.as_object() {
            for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                if let Some(name) = req.as_str()
                    && !obj.contains_key(name)
                {
                    errors.push(format!("{at}: missing required property {name:?}"));
                }
            }
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && (obj.len() as u64) < min
            {
                errors.push(format!("{at}: fewer than {min} properties"));
            }
            let props = schema.get("properties").and_then(Value::as_object);
            let known = if check_unknown && schema.get("oneOf").is_none() && schema.get("anyOf").is_none() {
                self.known_properties(schema)
            } else {
                None
            };
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(sub) => self.validate(sub, val, &format!("{at}.{k}"), true, errors),
                    None => match schema.get("additionalProperties") {
                        Some(sub @ Value::Object(_)) => self.validate(sub, val, &format!("{at}.{k}"), true, errors),
                        _ => {
                            if known.as_ref().is_some_and(|names| !names.iter().any(|n| n == k)) {
                                errors.push(format!("{at}: property {k:?} is documented nowhere"));
                            }
                        }
                    },
                }
            }
        }
        if let Some(items) = v.as_array() {
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                errors.push(format!("{at}: fewer than {min} items"));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.validate(item_schema, item, &format!("{at}[{i}]"), true, errors);
                }
            }
        }
    }
}

fn escape(path: &str) -> String {
    path.replace('~', "~0").replace('/', "~1")
}

// ------------------------------------------------------------------ the documents, with API.md overlays

/// The admin document, with what API.md says its July-2025 models lack written in (each overlay
/// names its section) and one defect corrected.
pub fn admin() -> &'static Spec {
    static S: OnceLock<Spec> = OnceLock::new();
    S.get_or_init(|| {
        let mut spec = Spec::load("admin-organization.swagger.v3.json");
        // Defect: role-assignment `roles` is `items: $ref RoleIds` where RoleIds is itself an array;
        // the document's own examples and API.md §2.3(f) show an array of strings.
        for model in ["MultiDirectoryGroupRoleAssignment", "MultiDirectoryUserRoleAssignment"] {
            let roles = &mut spec.component_mut(model)["properties"]["roles"];
            assert_eq!(roles["items"]["$ref"], "#/components/schemas/RoleIds", "the defect is still there");
            roles["items"] = json!({"type": "string"});
        }
        // §2.3(b)/(d) and §2.11: the v2 directory user's newer fields.
        let user = spec.component_mut("MultiDirectoryUser");
        let props = user["properties"].as_object_mut().unwrap();
        for (name, schema) in [
            ("managementSource", json!({"type": "string", "enum": ["invited", "synced"], "nullable": true})),
            ("deactivatedOn", json!({"type": "string", "format": "date-time", "nullable": true})),
            ("forDeletion", json!({"type": "boolean"})),
            ("mfaEnabled", json!({"type": "boolean"})),
            ("jobTitle", json!({"type": "string"})),
            ("department", json!({"type": "string"})),
            ("organization", json!({"type": "string"})),
            ("location", json!({"type": "string"})),
            ("timeZone", json!({"type": "string"})),
            (
                "productAccess",
                json!({"type": "array", "items": {"type": "object", "required": ["key", "id"], "properties": {
                    "key": {"type": "string"},
                    "id": {"type": "string"},
                    "lastActiveTimestamp": {"type": "string", "format": "date-time", "nullable": true}}}}),
            ),
            (
                "groups",
                json!({"type": "array", "items": {"type": "object", "required": ["id", "name"], "properties": {
                    "id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": "string"}}}}),
            ),
        ] {
            props.insert(name.to_string(), schema);
        }
        // §2.6 and §2.11: the v2 group's management fields; `managementAccess` is an object.
        let group = spec.component_mut("MultiDirectoryGroup");
        let props = group["properties"].as_object_mut().unwrap();
        props.insert(
            "managementAccess".into(),
            json!({"type": "object", "additionalProperties": false, "properties": {
                "deletable": {"type": "boolean"}, "modifiable": {"type": "boolean"}, "readable": {"type": "boolean"}}}),
        );
        props.insert("externalSynced".into(), json!({"type": "boolean"}));
        props.insert(
            "managedBy".into(),
            json!({"type": "string", "enum": ["external", "admins", "team-members", "open"]}),
        );
        // §2.11: `GET …/groups/{id}` carries the same management fields (and the group's counts,
        // as groups/search does).
        let listed = spec.component("MultiDirectoryGroup")["properties"].clone();
        let details = &mut spec.component_mut("MultiDirectoryGroupDetails")["properties"]["data"]["properties"];
        for name in ["counts", "managementAccess", "externalSynced", "managedBy"] {
            details[name] = listed[name].clone();
        }
        // §2.11: product keys beyond the document's enum (loom, townsquare, rovo, jira-align, ...).
        for model in ["Product", "UserProductLastActive"] {
            spec.component_mut(model)["properties"]["key"] = json!({"type": "string"});
        }
        spec
    })
}

pub fn user_management() -> &'static Spec {
    static S: OnceLock<Spec> = OnceLock::new();
    S.get_or_init(|| Spec::load("admin-user-management.swagger.v3.json"))
}

pub fn jira() -> &'static Spec {
    static S: OnceLock<Spec> = OnceLock::new();
    S.get_or_init(|| Spec::load("jira-platform.swagger-v3.v3.json"))
}

pub fn confluence() -> &'static Spec {
    static S: OnceLock<Spec> = OnceLock::new();
    S.get_or_init(|| Spec::load("confluence-v1.swagger.v3.json"))
}
