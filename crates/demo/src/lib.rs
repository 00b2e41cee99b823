//! The demo apps of the walkthrough: a bank that keeps alice's transactions (an OAuth
//! resource server, [`bank`]) and a third-party reports app that reads them with her
//! permission (an OAuth client, [`reports`]).

mod date;

pub mod bank;
pub mod reports;
