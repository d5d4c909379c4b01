//! The pure planner: `(snapshot, policies, protections, mappings, ledger, now) → Plan`.
