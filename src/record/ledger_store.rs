//! Persists the ledger as shards: ConfigMaps in the cluster, files in a folder without one.
//!
//! The shard count is fixed, and a user always hashes to the same shard, so a crash between two
//! shard writes leaves every user's record either old or new, never mixed; the next run writes
//! again. At 100,000 users with records, 64 shards stay far below the 1 MiB object limit. Only
//! shards that changed are written, each conditionally on the version last seen.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, ListParams, PostParams, Preconditions},
};

use super::{Fence, RecordError};

pub const LEDGER_SHARDS: usize = 64;
const DATA_KEY: &str = "ledger.json";
const FIELD_MANAGER: &str = "seatwarden-ledger";

/// One stored shard: its JSON and the version it was stored at (the ConfigMap's resourceVersion;
/// a content hash for a folder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub json: String,
    pub version: String,
}

/// What a conditional write did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Put {
    Written,
    /// The shard is no longer at the expected version: someone else wrote it. Nothing was written.
    Conflict,
}

/// Where the ledger's shards (serialized JSON, one per shard index) are kept. Every write is
/// conditional on the version last read or written (optimistic concurrency), and fenced: a
/// process that cannot confirm it is the leader writes nothing (DESIGN invariant 10).
pub trait LedgerStore: Send + Sync {
    /// Every stored shard, by index; remembered as the base of later writes.
    fn load(&self) -> impl Future<Output = Result<BTreeMap<usize, Stored>, RecordError>> + Send;
    /// One shard as stored now (not remembered as a base).
    fn load_shard(&self, index: usize) -> impl Future<Output = Result<Option<Stored>, RecordError>> + Send;
    /// The shard as this store last loaded or wrote it.
    fn base(&self, index: usize) -> Option<Stored>;
    /// Writes (`Some`) or deletes (`None`) shard `index` if it is still at version `expected`
    /// (`None`: it must not exist).
    fn put(
        &self,
        index: usize,
        json: Option<&str>,
        expected: Option<&str>,
    ) -> impl Future<Output = Result<Put, RecordError>> + Send;
}

/// What a store last saw of each shard.
#[derive(Default)]
struct Bases(Mutex<BTreeMap<usize, Stored>>);

impl Bases {
    fn get(&self, index: usize) -> Option<Stored> {
        self.0.lock().expect("bases lock").get(&index).cloned()
    }

    fn set(&self, index: usize, stored: Option<Stored>) {
        let mut b = self.0.lock().expect("bases lock");
        match stored {
            Some(s) => b.insert(index, s),
            None => b.remove(&index),
        };
    }

    fn replace(&self, all: &BTreeMap<usize, Stored>) {
        *self.0.lock().expect("bases lock") = all.clone();
    }
}

/// The ledger of one organization as ConfigMaps `seatwarden-ledger-<org>-<index>` in one namespace.
#[derive(Clone)]
pub struct ConfigMapLedgerStore {
    api: Api<ConfigMap>,
    organization: String,
    fence: Arc<dyn Fence>,
    bases: Arc<Bases>,
}

impl ConfigMapLedgerStore {
    pub fn new(client: Client, namespace: &str, organization: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            organization: organization.to_owned(),
            fence: super::sole_writer(),
            bases: Default::default(),
        }
    }

    /// Confirms `fence` before every write.
    pub fn fenced(mut self, fence: Arc<dyn Fence>) -> Self {
        self.fence = fence;
        self
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

    fn stored(cm: &ConfigMap) -> Stored {
        Stored {
            json: cm.data.as_ref().and_then(|d| d.get(DATA_KEY)).cloned().unwrap_or_default(),
            version: cm.resource_version().unwrap_or_default(),
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(e) if e.code == 409)
}

impl LedgerStore for ConfigMapLedgerStore {
    async fn load(&self) -> Result<BTreeMap<usize, Stored>, RecordError> {
        let list = self.api.list(&ListParams::default().labels(&self.selector())).await?;
        let mut out = BTreeMap::new();
        for cm in list {
            let name = cm.name_any();
            let index: usize = cm
                .labels()
                .get("seatwarden.io/shard")
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| RecordError::Corrupt { name: name.clone(), message: "no shard label".into() })?;
            out.insert(index, Self::stored(&cm));
        }
        self.bases.replace(&out);
        Ok(out)
    }

    async fn load_shard(&self, index: usize) -> Result<Option<Stored>, RecordError> {
        Ok(self.api.get_opt(&self.name(index)).await?.as_ref().map(Self::stored))
    }

    fn base(&self, index: usize) -> Option<Stored> {
        self.bases.get(index)
    }

    async fn put(&self, index: usize, json: Option<&str>, expected: Option<&str>) -> Result<Put, RecordError> {
        self.fence.confirm().await.map_err(RecordError::Fenced)?;
        let name = self.name(index);
        let Some(json) = json else {
            let Some(version) = expected else { return Ok(Put::Written) };
            let dp = DeleteParams {
                preconditions: Some(Preconditions { resource_version: Some(version.to_owned()), uid: None }),
                ..Default::default()
            };
            return match self.api.delete(&name, &dp).await {
                Ok(_) => {
                    self.bases.set(index, None);
                    Ok(Put::Written)
                }
                Err(kube::Error::Api(e)) if e.code == 404 => Ok(Put::Conflict),
                Err(e) if is_conflict(&e) => Ok(Put::Conflict),
                Err(e) => Err(e.into()),
            };
        };
        let mut cm: ConfigMap = serde_json::from_value(serde_json::json!({
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
        }))
        .expect("a ConfigMap");
        let written = match expected {
            // Created only if absent: a shard someone else created meanwhile is a conflict.
            None => {
                self.api
                    .create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &cm)
                    .await
            }
            // Updated only at the version last seen: the server refuses (409) otherwise.
            Some(version) => {
                cm.metadata.resource_version = Some(version.to_owned());
                self.api
                    .replace(
                        &name,
                        &PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() },
                        &cm,
                    )
                    .await
            }
        };
        match written {
            Ok(cm) => {
                self.bases.set(index, Some(Self::stored(&cm)));
                Ok(Put::Written)
            }
            Err(e) if is_conflict(&e) => Ok(Put::Conflict),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(Put::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

/// The ledger as files `<dir>/ledger-<index>.json`, for `demo`, `plan --ledger` and the CLI. The
/// version of a shard is a hash of its content; the check before a write guards against another
/// process that wrote meanwhile (one machine, so no lock is needed for the demo and the CLI).
#[derive(Clone)]
pub struct FolderLedgerStore {
    dir: PathBuf,
    bases: Arc<Bases>,
}

impl FolderLedgerStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), bases: Default::default() }
    }

    fn path(&self, index: usize) -> PathBuf {
        self.dir.join(format!("ledger-{index:02}.json"))
    }

    fn read(&self, path: &std::path::Path) -> Result<Option<Stored>, RecordError> {
        match std::fs::read_to_string(path) {
            Ok(json) => Ok(Some(Stored { version: content_version(&json), json })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RecordError::io(path, e)),
        }
    }
}

