//! `application/x-www-form-urlencoded` bodies and query strings, parsed strictly.
//!
//! RFC 6749 §3.1 and §3.2: parameters sent without a value are treated as omitted,
//! and request parameters MUST NOT be included more than once.

use std::collections::HashMap;

/// A parsed form: each parameter at most once, empty values dropped.
#[derive(Debug, Clone, Default)]
pub struct Form {
    params: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("parameter '{0}' is included more than once")]
    Repeated(String),
}

impl Form {
    /// Parse a form body or query string. Repeated parameters are refused.
    pub fn parse(input: &[u8]) -> Result<Self, FormError> {
        let mut params = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(input) {
            if value.is_empty() {
                continue;
            }
            if params.insert(key.to_string(), value.into_owned()).is_some() {
                return Err(FormError::Repeated(key.into_owned()));
            }
        }
        Ok(Self { params })
    }

    /// The value of a parameter, if it was sent with a value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Whether the form holds no parameter at all.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}
