//! `users import`: a CSV of users (the export's columns, or only `email`/`accountId` and the
//! columns to change) becomes an exact diff against a snapshot. Two pure steps:
//! [`parse_import_csv`] (bytes → rows, with file-level and row-level errors by line) and
//! [`plan_import`] (rows + snapshot → changes, with resolution errors by line).
//!
//! Semantics: a listed user's groups become the row's `groups` (unless `--add-only`, which never
//! removes); `status` `active` restores a suspended user or enables a deactivated managed one;
//! other statuses are never applied (import only activates); users not in the file are untouched;
//! emails not in the organization are invited with the row's groups. Read-only columns (name,
//! accountType, managed, dates) are accepted so an export imports back unchanged, and ignored.
//!
//! Encoding: UTF-8. A UTF-8 byte order mark (Excel writes one) is accepted and skipped; a UTF-16
//! file or any non-UTF-8 byte is refused with its line.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use crate::product::Product;
use crate::snapshot::{DirectorySnapshot, DirectoryUser, GroupIdx, UserStatus};
use crate::users::export::GROUP_SEPARATOR;
use crate::users::{is_valid_email, parse_status};

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// A column of an import file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    AccountId,
    Email,
    Status,
    Groups,
    /// Exported for people, ignored on import: name, accountType, managed, addedToOrg, lastActive…
    ReadOnly,
}

impl Column {
    fn of(header: &str) -> Option<Column> {
        Some(match header {
            "accountId" => Column::AccountId,
            "email" => Column::Email,
            "status" => Column::Status,
            "groups" => Column::Groups,
            "name" | "accountType" | "managed" | "addedToOrg" | "lastActive" => Column::ReadOnly,
            // Every `lastActive.<key>` an export writes: modelled products, products seatwarden
            // doesn't model (kept under Atlassian's key) and `api-token`. Read-only either way.
            other => match other.strip_prefix("lastActive.") {
                Some(p) if is_activity_key(p) => Column::ReadOnly,
                _ => return None,
            },
        })
    }
}

/// A product key as an export spells it (or `api-token`): lowercase letters, digits, `-`, `.`.
fn is_activity_key(key: &str) -> bool {
    Product::from_api_key(key).is_some()
        || (!key.is_empty()
            && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'))
}

/// One data row, as written (validated for shape, not yet against the organization).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportRow {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub line: u64,
    pub account_id: Option<String>,
    pub email: Option<String>,
    /// None: no status column, or the cell is empty (status untouched).
    pub status: Option<UserStatus>,
    /// None: no groups column (groups untouched). Some(empty): no groups.
    pub groups: Option<Vec<String>>,
}

/// What is wrong, and where: `line 7, column email: "bob@" is not an email address`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line as an editor shows it (the header is line 1, CRLF or LF alike); 0 for the
    /// file as a whole.
    pub line: u64,
    pub column: Option<String>,
    pub message: String,
    /// The row's email, when it has one: people find a row by who it is about.
    pub email: Option<String>,
}

impl RowError {
    fn new(line: u64, column: Option<&str>, message: impl Into<String>) -> Self {
        Self { line, column: column.map(str::to_owned), message: message.into(), email: None }
    }

