//! One thin file per endpoint.

pub mod authorize;
pub mod consent;
pub mod introspect;
pub mod login;
pub mod metadata;
pub mod revoke;
pub mod token;
