//! Recording: where the ledger and the audit trail live. In the cluster, the ledger is a set of
//! ConfigMaps (sharded by account id) and the audit trail is `LifecycleRun` objects; without a
//! cluster (`demo`, `plan`, the command line) both are files in a local folder.

pub mod audit;
pub mod ledger_store;
pub mod names;

pub use audit::{AuditSink, ClusterAudit, FolderAudit, RunRecord};
pub use ledger_store::{ConfigMapLedgerStore, FolderLedgerStore, LedgerStore, Put, Stored};

use std::{future::Future, pin::Pin, sync::Arc};

pub type FenceFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Only the leader writes (DESIGN invariant 10): confirmed right before every write to Atlassian,
/// the ledger and the audit trail. `Err` says why this process may not write now.
pub trait Fence: Send + Sync {
    fn confirm(&self) -> FenceFuture<'_>;
}

/// No leader election: this process is the only writer.
pub struct SoleWriter;

impl Fence for SoleWriter {
    fn confirm(&self) -> FenceFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

/// A fence from a flag (tests, and replicas without a lease object to check).
pub struct FlagFence(pub Arc<std::sync::atomic::AtomicBool>);

impl Fence for FlagFence {
    fn confirm(&self) -> FenceFuture<'_> {
        let held = self.0.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move { if held { Ok(()) } else { Err("this replica does not hold the leader lease".into()) } })
    }
}

pub(crate) fn sole_writer() -> Arc<dyn Fence> {
    Arc::new(SoleWriter)
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("ledger shard {name} does not parse: {message}")]
    Corrupt { name: String, message: String },
    /// The fence refused: this process may not write (it is not, or no longer surely, the leader).
    #[error("write refused: {0}")]
    Fenced(String),
    /// Another writer changed what this one changed too: nothing is overwritten.
    #[error("{name}: changed by another writer at the same time ({detail}); not overwritten")]
    Conflict { name: String, detail: String },
    /// A failure point armed by a test fired: the run stops as if the process had crashed here.
    #[error("interrupted at failure point {0}")]
    Interrupted(&'static str),
}

impl RecordError {
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        RecordError::Io { path: path.display().to_string(), source }
    }
}