    fn about(mut self, email: Option<&str>) -> Self {
        self.email = email.map(str::to_owned);
        self
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}", self.line)?;
            if let Some(e) = &self.email {
                write!(f, " ({e})")?;
            }
            if let Some(c) = &self.column {
                write!(f, ", column {c}")?;
            }
            write!(f, ": ")?;
        } else if let Some(c) = &self.column {
            write!(f, "column {c}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A parsed import file: its columns, its rows that have a valid shape, and the rows that don't.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportFile {
    pub columns: Vec<Column>,
    pub rows: Vec<ImportRow>,
    pub errors: Vec<RowError>,
}

impl ImportFile {
    pub fn has_column(&self, c: Column) -> bool {
        self.columns.contains(&c)
    }
}

/// Parses an import file. `Err` is a problem with the file as a whole (encoding, header,
/// delimiter): nothing in it can be trusted. Row problems are in [`ImportFile::errors`].
pub fn parse_import_csv(bytes: &[u8]) -> Result<ImportFile, RowError> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err(RowError::new(
            1,
            None,
            "the file is UTF-16 (it starts with a UTF-16 byte order mark): save it as CSV UTF-8",
        ));
    }
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        let at = e.valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count() as u64;
        let col = at - bytes[..at].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) + 1;
        return Err(RowError::new(
            line,
            None,
            format!(
                "byte 0x{:02X} at character {col} is not UTF-8: save the file as CSV UTF-8 (nothing was read)",
                bytes[at]
            ),
        ));
    }
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(RowError::new(1, None, "the file is empty: it needs a header line naming the columns"));
    }
    let lines = LineIndex::new(bytes);
    if let Some(open) = unclosed_quote(bytes) {
        let (line, col) = lines.line_and_column(open);
        return Err(RowError::new(
            line,
            None,
            format!(
                "the quote opened at character {col} is never closed, so the rest of the file would be one field: close it with a second \" (nothing was read)"
            ),
        ));
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(RowError::new(1, None, format!("the header does not parse: {e}"))),
        None => return Err(RowError::new(1, None, "the file is empty: it needs a header line naming the columns")),
    };
    let names: Vec<String> = header.iter().map(|h| h.trim().to_owned()).collect();
    if names.len() == 1 {
        for (delimiter, label) in [(';', "semicolons"), ('\t', "tabs"), ('|', "pipes")] {
            if names[0].contains(delimiter)
                && names[0].split(delimiter).any(|c| matches!(c.trim(), "email" | "accountId"))
            {
                return Err(RowError::new(
                    1,
                    None,
                    format!("the columns are separated by {label}: use commas (RFC 4180 CSV)"),
                ));
            }
        }
    }
    let mut columns = Vec::with_capacity(names.len());
    let mut unknown = Vec::new();
    for n in &names {
        match Column::of(n) {
            Some(c) => columns.push(c),
            None => unknown.push(n.clone()),
        }
    }
    if !columns.contains(&Column::AccountId) && !columns.contains(&Column::Email) {
        let looks_like_data = names.iter().any(|n| n.contains('@'));
        let message = if looks_like_data {
            format!(
                "no header: the first line must name the columns (email or accountId, then the columns to change), found {:?}",
                header.iter().collect::<Vec<_>>().join(",")
            )
        } else {
            "the header has neither an email nor an accountId column: one of them identifies each user".to_owned()
        };
        return Err(RowError::new(1, None, message));
    }
    if !unknown.is_empty() {
        return Err(RowError::new(
            1,
            None,
            format!(
                "unknown column{} {}: the columns are accountId, email, name, status, accountType, managed, addedToOrg, lastActive, lastActive.<product>, groups",
                if unknown.len() > 1 { "s" } else { "" },
                unknown.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let mut seen = BTreeSet::new();
    for (n, c) in names.iter().zip(&columns) {
        if *c != Column::ReadOnly && !seen.insert(n.as_str()) {
            return Err(RowError::new(1, Some(n), "the column appears twice"));
        }
    }

    let mut file = ImportFile { columns, ..Default::default() };
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                // Lines from byte offsets: the csv crate's own line count is off after CRLF.
                let line = e.position().map_or(0, |p| lines.line_of(skip_line_ends(bytes, p.byte() as usize)));
                file.errors.push(RowError::new(line, None, format!("does not parse: {e}")));
                continue;
            }
        };
        let start = record.position().map_or(0, |p| skip_line_ends(bytes, p.byte() as usize));
        let line = lines.line_of(start);
        let email_cell = names
            .iter()
            .zip(&file.columns)
            .zip(record.iter())
            .find(|((_, c), _)| **c == Column::Email)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue; // blank lines are no rows
        }
        if record.len() != names.len() {
            let end = record.position().map_or(start, |p| p.byte() as usize) + record.as_byte_record().as_slice().len();
            let spans = lines.line_of(end.min(bytes.len())).saturating_sub(line);
            let hint = if spans > 0 {
                format!(" (a quoted field runs on over {spans} more line(s): is a closing quote missing?)")
            } else {
                String::new()
            };
            file.errors.push(
                RowError::new(line, None, format!("has {} fields, the header has {}{hint}", record.len(), names.len()))
                    .about(email_cell.filter(|e| is_valid_email(e))),
            );
            continue;
        }
        let mut row = ImportRow { line, account_id: None, email: None, status: None, groups: None };
        let mut ok = true;
        for ((name, column), value) in names.iter().zip(&file.columns).zip(record.iter()) {
            let value = value.trim();
            match column {
                Column::AccountId if !value.is_empty() => row.account_id = Some(value.to_owned()),
                Column::Email if !value.is_empty() => {
                    if is_valid_email(value) {
                        row.email = Some(value.to_owned());
                    } else {
                        file.errors.push(RowError::new(line, Some(name), format!("{value:?} is not an email address")));
                        ok = false;
                    }
                }
                Column::Status if !value.is_empty() => match parse_status(value) {
                    Some(s) => row.status = Some(s),
                    None => {
                        file.errors.push(
                            RowError::new(
                                line,
                                Some(name),
                                format!(
                                    "{value:?} is not a status (active, suspended, deactivated, invited-never-active)"
                                ),
                            )
                            .about(email_cell.filter(|e| is_valid_email(e))),
                        );
                        ok = false;
                    }
                },
                Column::Groups => {
                    let groups: Vec<String> = value
                        .split(GROUP_SEPARATOR)
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect();
                    row.groups = Some(groups);
                }
                _ => {}
            }
        }
        if ok && row.account_id.is_none() && row.email.is_none() {
            file.errors.push(RowError::new(
                line,
                None,
                "neither email nor accountId is given: nothing identifies the user",
            ));
            ok = false;
        }
        if ok {
            file.rows.push(row);
        }
    }
    Ok(file)
}

