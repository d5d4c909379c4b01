//! The ledger: per organization and per user, what seatwarden did and must remember.
