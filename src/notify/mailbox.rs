//! A local mailbox: each message written as one file in a folder. Used by `demo`, by `plan` and in
//! tests; with no SMTP configured, the operator writes here too.

use std::{
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
};

use super::{DeliveryFuture, Message, Notifier, NotifyError};

pub struct MailboxNotifier {
    dir: PathBuf,
    seq: AtomicU64,
}

impl MailboxNotifier {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let existing = std::fs::read_dir(&dir)?.count() as u64;
        Ok(Self { dir, seq: AtomicU64::new(existing) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every message in the mailbox, oldest first.
    pub fn messages(&self) -> std::io::Result<Vec<Message>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| {
                let text = std::fs::read_to_string(p)?;
                serde_json::from_str(&text).map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))
            })
            .collect()
    }
}

impl Notifier for MailboxNotifier {
    fn deliver<'a>(&'a self, message: &'a Message) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let n = self.seq.fetch_add(1, Ordering::SeqCst);
            let to = message.to.first().map(String::as_str).unwrap_or("nobody");
            let safe: String =
                to.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '_' }).collect();
            let path = self.dir.join(format!("{n:06}-{safe}.json"));
            let json = serde_json::to_string_pretty(message).map_err(|e| NotifyError::Permanent(e.to_string()))?;
            tokio::fs::write(&path, json).await.map_err(|e| NotifyError::Transient(format!("{}: {e}", path.display())))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{Notice, render_notice_plain};

    #[tokio::test]
    async fn writes_one_file_per_message_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let mailbox = MailboxNotifier::new(dir.path().join("mail")).unwrap();
        let notice = Notice {
            account_id: "a1".into(),
            email: "jane@example.com".into(),
            display_name: "Jane".into(),
            organization: "Acme".into(),
            policy: "reclaim".into(),
            rule: "jira-idle".into(),
            action: "your Jira access will be removed".into(),
            reason: "no Jira activity for 94 days (threshold 60)".into(),
            due_at: "2026-12-09T00:00:00Z".parse().unwrap(),
            lead_time: "14d".into(),
            reply_to: Some("it@example.com".into()),
        };
        let m = render_notice_plain(&notice);
        mailbox.deliver(&m).await.unwrap();
        mailbox.deliver(&m).await.unwrap();
        let read = mailbox.messages().unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].to, vec!["jane@example.com".to_owned()]);
        assert!(read[0].subject.contains("2026-12-09"));
        assert!(read[0].body.contains("no Jira activity for 94 days"));
    }
}
