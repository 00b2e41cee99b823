//! Wire types of Tessera: the RFC error codes, validated newtypes, form parsing,
//! token requests and responses, and the metadata/JWKS documents. No I/O lives here.

pub mod error;
pub mod form;
pub mod metadata;
pub mod newtypes;
pub mod scope;
pub mod token;

pub use error::ErrorCode;
pub use form::{Form, FormError};
pub use newtypes::{ClientId, ClientSecret, CodeChallenge, CodeVerifier, RedirectUri};
pub use scope::Scope;
pub use token::{GrantType, IntrospectionResponse, TokenRequest, TokenResponse};
