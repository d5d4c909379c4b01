//! The one canonical set of Atlassian product keys, and every spelling the APIs use for them.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A billable Atlassian product. Manifests spell these in PascalCase; the APIs use several other
/// spellings (v1 `jira-software`, `jira-service-desk`; v2 `jira`, `jira-servicedesk`, ...), all
/// mapped by [`Product::from_api_key`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Product {
    JiraSoftware,
    JiraServiceManagement,
    JiraWorkManagement,
    JiraProductDiscovery,
    Confluence,
    Bitbucket,
    Opsgenie,
    Statuspage,
    Trello,
    Compass,
}

impl Product {
    pub const ALL: [Product; 10] = [
        Product::JiraSoftware,
        Product::JiraServiceManagement,
        Product::JiraWorkManagement,
        Product::JiraProductDiscovery,
        Product::Confluence,
        Product::Bitbucket,
        Product::Opsgenie,
        Product::Statuspage,
        Product::Trello,
        Product::Compass,
    ];

    /// Maps every key spelling seen in the Admin v1/v2, Jira and last-active APIs.
    pub fn from_api_key(key: &str) -> Option<Product> {
        let k = key.trim().to_ascii_lowercase();
        Some(match k.as_str() {
            "jira-software" | "jira" | "jira.software" | "jirasoftware" => Product::JiraSoftware,
            "jira-service-desk" | "jira-servicedesk" | "jira-service-management" | "jsm" | "jiraservicemanagement" => {
                Product::JiraServiceManagement
            }
            "jira-core" | "jira-work-management" | "jira-business" | "jiraworkmanagement" => {
                Product::JiraWorkManagement
            }
            "jira-product-discovery" | "jpd" | "jiraproductdiscovery" => Product::JiraProductDiscovery,
            "confluence" => Product::Confluence,
            "bitbucket" => Product::Bitbucket,
            "opsgenie" | "jira-ops" => Product::Opsgenie,
            "statuspage" => Product::Statuspage,
            "trello" => Product::Trello,
            "compass" => Product::Compass,
            _ => return None,
        })
    }

    /// The key the v2 Organizations API uses in `productAccess[].key`.
    pub fn v2_key(self) -> &'static str {
        match self {
            Product::JiraSoftware => "jira-software",
            Product::JiraServiceManagement => "jira-servicedesk",
            Product::JiraWorkManagement => "jira-core",
            Product::JiraProductDiscovery => "jira-product-discovery",
            Product::Confluence => "confluence",
            Product::Bitbucket => "bitbucket",
            Product::Opsgenie => "opsgenie",
            Product::Statuspage => "statuspage",
            Product::Trello => "trello",
            Product::Compass => "compass",
        }
    }

    /// The key the v1 users API and last-active-dates use.
    pub fn v1_key(self) -> &'static str {
        match self {
            Product::JiraServiceManagement => "jira-service-desk",
            other => other.v2_key(),
        }
    }

    /// A short label for people and for metric labels (bounded set).
    pub fn label(self) -> &'static str {
        match self {
            Product::JiraSoftware => "jira-software",
            Product::JiraServiceManagement => "jira-service-management",
            Product::JiraWorkManagement => "jira-work-management",
            Product::JiraProductDiscovery => "jira-product-discovery",
            Product::Confluence => "confluence",
            Product::Bitbucket => "bitbucket",
            Product::Opsgenie => "opsgenie",
            Product::Statuspage => "statuspage",
            Product::Trello => "trello",
            Product::Compass => "compass",
        }
    }

    /// The products a message names by their display name (case-insensitive), a name inside a
    /// longer one that is also named left out: "Jira Service Management is full" names Jira Service
    /// Management, not Jira.
    pub fn named_in(text: &str) -> Vec<Product> {
        let text = text.to_lowercase();
        let named: Vec<Product> =
            Product::ALL.into_iter().filter(|p| text.contains(&p.display_name().to_lowercase())).collect();
        named
            .iter()
            .copied()
            .filter(|p| {
                !named.iter().any(|q| {
                    q != p && q.display_name().len() > p.display_name().len() && {
                        let (long, short) = (q.display_name().to_lowercase(), p.display_name().to_lowercase());
                        long.contains(&short) && text.matches(&short).count() <= text.matches(&long).count()
                    }
                })
            })
            .collect()
    }

    /// The name a person reads in a notice or a reason.
    pub fn display_name(self) -> &'static str {
        match self {
            Product::JiraSoftware => "Jira",
            Product::JiraServiceManagement => "Jira Service Management",
            Product::JiraWorkManagement => "Jira Work Management",
            Product::JiraProductDiscovery => "Jira Product Discovery",
            Product::Confluence => "Confluence",
            Product::Bitbucket => "Bitbucket",
            Product::Opsgenie => "Opsgenie",
            Product::Statuspage => "Statuspage",
            Product::Trello => "Trello",
            Product::Compass => "Compass",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// A product key Atlassian sent that [`Product`] does not model (Loom, Atlas/`townsquare`, Rovo, Jira
/// Align, whatever Atlassian adds next): kept, never dropped, because activity there is activity.
///
/// Interned process-wide (two bytes, `Copy`), so a million users' activity stays compact and the key
/// reads back anywhere without a table at hand. The keys are a small, bounded set in practice; past
/// [`OtherProduct::CAPACITY`] distinct keys every further one shares a single "other" slot, so a
/// hostile listing cannot grow the table without bound (the activity still counts).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OtherProduct(u16);

static OTHER_KEYS: std::sync::LazyLock<std::sync::RwLock<Vec<&'static str>>> =
    std::sync::LazyLock::new(|| std::sync::RwLock::new(vec!["other"]));

impl OtherProduct {
    /// Distinct unknown keys kept by name; later ones share the slot named "other".
    pub const CAPACITY: usize = 1024;

    /// The interned key (lowercased, trimmed).
    pub fn intern(key: &str) -> OtherProduct {
        let key = key.trim().to_ascii_lowercase();
        let key = if key.is_empty() { "other".to_owned() } else { key };
        if let Some(i) = OTHER_KEYS.read().expect("product keys lock").iter().position(|k| *k == key) {
            return OtherProduct(i as u16);
        }
        let mut keys = OTHER_KEYS.write().expect("product keys lock");
        if let Some(i) = keys.iter().position(|k| *k == key) {
            return OtherProduct(i as u16);
        }
        if keys.len() >= Self::CAPACITY {
            return OtherProduct(0);
        }
        keys.push(Box::leak(key.into_boxed_str()));
        OtherProduct((keys.len() - 1) as u16)
    }

    /// The key as Atlassian spelled it (lowercased).
    pub fn key(self) -> &'static str {
        OTHER_KEYS.read().expect("product keys lock").get(usize::from(self.0)).copied().unwrap_or("other")
    }
}