/// Byte offset → line as an editor counts it: `\n`, `\r\n` and a lone `\r` each end a line.
struct LineIndex {
    /// Byte offset where each line after the first starts.
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(bytes: &[u8]) -> Self {
        let mut starts = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 1;
                }
                b'\r' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        Self { starts }
    }

    /// 1-based line of the byte at `offset`.
    fn line_of(&self, offset: usize) -> u64 {
        1 + self.starts.partition_point(|&s| s <= offset) as u64
    }

    /// 1-based line and character (not byte) column of `offset` in `bytes`' text.
    fn line_and_column(&self, offset: usize) -> (u64, usize) {
        let line = self.line_of(offset);
        let start = if line == 1 { 0 } else { self.starts[line as usize - 2] };
        (line, offset - start + 1)
    }
}

/// The first byte at or after `offset` that ends no line. The csv crate puts a record after a CRLF
/// at the `\n`, which belongs to the line before.
fn skip_line_ends(bytes: &[u8], mut offset: usize) -> usize {
    while offset < bytes.len() && matches!(bytes[offset], b'\r' | b'\n') {
        offset += 1;
    }
    offset
}

/// Where a quoted field opens that no quote closes (RFC 4180: a quote at the start of a field
/// opens it, `""` inside is a literal quote), or None.
fn unclosed_quote(bytes: &[u8]) -> Option<usize> {
    let mut field_start = true;
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match open {
            Some(_) if b == b'"' && bytes.get(i + 1) == Some(&b'"') => i += 1,
            Some(_) if b == b'"' => {
                open = None;
                field_start = false;
            }
            Some(_) => {}
            None if field_start && b == b'"' => {
                open = Some(i);
                field_start = false;
            }
            None => field_start = matches!(b, b',' | b'\n' | b'\r'),
        }
        i += 1;
    }
    open
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Never remove a membership.
    pub add_only: bool,
}

/// One write of an import or activation, with the line that asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The line of the file (0 when not from a file).
    pub line: u64,
    /// None for an invitation of a new person.
    pub account_id: Option<String>,
    pub email: Option<String>,
    pub directory_id: String,
    pub kind: ChangeKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    RemoveFromGroup {
        group_id: String,
        group_name: String,
    },
    /// Suspended → active in the directory.
    Restore,
    /// Deactivated (managed) → active everywhere.
    Enable,
    AddToGroup {
        group_id: String,
        group_name: String,
    },
    /// Not in the organization: invite, with these groups.
    Invite {
        group_ids: Vec<String>,
        group_names: Vec<String>,
    },
}

impl ChangeKind {
    /// The audit trail's action name.
    pub fn action(&self) -> &'static str {
        match self {
            ChangeKind::RemoveFromGroup { .. } => "remove-group",
            ChangeKind::Restore => "restore",
            ChangeKind::Enable => "enable",
            ChangeKind::AddToGroup { .. } => "add-group",
            ChangeKind::Invite { .. } => "invite",
        }
    }

    /// Order of application: removals first (they free seats), then activations, adds, invitations.
    pub fn phase(&self) -> u8 {
        match self {
            ChangeKind::RemoveFromGroup { .. } => 0,
            ChangeKind::Restore | ChangeKind::Enable => 1,
            ChangeKind::AddToGroup { .. } => 2,
            ChangeKind::Invite { .. } => 3,
        }
    }

    pub fn group_id(&self) -> Option<&str> {
        match self {
            ChangeKind::RemoveFromGroup { group_id, .. } | ChangeKind::AddToGroup { group_id, .. } => Some(group_id),
            _ => None,
        }
    }

    pub fn group_name(&self) -> Option<&str> {
        match self {
            ChangeKind::RemoveFromGroup { group_name, .. } | ChangeKind::AddToGroup { group_name, .. } => {
                Some(group_name)
            }
            _ => None,
        }
    }
}

