//! Kubernetes names and label values derived from the names people choose.
//!
//! A policy or organization name may be up to 253 characters, a label value only 63 and an object
//! name 253: a derived value that is too long is shortened to a prefix of the name and a hash of the
//! whole of it, so it stays unique (two long names that share the prefix differ in the hash),
//! deterministic (every replica and every run derives the same value) and valid.

/// The longest label value Kubernetes accepts.
pub const MAX_LABEL_VALUE: usize = 63;
/// The longest object name (a DNS subdomain).
pub const MAX_OBJECT_NAME: usize = 253;

/// 64-bit FNV-1a: stable across Rust versions and processes (unlike the std hasher), and enough to
/// tell names apart.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `s` if it fits in `max` characters, else a prefix of it, `-` and 16 hex digits of its hash.
fn shortened(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let hash = format!("{:016x}", fnv1a(s));
    let mut cut = max - hash.len() - 1;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    // The separator must follow an alphanumeric character for the value to stay valid.
    let prefix = s[..cut].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    if prefix.is_empty() { hash } else { format!("{prefix}-{hash}") }
}

/// The label value for a name (`seatwarden.io/policy`, `seatwarden.io/organization`): the name
/// itself when it fits, else shortened. Selecting by it may match another name only through a hash
/// collision, so readers still compare the full name kept in the object.
pub fn label_value(name: &str) -> String {
    shortened(name, MAX_LABEL_VALUE)
}

/// An object name `<base>-<suffix>` that fits, shortening `base` when needed (the suffix, a run id
/// or a shard index, is kept whole so names still sort and tell pages apart).
pub fn object_name(base: &str, suffix: &str) -> String {
    let room = MAX_OBJECT_NAME.saturating_sub(suffix.len() + 1);
    format!("{}-{suffix}", shortened(base, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_label_value(v: &str) -> bool {
        let re = regex::Regex::new(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$").unwrap();
        v.len() <= MAX_LABEL_VALUE && re.is_match(v)
    }

    #[test]
    fn short_names_are_kept_as_they_are() {
        assert_eq!(label_value("reclaim-inactive"), "reclaim-inactive");
        let exactly = "a".repeat(63);
        assert_eq!(label_value(&exactly), exactly);
        assert_eq!(object_name("p", "20261125t100000z-1a2b-1"), "p-20261125t100000z-1a2b-1");
    }

    #[test]
    fn long_names_are_shortened_uniquely_deterministically_and_validly() {
        let base = "reclaim-inactive-licenses-of-the-engineering-department-in-the-emea-region";
        let a = format!("{base}-policy-a");
        let b = format!("{base}-policy-b");
        let (la, lb) = (label_value(&a), label_value(&b));
        assert_eq!(la.len(), 63);
        assert!(valid_label_value(&la) && valid_label_value(&lb), "{la} / {lb}");
        assert_ne!(la, lb, "names that share a long prefix stay apart");
        assert_eq!(la, label_value(&a), "deterministic");
        assert!(la.starts_with("reclaim-inactive-licenses"), "readable: {la}");
        // A cut right after a '-' or '.' doesn't leave the separator doubled or the value invalid.
        for n in 40..80 {
            let name = format!("{}.x-y", "ab-".repeat(n));
            assert!(valid_label_value(&label_value(&name)), "{}", label_value(&name));
        }
        // Object names keep their suffix whole and stay within 253 characters.
        let long = "p".repeat(253);
        let name = object_name(&long, "20261125t100000z-1a2b-12");
        assert!(name.len() <= MAX_OBJECT_NAME && name.ends_with("-20261125t100000z-1a2b-12"), "{name}");
        assert_ne!(name, object_name(&format!("{long}q"), "20261125t100000z-1a2b-12"));
    }
}