impl fmt::Debug for OtherProduct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Other({:?})", self.key())
    }
}

/// A product key of an activity entry: a modelled [`Product`], or one seatwarden does not model.
/// Both count as activity; only modelled products have rules, licensed groups and prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProductKey {
    Known(Product),
    Other(OtherProduct),
}

impl ProductKey {
    /// Any spelling an API uses: a modelled product when known, else the key kept as is.
    pub fn from_api_key(key: &str) -> ProductKey {
        match Product::from_api_key(key) {
            Some(p) => ProductKey::Known(p),
            None => ProductKey::Other(OtherProduct::intern(key)),
        }
    }

    pub fn known(self) -> Option<Product> {
        match self {
            ProductKey::Known(p) => Some(p),
            ProductKey::Other(_) => None,
        }
    }

    /// A short label for people (the API key for products seatwarden does not model).
    pub fn label(self) -> &'static str {
        match self {
            ProductKey::Known(p) => p.label(),
            ProductKey::Other(o) => o.key(),
        }
    }

    /// The name a person reads.
    pub fn display_name(self) -> &'static str {
        match self {
            ProductKey::Known(p) => p.display_name(),
            ProductKey::Other(o) => o.key(),
        }
    }
}

impl From<Product> for ProductKey {
    fn from(p: Product) -> Self {
        ProductKey::Known(p)
    }
}

impl PartialEq<Product> for ProductKey {
    fn eq(&self, other: &Product) -> bool {
        *self == ProductKey::Known(*other)
    }
}

impl fmt::Display for ProductKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// Serialized as the product's label (`jira-software`, `loom`): readable, and an unknown key
/// survives a round trip.
impl Serialize for ProductKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ProductKey::Known(p) => p.serialize(s),
            ProductKey::Other(o) => s.serialize_str(o.key()),
        }
    }
}

impl<'de> Deserialize<'de> for ProductKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        let known = Product::ALL.iter().find(|p| format!("{p:?}") == key).copied();
        Ok(known.map(ProductKey::Known).unwrap_or_else(|| ProductKey::from_api_key(&key)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_api_spelling_maps_back() {
        for p in Product::ALL {
            assert_eq!(Product::from_api_key(p.v1_key()), Some(p));
            assert_eq!(Product::from_api_key(p.v2_key()), Some(p));
            assert_eq!(Product::from_api_key(p.label()), Some(p));
        }
        assert_eq!(Product::from_api_key("jira-service-desk"), Some(Product::JiraServiceManagement));
        assert_eq!(Product::from_api_key("JIRA"), Some(Product::JiraSoftware));
        assert_eq!(Product::from_api_key("hipchat"), None);
    }

    #[test]
    fn messages_name_products_by_their_longest_name() {
        use Product::*;
        assert_eq!(
            Product::named_in("Jira Service Management has reached its user limit of 51"),
            [JiraServiceManagement]
        );
        assert_eq!(Product::named_in("License limit exceeded: jira is full"), [JiraSoftware]);
        assert_eq!(
            Product::named_in("Jira and Jira Service Management are full"),
            [JiraSoftware, JiraServiceManagement]
        );
        assert_eq!(Product::named_in("the number of licensed users is exceeded"), []);
    }

    #[test]
    fn unknown_keys_are_kept_interned_and_round_trip() {
        let loom = ProductKey::from_api_key("Loom");
        assert_eq!(loom, ProductKey::from_api_key("loom"), "one slot per key");
        assert_ne!(loom, ProductKey::from_api_key("townsquare"));
        assert_eq!(loom.label(), "loom");
        assert_eq!(loom.known(), None);
        assert_eq!(ProductKey::from_api_key("jira"), ProductKey::Known(Product::JiraSoftware));
        for key in [loom, ProductKey::Known(Product::Confluence)] {
            let json = serde_json::to_string(&key).unwrap();
            assert_eq!(serde_json::from_str::<ProductKey>(&json).unwrap(), key, "{json}");
        }
        assert_eq!(std::mem::size_of::<ProductKey>(), 4);
    }
}