impl Change {
    /// Who, for people: `ann@acme.example (acc-a)`.
    pub fn subject(&self) -> String {
        match (&self.email, &self.account_id) {
            (Some(e), Some(a)) => format!("{e} ({a})"),
            (Some(e), None) => e.clone(),
            (None, Some(a)) => a.clone(),
            (None, None) => "?".into(),
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.line > 0 { format!("line {:>5}  ", self.line) } else { String::new() };
        match &self.kind {
            ChangeKind::RemoveFromGroup { group_name, .. } => {
                write!(f, "{at}- remove-group  {}  from {group_name}", self.subject())
            }
            ChangeKind::AddToGroup { group_name, .. } => {
                write!(f, "{at}+ add-group     {}  to {group_name}", self.subject())
            }
            ChangeKind::Restore => write!(f, "{at}^ restore       {}  (suspended → active)", self.subject()),
            ChangeKind::Enable => write!(f, "{at}^ enable        {}  (deactivated → active)", self.subject()),
            ChangeKind::Invite { group_names, .. } if group_names.is_empty() => {
                write!(f, "{at}* invite        {}", self.subject())
            }
            ChangeKind::Invite { group_names, .. } => {
                write!(f, "{at}* invite        {}  with groups {}", self.subject(), group_names.join(", "))
            }
        }
    }
}

/// The diff an import file makes, and everything wrong with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportPlan {
    /// In application order ([`ChangeKind::phase`], then line).
    pub changes: Vec<Change>,
    /// Parse and resolution errors, by line. Rows with errors contribute no change.
    pub errors: Vec<RowError>,
    /// What the file asks that import does not do (e.g. a status of suspended), by line.
    pub notes: Vec<RowError>,
    /// Data rows read (valid or not).
    pub rows: usize,
}

impl ImportPlan {
    /// `(adds, removals, activations, invitations)`.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for ch in &self.changes {
            match ch.kind {
                ChangeKind::AddToGroup { .. } => c.0 += 1,
                ChangeKind::RemoveFromGroup { .. } => c.1 += 1,
                ChangeKind::Restore | ChangeKind::Enable => c.2 += 1,
                ChangeKind::Invite { .. } => c.3 += 1,
            }
        }
        c
    }

    /// The diff for people: one line per change, then a summary line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            out.push_str(&c.to_string());
            out.push('\n');
        }
        let (adds, removals, activations, invitations) = self.counts();
        out.push_str(&format!(
            "{} change{}: {adds} group add{}, {removals} group removal{}, {activations} activation{}, {invitations} invitation{}\n",
            self.changes.len(),
            plural(self.changes.len()),
            plural(adds),
            plural(removals),
            plural(activations),
            plural(invitations),
        ));
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Where each account id and email sits in a snapshot.
pub(crate) struct SnapshotIndex<'s> {
    snapshot: &'s DirectorySnapshot,
    /// One row per (account, directory): the command line changes users of one directory at a time.
    rows: Vec<DirectoryUser>,
    by_email: HashMap<String, Vec<usize>>,
}

impl<'s> SnapshotIndex<'s> {
    pub(crate) fn new(snapshot: &'s DirectorySnapshot) -> Self {
        let rows = snapshot.directory_users();
        let mut by_email: HashMap<String, Vec<usize>> = HashMap::with_capacity(rows.len());
        for (i, u) in rows.iter().enumerate() {
            if let Some(e) = &u.email {
                by_email.entry(e.to_ascii_lowercase()).or_default().push(i);
            }
        }
        Self { snapshot, rows, by_email }
    }

    pub(crate) fn by_account(&self, id: &str) -> Vec<&DirectoryUser> {
        let users = &self.rows;
        let start = users.partition_point(|u| u.account_id.as_str() < id);
        users[start..].iter().take_while(|u| u.account_id == id).collect()
    }

    pub(crate) fn by_email(&self, email: &str) -> Vec<&DirectoryUser> {
        self.by_email
            .get(&email.to_ascii_lowercase())
            .map(|v| v.iter().map(|&i| &self.rows[i]).collect())
            .unwrap_or_default()
    }

    /// The user a row names (by account id, else email). `Ok(None)`: not in the organization.
    pub(crate) fn find(&self, account_id: Option<&str>, email: Option<&str>) -> Result<Option<&DirectoryUser>, String> {
        let found = match (account_id, email) {
            (Some(id), _) => self.by_account(id),
            (None, Some(e)) => self.by_email(e),
            (None, None) => Vec::new(),
        };
        match found.as_slice() {
            [] => {
                if let (Some(id), Some(e)) = (account_id, email)
                    && let Some(other) = self.by_email(e).first()
                {
                    return Err(format!(
                        "accountId {id} is not in the organization, but {e} is, as {}",
                        other.account_id
                    ));
                }
                Ok(None)
            }
            [u] => {
                if let (Some(e), Some(theirs)) = (email, &u.email)
                    && !e.eq_ignore_ascii_case(theirs)
                {
                    return Err(format!(
                        "email {e} differs from the organization's {theirs} for accountId {}: import does not change emails",
                        u.account_id
                    ));
                }
                Ok(Some(u))
            }
            several => Err(format!(
                "{} is in {} directories: the command line changes users of one directory at a time (name it in the AtlassianOrganization's directories)",
                account_id.or(email).unwrap_or_default(),
                several.len()
            )),
        }
    }

