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
}
