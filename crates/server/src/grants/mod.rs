//! One module per grant type, each with the same shape: `handle(state, client, params)`
//! returning the token response.

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