    /// A group by id or name (case-insensitive) in directory `dir`.
    pub(crate) fn group(&self, dir: u16, id_or_name: &str) -> Option<(GroupIdx, &'s crate::snapshot::Group)> {
        let groups = &self.snapshot.groups;
        let in_dir = |g: &&crate::snapshot::Group| g.directory == dir;
        groups
            .iter()
            .enumerate()
            .filter(|(_, g)| in_dir(g))
            .find(|(_, g)| g.id == id_or_name)
            .or_else(|| {
                groups
                    .iter()
                    .enumerate()
                    .filter(|(_, g)| in_dir(g))
                    .find(|(_, g)| g.name.eq_ignore_ascii_case(id_or_name))
            })
            .map(|(i, g)| (i as GroupIdx, g))
    }

    pub(crate) fn directory_id(&self, dir: u16) -> String {
        self.snapshot.directories.get(dir as usize).map(|d| d.id.clone()).unwrap_or_else(|| "-".into())
    }
}

/// The diff `file` makes to `snapshot`. Pure; deterministic.
pub fn plan_import(file: &ImportFile, snapshot: &DirectorySnapshot, options: ImportOptions) -> ImportPlan {
    let index = SnapshotIndex::new(snapshot);
    let mut plan =
        ImportPlan { errors: file.errors.clone(), rows: file.rows.len() + file.errors.len(), ..Default::default() };

    // Duplicates: the same person twice is ambiguous, so every occurrence is an error.
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    let mut duplicate_lines: BTreeSet<u64> = BTreeSet::new();
    for row in &file.rows {
        // The key is the person: the account id when known (also when the row names them by email).
        let key = match (&row.account_id, &row.email) {
            (Some(id), _) => format!("accountId {id}"),
            (None, Some(e)) => match index.by_email(e).as_slice() {
                [u] => format!("accountId {}", u.account_id),
                _ => format!("email {}", e.to_ascii_lowercase()),
            },
            (None, None) => continue,
        };
        match first_seen.get(&key) {
            Some(&first) => {
                plan.errors.push(RowError::new(
                    row.line,
                    None,
                    format!("duplicate row: {key} is already on line {first}"),
                ));
                duplicate_lines.insert(first);
                duplicate_lines.insert(row.line);
            }
            None => {
                first_seen.insert(key, row.line);
            }
        }
    }
    for &line in &duplicate_lines {
        if first_seen.values().any(|&l| l == line) {
            plan.errors.push(RowError::new(line, None, "duplicate row: the same user appears again later in the file"));
        }
    }

    for row in &file.rows {
        if duplicate_lines.contains(&row.line) {
            continue;
        }
        match plan_row(row, &index, options) {
            Ok((changes, notes)) => {
                plan.changes.extend(changes);
                plan.notes.extend(notes);
            }
            Err(errors) => plan.errors.extend(errors),
        }
    }
    plan.changes.sort_by_key(|c| (c.kind.phase(), c.line));
    // Every message names the row's person by email: the row's own, or the account's.
    let emails: HashMap<u64, String> = file
        .rows
        .iter()
        .filter_map(|r| {
            let email = r.email.clone().or_else(|| {
                r.account_id.as_deref().and_then(|id| index.by_account(id).first().and_then(|u| u.email.clone()))
            })?;
            Some((r.line, email))
        })
        .collect();
    for list in [&mut plan.errors, &mut plan.notes] {
        for e in list.iter_mut().filter(|e| e.email.is_none()) {
            e.email = emails.get(&e.line).cloned();
        }
    }
    plan.errors.sort_by_key(|e| e.line);
    plan
}

type RowPlan = (Vec<Change>, Vec<RowError>);

