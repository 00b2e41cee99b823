//! The bank's endpoints. Every one needs a bearer token from Tessera; each demands
//! its scope and shows only the caller's own accounts (the token `sub`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use tessera_resource::{Bearer, RequireScope};

use super::db::{self, Transaction};
use super::error::ApiError;
use super::input::NewTransaction;
use super::Bank;

tessera_resource::scope!(pub TransactionsRead = "transactions:read");
tessera_resource::scope!(pub TransactionsWrite = "transactions:write");

/// `GET /accounts`: the caller's accounts with their balances.
pub async fn list_accounts(
    State(bank): State<Bank>,
    Bearer(claims): Bearer,
) -> Result<Json<Value>, ApiError> {
    claims.require_any(&["accounts:read", "transactions:read"])?;
    accounts_of(&bank, &claims.sub).await
}

/// The body of `GET /accounts` for the person `sub`, once the token has been checked.
pub async fn accounts_of(bank: &Bank, sub: &str) -> Result<Json<Value>, ApiError> {
    let accounts = db::accounts_of(&bank.pool, sub).await?;
    Ok(Json(json!({ "accounts": accounts })))
}

/// `GET /accounts/{id}/transactions`: one of the caller's accounts and its
/// transactions, newest first.
pub async fn list_transactions(
    State(bank): State<Bank>,
    RequireScope(claims, ..): RequireScope<TransactionsRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = db::account_of(&bank.pool, &claims.sub, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let transactions = db::transactions(&bank.pool, &account.id).await?;
    Ok(Json(
        json!({ "account": account, "transactions": transactions }),
    ))
}

/// `POST /accounts/{id}/transactions`: add a transaction to one of the caller's accounts.
pub async fn create_transaction(
    State(bank): State<Bank>,
    RequireScope(claims, ..): RequireScope<TransactionsWrite>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Transaction>), ApiError> {
    let account = db::account_of(&bank.pool, &claims.sub, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let new = NewTransaction::parse(&body)?;
    let transaction = Transaction {
        id: db::random_id("tx")?,
        account_id: account.id,
        date: new.date,
        description: new.description,
        category: new.category,
        amount_cents: new.amount_cents,
    };
    db::insert_transaction(&bank.pool, &transaction).await?;
    tracing::info!(account_id = %transaction.account_id, client_id = %claims.client_id, "transaction created");
    Ok((StatusCode::CREATED, Json(transaction)))
}
