//! axum extractors: [`Bearer`] yields verified claims, [`RequireScope`] also demands
//! a scope. The token comes from the `Authorization` header only (RFC 6750 §2.1).

use std::marker::PhantomData;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::{BearerError, Claims, Verifier};

/// The claims of a verified bearer token.
#[derive(Debug, Clone)]
pub struct Bearer(pub Claims);

/// A scope, declared as a type with [`crate::scope!`].
pub trait ScopeName {
    const SCOPE: &'static str;
}

/// The claims of a verified bearer token that carries the scope `S`.
#[derive(Debug, Clone)]
pub struct RequireScope<S: ScopeName>(pub Claims, pub PhantomData<S>);

/// The token of an `Authorization: Bearer` header.
fn bearer_token<'a>(parts: &'a Parts, realm: &str) -> Result<&'a str, BearerError> {
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(BearerError::Missing {
            realm: realm.to_owned(),
        });
    };
    let invalid = |d: &str| BearerError::InvalidRequest {
        realm: realm.to_owned(),
        description: d.to_owned(),
    };
    if values.next().is_some() {
        return Err(invalid("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| invalid("the Authorization header is not ASCII"))?;
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(invalid(
            "the Authorization header is not Bearer credentials",
        ));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid(
            "the Authorization header is not Bearer credentials",
        ));
    }
    let token = token.trim();
    // RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
    {
        return Err(BearerError::invalid_token(
            realm,
            "the access token is malformed",
        ));
    }
    Ok(token)
}

impl<S> FromRequestParts<S> for Bearer
where
    Verifier: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Verifier::from_ref(state);
        let token = bearer_token(parts, verifier.realm())?;
        verifier.verify(token).await.map(Bearer)
    }
}

impl<S, T> FromRequestParts<S> for RequireScope<T>
where
    Verifier: FromRef<S>,
    S: Send + Sync,
    T: ScopeName,
{
    type Rejection = BearerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Bearer(claims) = Bearer::from_request_parts(parts, state).await?;
        claims.require(T::SCOPE)?;
        Ok(RequireScope(claims, PhantomData))
    }
}