fn plan_row(row: &ImportRow, index: &SnapshotIndex<'_>, options: ImportOptions) -> Result<RowPlan, Vec<RowError>> {
    let line = row.line;
    let err = |column: Option<&str>, m: String| vec![RowError::new(line, column, m)];
    let user = index.find(row.account_id.as_deref(), row.email.as_deref()).map_err(|m| err(None, m))?;
    let Some(user) = user else {
        return plan_invitation(row, index);
    };
    let change = |kind| Change {
        line,
        account_id: Some(user.account_id.clone()),
        email: user.email.clone(),
        directory_id: index.directory_id(user.directory),
        kind,
    };
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    match (row.status, user.status) {
        (Some(UserStatus::Active), UserStatus::Suspended) => changes.push(change(ChangeKind::Restore)),
        (Some(UserStatus::Active), UserStatus::Deactivated) if user.managed => changes.push(change(ChangeKind::Enable)),
        (Some(UserStatus::Active), UserStatus::Deactivated) => errors.push(RowError::new(
            line,
            Some("status"),
            format!(
                "{} is deactivated and not managed by this organization: it can't be enabled from here",
                user.account_id
            ),
        )),
        (Some(wanted @ (UserStatus::Suspended | UserStatus::Deactivated)), now) if wanted != now => {
            notes.push(RowError::new(
                line,
                Some("status"),
                format!(
                    "{} is {}; import only activates, so {} is not applied",
                    user.account_id,
                    now.label(),
                    wanted.label()
                ),
            ))
        }
        _ => {}
    }
    if let Some(names) = &row.groups {
        let mut wanted: BTreeSet<GroupIdx> = BTreeSet::new();
        for name in names {
            match index.group(user.directory, name) {
                Some((g, _)) => {
                    wanted.insert(g);
                }
                None => errors.push(RowError::new(line, Some("groups"), format!("unknown group {name:?}"))),
            }
        }
        let current: BTreeSet<GroupIdx> = user.groups.iter().copied().collect();
        let groups = &index.snapshot.groups;
        let idp_refusal = |g: GroupIdx, verb: &str| {
            let group = &groups[g as usize];
            group.idp_synced.then(|| {
                RowError::new(
                    line,
                    Some("groups"),
                    format!(
                        "group {:?} is synced from an identity provider: {verb} {} there, not here",
                        group.name, user.account_id
                    ),
                )
            })
        };
        for &g in wanted.difference(&current) {
            match idp_refusal(g, "add") {
                Some(e) => errors.push(e),
                None => changes.push(change(ChangeKind::AddToGroup {
                    group_id: groups[g as usize].id.clone(),
                    group_name: groups[g as usize].name.clone(),
                })),
            }
        }
        if !options.add_only {
            for &g in current.difference(&wanted) {
                match idp_refusal(g, "remove") {
                    Some(e) => errors.push(e),
                    None => changes.push(change(ChangeKind::RemoveFromGroup {
                        group_id: groups[g as usize].id.clone(),
                        group_name: groups[g as usize].name.clone(),
                    })),
                }
            }
        }
    }
    if errors.is_empty() { Ok((changes, notes)) } else { Err(errors) }
}

