//! Persists the ledger as shards: ConfigMaps in the cluster, files in a folder without one.
//!
//! The shard count is fixed, and a user always hashes to the same shard, so a crash between two
//! shard writes leaves every user's record either old or new, never mixed; the next run writes
//! again. At 100,000 users with records, 64 shards stay far below the 1 MiB object limit.

use std::{collections::BTreeMap, path::PathBuf};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};

use super::RecordError;

pub const LEDGER_SHARDS: usize = 64;
const DATA_KEY: &str = "ledger.json";
const FIELD_MANAGER: &str = "seatwarden-ledger";

/// Where the ledger's shards (serialized JSON, one per shard index) are kept.
pub trait LedgerStore: Send + Sync {
    /// Every stored shard, by index.
    fn load(&self) -> impl Future<Output = Result<BTreeMap<usize, String>, RecordError>> + Send;
    /// Writes the given shards; shards absent from `shards` are removed.
    fn save(&self, shards: BTreeMap<usize, String>) -> impl Future<Output = Result<(), RecordError>> + Send;
}

/// The ledger of one organization as ConfigMaps `seatwarden-ledger-<org>-<index>` in one namespace.
#[derive(Clone)]
pub struct ConfigMapLedgerStore {
    api: Api<ConfigMap>,
    organization: String,
}

impl ConfigMapLedgerStore {
    pub fn new(client: Client, namespace: &str, organization: &str) -> Self {
        Self { api: Api::namespaced(client, namespace), organization: organization.to_owned() }
    }

    fn name(&self, index: usize) -> String {
        super::names::object_name(&format!("seatwarden-ledger-{}", self.organization), &format!("{index:02}"))
    }

    fn selector(&self) -> String {
        format!("app.kubernetes.io/component=ledger,seatwarden.io/organization={}", self.label())
    }

    /// The organization label (its name, shortened when longer than a label value may be).
    fn label(&self) -> String {
        super::names::label_value(&self.organization)
    }
}

impl LedgerStore for ConfigMapLedgerStore {
    async fn load(&self) -> Result<BTreeMap<usize, String>, RecordError> {
        let list = self.api.list(&ListParams::default().labels(&self.selector())).await?;
        let mut out = BTreeMap::new();
        for cm in list {
            let name = cm.name_any();
            let index: usize = cm
                .labels()
                .get("seatwarden.io/shard")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| RecordError::Corrupt { name: name.clone(), message: "no shard label".into() })?;
            let data = cm.data.as_ref().and_then(|d| d.get(DATA_KEY)).cloned().unwrap_or_default();
            out.insert(index, data);
        }
        Ok(out)
    }

    async fn save(&self, shards: BTreeMap<usize, String>) -> Result<(), RecordError> {
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        for (index, json) in &shards {
            let name = self.name(*index);
            let cm = serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "labels": {
                        "app.kubernetes.io/name": "seatwarden",
                        "app.kubernetes.io/component": "ledger",
                        "seatwarden.io/organization": self.label(),
                        "seatwarden.io/shard": index.to_string(),
                    }
                },
                "data": { DATA_KEY: json }
            });
            self.api.patch(&name, &pp, &Patch::Apply(&cm)).await?;
        }
        for (index, _) in self.load().await? {
            if !shards.contains_key(&index) {
                match self.api.delete(&self.name(index), &DeleteParams::default()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

/// The ledger as files `<dir>/ledger-<index>.json`, for `demo`, `plan --ledger` and the CLI.
#[derive(Clone)]
pub struct FolderLedgerStore {
    dir: PathBuf,
}

impl FolderLedgerStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("ledger-{index:02}.json"))
    }
}

impl LedgerStore for FolderLedgerStore {
    async fn load(&self) -> Result<BTreeMap<usize, String>, RecordError> {
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(RecordError::io(&self.dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| RecordError::io(&self.dir, e))?.path();
            let Some(index) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("ledger-"))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse().ok())
            else {
                continue;
            };
            out.insert(index, std::fs::read_to_string(&path).map_err(|e| RecordError::io(&path, e))?);
        }
        Ok(out)
    }

    async fn save(&self, shards: BTreeMap<usize, String>) -> Result<(), RecordError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| RecordError::io(&self.dir, e))?;
        for (index, json) in &shards {
            // Write then rename, so a crash never leaves a half-written shard.
            let path = self.path(*index);
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, json).map_err(|e| RecordError::io(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| RecordError::io(&path, e))?;
        }
        for (index, _) in self.load().await? {
            if !shards.contains_key(&index) {
                let path = self.path(index);
                std::fs::remove_file(&path).map_err(|e| RecordError::io(&path, e))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn folder_store_round_trips_and_drops_absent_shards() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderLedgerStore::new(dir.path().join("ledger"));
        assert!(store.load().await.unwrap().is_empty());
        store.save(BTreeMap::from([(0, "{\"a\":1}".to_owned()), (5, "{}".to_owned())])).await.unwrap();
        assert_eq!(store.load().await.unwrap().len(), 2);
        store.save(BTreeMap::from([(5, "{\"b\":2}".to_owned())])).await.unwrap();
        let back = store.load().await.unwrap();
        assert_eq!(back, BTreeMap::from([(5, "{\"b\":2}".to_owned())]));
    }
}
