//! Recording: where the ledger and the audit trail live. In the cluster, the ledger is a set of
//! ConfigMaps (sharded by account id) and the audit trail is `LifecycleRun` objects; without a
//! cluster (`demo`, `plan`, the command line) both are files in a local folder.

pub mod audit;
pub mod ledger_store;
pub mod names;

pub use audit::{AuditSink, ClusterAudit, FolderAudit, RunRecord};
pub use ledger_store::{ConfigMapLedgerStore, FolderLedgerStore, LedgerStore};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("ledger shard {name} does not parse: {message}")]
    Corrupt { name: String, message: String },
}

impl RecordError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        RecordError::Io { path: path.display().to_string(), source }
    }
}
