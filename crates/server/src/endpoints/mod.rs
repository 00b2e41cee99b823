//! One thin file per endpoint.

pub mod account;
pub mod admin;
pub mod authorize;
pub mod consent;
pub mod feed;
pub mod introspect;
pub mod login;
pub mod metadata;
pub mod register;
pub mod revoke;
pub mod token;
