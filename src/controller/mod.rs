//! The operator: a kube-runtime Controller on LifecyclePolicy, its schedule, status, events,
//! leader election and HTTP endpoints.

pub mod http;
pub mod schedule;
