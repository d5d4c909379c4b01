//! An Atlassian Cloud simulator (issue: `seatwarden sim`).
