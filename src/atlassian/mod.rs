//! The reqwest client for the Atlassian Cloud APIs (issue: Atlassian client). Yields a complete
//! [`crate::snapshot::DirectorySnapshot`] or an error; performs the v2 and User management writes.
