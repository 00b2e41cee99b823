//! Tessera's integration tests: one binary, one file per flow. Every test starts the
//! real server on port 0 with a fresh database and a pinned clock: a SQLite file, or
//! with `TESSERA_TEST_BACKEND=postgres` a PostgreSQL schema (see `helpers.rs`).

mod helpers;

mod admin_api;
mod authorize;
mod client_assertion;
mod client_auth;
mod client_credentials;
mod code_grant;
mod connected_apps;
mod database_pool;
mod interop;
mod introspection;
mod login_consent;
mod metadata;
mod partial_consent;
mod refresh;
mod registration;
mod revocation;
mod revocation_feed;
mod revocation_latency;
mod scale_out;
mod signing_keys;
mod store_contract;
mod time_limited;
mod walkthrough;