fn plan_invitation(row: &ImportRow, index: &SnapshotIndex<'_>) -> Result<RowPlan, Vec<RowError>> {
    let line = row.line;
    let Some(email) = &row.email else {
        let id = row.account_id.as_deref().unwrap_or_default();
        return Err(vec![RowError::new(
            line,
            Some("accountId"),
            format!("{id} is not in the organization (a removed user is invited back by email: add an email column)"),
        )]);
    };
    if let Some(s @ (UserStatus::Suspended | UserStatus::Deactivated)) = row.status {
        return Err(vec![RowError::new(
            line,
            Some("status"),
            format!("{email} is not in the organization: it can only be invited (active), not {}", s.label()),
        )]);
    }
    // Invitations join the organization's first directory, whose groups the row must name.
    let dir = 0u16;
    let mut errors = Vec::new();
    let (mut group_ids, mut group_names) = (Vec::new(), Vec::new());
    for name in row.groups.iter().flatten() {
        match index.group(dir, name) {
            Some((_, g)) if g.idp_synced => errors.push(RowError::new(
                line,
                Some("groups"),
                format!("group {:?} is synced from an identity provider: add {email} there, not here", g.name),
            )),
            Some((_, g)) if !group_ids.contains(&g.id) => {
                group_ids.push(g.id.clone());
                group_names.push(g.name.clone());
            }
            Some(_) => {}
            None => errors.push(RowError::new(line, Some("groups"), format!("unknown group {name:?}"))),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let change = Change {
        line,
        account_id: row.account_id.clone(),
        email: Some(email.clone()),
        directory_id: index.directory_id(dir),
        kind: ChangeKind::Invite { group_ids, group_names },
    };
    Ok((vec![change], Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::export::write_export_csv;
    use crate::users::filter::tests::org;

    fn plan(csv: &str) -> ImportPlan {
        plan_opts(csv, ImportOptions::default())
    }

    fn plan_opts(csv: &str, options: ImportOptions) -> ImportPlan {
        let file = parse_import_csv(csv.as_bytes()).expect("file parses");
        plan_import(&file, &org(), options)
    }

    fn rendered(p: &ImportPlan) -> Vec<String> {
        p.changes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn an_export_imports_back_as_an_empty_diff() {
        let s = org();
        let mut out = Vec::new();
        write_export_csv(&s, None, &mut out, || {}).unwrap();
        let file = parse_import_csv(&out).unwrap();
        assert_eq!(file.rows.len(), 4);
        let p = plan_import(&file, &s, ImportOptions::default());
        assert_eq!(p.errors, vec![]);
        assert_eq!(p.changes, vec![]);
    }

    #[test]
    fn groups_become_the_rows_groups_and_active_activates() {
        let p = plan(
            "email,groups,status\n\
             ann@acme.example,jira-users,\n\
             bob@contractor.example,jira-users;Confluence-Users,active\n\
             cat@acme.example,,active\n",
        );
        assert_eq!(p.errors, vec![]);
        assert_eq!(
            rendered(&p),
            [
                "line     2  - remove-group  ann@acme.example (acc-a)  from confluence-users",
                "line     3  ^ restore       bob@contractor.example (acc-b)  (suspended → active)",
                "line     4  ^ enable        cat@acme.example (acc-c)  (deactivated → active)",
                "line     3  + add-group     bob@contractor.example (acc-b)  to confluence-users",
            ]
        );
        assert_eq!(p.counts(), (1, 1, 2, 0));
        assert!(p.render().ends_with("4 changes: 1 group add, 1 group removal, 2 activations, 0 invitations\n"));
        // --add-only keeps ann in confluence-users.
        let p = plan_opts("email,groups\nann@acme.example,jira-users\n", ImportOptions { add_only: true });
        assert_eq!(p.changes, vec![]);
    }

    #[test]
    fn columns_left_out_are_left_alone_and_unknown_people_are_invited() {
        // No groups column: memberships untouched. Only status changes.
        let p = plan("accountId,status\nacc-b,active\n");
        assert_eq!(rendered(&p), ["line     2  ^ restore       bob@contractor.example (acc-b)  (suspended → active)"]);
        let p = plan("email,groups\nnew.hire@acme.example,jira-users;confluence-users\n");
        assert_eq!(
            p.changes[0].kind,
            ChangeKind::Invite {
                group_ids: vec!["g-jira".into(), "g-conf".into()],
                group_names: vec!["jira-users".into(), "confluence-users".into()]
            }
        );
        assert_eq!(p.changes[0].directory_id, "dir-1");
    }

    #[test]
    fn statuses_other_than_active_are_noted_not_applied() {
        let p = plan("email,status\nann@acme.example,suspended\ndan@acme.example,active\n");
        assert_eq!(p.changes, vec![]);
        assert_eq!(p.notes.len(), 1);
        assert_eq!(p.notes[0].line, 2);
        assert!(p.notes[0].message.contains("import only activates"), "{}", p.notes[0]);
    }

    #[test]
    fn every_row_is_validated_and_errors_name_their_line() {
        let p = plan(
            "email,accountId,groups,status\n\
             ann@acme.example,,jira-users,\n\
             bob@,,,\n\
             ,acc-zz,,\n\
             dan@acme.example,,no-such-group,\n\
             cat@acme.example,,,sleeping\n\
             ann@acme.example,,,\n\
             other@acme.example,acc-b,,\n",
        );
        let lines: Vec<(u64, &str)> = p.errors.iter().map(|e| (e.line, e.message.as_str())).collect();
        let has = |line: u64, text: &str| lines.iter().any(|(l, m)| *l == line && m.contains(text));
        assert!(has(3, "\"bob@\" is not an email address"), "{lines:?}");
        assert!(has(4, "acc-zz is not in the organization"), "{lines:?}");
        assert!(has(5, "unknown group \"no-such-group\""), "{lines:?}");
        assert!(has(6, "\"sleeping\" is not a status"), "{lines:?}");
        assert!(has(7, "duplicate row: accountId acc-a is already on line 2"), "{lines:?}");
        assert!(has(2, "duplicate row"), "{lines:?}");
        assert!(has(8, "differs from the organization's bob@contractor.example"), "{lines:?}");
        assert!(p.errors.iter().all(|e| e.line > 0));
        let shown = p.errors.iter().find(|e| e.line == 3).unwrap().to_string();
        assert_eq!(shown, "line 3, column email: \"bob@\" is not an email address");
    }

    #[test]
    fn idp_synced_groups_are_refused_in_either_direction() {
        let p = plan(
            "email,groups\ndan@acme.example,jira-users\nann@acme.example,jira-users;confluence-users;okta-engineering\n",
        );
        let msgs: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with(
            "line 2 (dan@acme.example), column groups: group \"okta-engineering\" is synced from an identity provider: remove"
        ));
        assert!(
            msgs[1].starts_with(
                "line 3 (ann@acme.example), column groups: group \"okta-engineering\" is synced from an identity provider: add"
            )
        );
        // Rows with errors contribute nothing (dan's jira-users add is not planned).
        assert_eq!(p.changes, vec![]);
    }

    #[test]
    fn every_activity_column_an_export_writes_is_read_only_on_import() {
        // Modelled products, products seatwarden doesn't model (Atlassian's own key) and API tokens.
        let csv = b"email,lastActive.jira-software,lastActive.loom,lastActive.api-token,groups\nann@acme.example,,,2026-11-20T00:00:00Z,jira-users\n";
        let file = parse_import_csv(&csv[..]).unwrap();
        assert_eq!(file.rows.len(), 1);
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        assert!(parse_import_csv(&b"email,lastActive.Loom!\n"[..]).unwrap_err().to_string().contains("unknown column"));
    }

    #[test]
    fn file_level_problems_are_refused_before_any_row() {
        let err = |bytes: &[u8]| parse_import_csv(bytes).unwrap_err().to_string();
        assert_eq!(
            err(b"email;groups\nann@acme.example;jira-users\n"),
            "line 1: the columns are separated by semicolons: use commas (RFC 4180 CSV)"
        );
        assert_eq!(err(b"email\tgroups\n"), "line 1: the columns are separated by tabs: use commas (RFC 4180 CSV)");
        assert!(err(b"ann@acme.example,jira-users\n").starts_with("line 1: no header:"));
        assert!(err(b"email,colour\n").contains("unknown column \"colour\""));
        assert!(err(b"email,groups,groups\n").contains("column groups: the column appears twice"));
        assert!(err(b"").contains("empty"));
        assert!(err(b"\xFF\xFEe\0m\0").contains("UTF-16"));
        let latin1 = b"email,groups\nann@acme.example,jira-users\nb\xE9a@acme.example,\n";
        assert_eq!(
            err(latin1),
            "line 3: byte 0xE9 at character 2 is not UTF-8: save the file as CSV UTF-8 (nothing was read)"
        );
    }

    #[test]
    fn a_utf8_bom_is_accepted() {
        let with_bom = parse_import_csv(b"\xEF\xBB\xBFemail,groups\nann@acme.example,jira-users\n").unwrap();
        let without = parse_import_csv(b"email,groups\nann@acme.example,jira-users\n").unwrap();
        assert_eq!(with_bom, without);
        assert_eq!(with_bom.rows[0].email.as_deref(), Some("ann@acme.example"));
    }

    /// An editor's line numbers, whatever the line ends: the csv crate alone says 11 for line 12
    /// of a CRLF file.
    #[test]
    fn line_numbers_are_an_editors_with_lf_crlf_and_cr() {
        for eol in ["\n", "\r\n", "\r"] {
            let mut text = format!("email,status{eol}");
            for i in 2..12 {
                text.push_str(&format!("u{i}@acme.example,active{eol}"));
            }
            text.push_str(&format!("bad@acme.example,sleeping{eol}"));
            let file = parse_import_csv(text.as_bytes()).unwrap();
            assert_eq!(file.errors.len(), 1, "{eol:?}: {:?}", file.errors);
            assert_eq!(
                file.errors[0].to_string(),
                "line 12 (bad@acme.example), column status: \"sleeping\" is not a status (active, suspended, deactivated, invited-never-active)",
                "{eol:?}"
            );
            assert_eq!(file.rows.iter().map(|r| r.line).collect::<Vec<_>>(), (2..12).collect::<Vec<u64>>());
        }
        let multiline =
            "email,groups\r\n\"a@acme.example\",\"jira-users;\r\nconfluence-users\"\r\nb@acme.example,x,y\r\n";
        let file = parse_import_csv(multiline.as_bytes()).unwrap();
        assert_eq!(file.rows[0].line, 2);
        assert_eq!(file.errors[0].line, 4, "{:?}", file.errors);
        assert!(file.errors[0].to_string().starts_with("line 4 (b@acme.example): has 3 fields"), "{}", file.errors[0]);
    }

    #[test]
    fn an_unclosed_quote_is_reported_where_it_opens() {
        let text = "email,name,groups\r\nann@acme.example,Ann,jira-users\r\nbob@acme.example,\"Bob, Jr.,jira-users\r\ncat@acme.example,Cat,\r\n";
        let err = parse_import_csv(text.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 3: the quote opened at character 18 is never closed"), "{err}");
        // Doubled quotes inside a quoted field are not an opening.
        assert!(parse_import_csv(b"email,name\nann@acme.example,\"Ann \"\"A\"\"\"\n").unwrap().errors.is_empty());
    }

    #[test]
    fn rows_with_the_wrong_field_count_are_errors_by_line() {
        let file = parse_import_csv(b"email,groups\nann@acme.example,jira-users\nbob@contractor.example\n\n").unwrap();
        assert_eq!(file.rows.len(), 1);
        assert_eq!(
            file.errors,
            vec![RowError::new(3, None, "has 1 fields, the header has 2").about(Some("bob@contractor.example"))]
        );
    }
}
