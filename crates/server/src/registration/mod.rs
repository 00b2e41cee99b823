//! Dynamic client registration (RFC 7591) and its management protocol (RFC 7592):
//! client metadata parsed and checked field by field, with the RFC's error codes.

pub mod error;
pub mod metadata;

pub use error::RegistrationError;
pub use metadata::{response_body, MetadataRequest};
