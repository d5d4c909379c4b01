//! Seatwarden: the user lifecycle of an Atlassian Cloud organization as code.
//!
//! Data flows one way: **snapshot → plan → execute → record**.
//! - [`atlassian`] reads a complete [`snapshot::DirectorySnapshot`] and performs writes;
//! - [`policy`] plans, purely, from the snapshot, the policies and the [`ledger`];
//! - [`execute`] applies a plan under caps and budgets, recording before and after;
//! - [`controller`] runs it all on schedule from the custom resources in [`crd`].
//!
//! [`sim`] is an Atlassian Cloud simulator: a product feature and the test double for the rest.

pub mod action;
pub mod atlassian;
pub mod cli;
pub mod clock;
pub mod controller;
pub mod crd;
pub mod demo;
pub mod engine;
pub mod execute;
pub mod ledger;
pub mod manifests;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod product;
pub mod record;
pub mod sim;
pub mod snapshot;
pub mod tls;
pub mod users;