fn content_version(json: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in json.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}-{}", json.len())
}

impl LedgerStore for FolderLedgerStore {
    async fn load(&self) -> Result<BTreeMap<usize, Stored>, RecordError> {
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.bases.replace(&out);
                return Ok(out);
            }
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
            if let Some(stored) = self.read(&path)? {
                out.insert(index, stored);
            }
        }
        self.bases.replace(&out);
        Ok(out)
    }

    async fn load_shard(&self, index: usize) -> Result<Option<Stored>, RecordError> {
        self.read(&self.path(index))
    }

    fn base(&self, index: usize) -> Option<Stored> {
        self.bases.get(index)
    }

    async fn put(&self, index: usize, json: Option<&str>, expected: Option<&str>) -> Result<Put, RecordError> {
        let path = self.path(index);
        let now = self.read(&path)?;
        if now.as_ref().map(|s| s.version.as_str()) != expected {
            return Ok(Put::Conflict);
        }
        match json {
            None => {
                if now.is_some() {
                    std::fs::remove_file(&path).map_err(|e| RecordError::io(&path, e))?;
                }
                self.bases.set(index, None);
            }
            Some(json) => {
                std::fs::create_dir_all(&self.dir).map_err(|e| RecordError::io(&self.dir, e))?;
                // Write then rename, so a crash never leaves a half-written shard.
                let tmp = path.with_extension("json.tmp");
                std::fs::write(&tmp, json).map_err(|e| RecordError::io(&tmp, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| RecordError::io(&path, e))?;
                self.bases.set(index, Some(Stored { json: json.to_owned(), version: content_version(json) }));
            }
        }
        Ok(Put::Written)
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
        assert_eq!(store.put(0, Some("{\"a\":1}"), None).await.unwrap(), Put::Written);
        assert_eq!(store.put(5, Some("{}"), None).await.unwrap(), Put::Written);
        assert_eq!(store.load().await.unwrap().len(), 2);
        let v5 = store.base(5).unwrap().version;
        assert_eq!(store.put(5, Some("{\"b\":2}"), Some(&v5)).await.unwrap(), Put::Written);
        let v0 = store.base(0).unwrap().version;
        assert_eq!(store.put(0, None, Some(&v0)).await.unwrap(), Put::Written);
        let back: BTreeMap<usize, String> = store.load().await.unwrap().into_iter().map(|(i, s)| (i, s.json)).collect();
        assert_eq!(back, BTreeMap::from([(5, "{\"b\":2}".to_owned())]));
    }

    #[tokio::test]
    async fn a_write_at_a_stale_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mine = FolderLedgerStore::new(dir.path());
        let theirs = FolderLedgerStore::new(dir.path());
        mine.put(1, Some("{\"v\":1}"), None).await.unwrap();
        let v1 = mine.base(1).unwrap().version;
        theirs.load().await.unwrap();
        theirs.put(1, Some("{\"v\":2}"), Some(&v1)).await.unwrap();
        assert_eq!(mine.put(1, Some("{\"v\":3}"), Some(&v1)).await.unwrap(), Put::Conflict, "not a blind overwrite");
        assert_eq!(mine.put(1, Some("{\"v\":3}"), None).await.unwrap(), Put::Conflict, "not created over theirs");
        assert_eq!(mine.load_shard(1).await.unwrap().unwrap().json, "{\"v\":2}");
    }
}
