//! The body of `POST /accounts/{id}/transactions`, parsed into a valid new transaction.

use serde::Deserialize;

/// The largest amount accepted, either way: one million in the account's currency.
pub const MAX_AMOUNT_CENTS: i64 = 100_000_000;
const MAX_DESCRIPTION: usize = 140;
const MAX_CATEGORY: usize = 40;

/// Why a new transaction was refused; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInput {
    #[error(
        "the body must be a JSON object with date, description, category and amount_cents: {0}"
    )]
    Json(String),
    #[error("date must be a calendar date written YYYY-MM-DD, between 1970 and 2100")]
    Date,
    #[error("description must be 1 to {MAX_DESCRIPTION} characters, without control characters")]
    Description,
    #[error("category must be 1 to {MAX_CATEGORY} characters, without control characters")]
    Category,
    #[error("amount_cents must be a non-zero whole number of cents, at most {MAX_AMOUNT_CENTS} either way")]
    Amount,
}

impl InvalidInput {
    /// The field at fault, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::Json(_) => None,
            Self::Date => Some("date"),
            Self::Description => Some("description"),
            Self::Category => Some("category"),
            Self::Amount => Some("amount_cents"),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    date: String,
    description: String,
    category: String,
    amount_cents: i64,
}

/// A transaction to create, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransaction {
    pub date: String,
    pub description: String,
    pub category: String,
    pub amount_cents: i64,
}

fn text(value: &str, max: usize, error: InvalidInput) -> Result<String, InvalidInput> {
    let value = value.trim();
    let length = value.chars().count();
    if length == 0 || length > max || value.chars().any(char::is_control) {
        return Err(error);
    }
    Ok(value.to_owned())
}

impl NewTransaction {
    /// Parse and check a JSON body.
    pub fn parse(body: &[u8]) -> Result<Self, InvalidInput> {
        let raw: Raw =
            serde_json::from_slice(body).map_err(|e| InvalidInput::Json(e.to_string()))?;
        match crate::date::parse(&raw.date) {
            Some((year, _, _)) if (1970..=2100).contains(&year) => {}
            _ => return Err(InvalidInput::Date),
        }
        let description = text(&raw.description, MAX_DESCRIPTION, InvalidInput::Description)?;
        let category = text(&raw.category, MAX_CATEGORY, InvalidInput::Category)?;
        if raw.amount_cents == 0 || raw.amount_cents.unsigned_abs() > MAX_AMOUNT_CENTS as u64 {
            return Err(InvalidInput::Amount);
        }
        Ok(Self {
            date: raw.date,
            description,
            category,
            amount_cents: raw.amount_cents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewTransaction, InvalidInput> {
        NewTransaction::parse(body.as_bytes())
    }

    #[test]
    fn accepts_a_valid_transaction_and_trims_text() {
        let t = parse(
            r#"{"date":"2025-05-04","description":"  Coffee ","category":"Eating out","amount_cents":-350}"#,
        );
        assert_eq!(
            t,
            Ok(NewTransaction {
                date: "2025-05-04".into(),
                description: "Coffee".into(),
                category: "Eating out".into(),
                amount_cents: -350
            })
        );
    }

    #[test]
    fn names_the_field_at_fault() {
        let body = |date: &str, description: &str, category: &str, amount: &str| {
            format!(
                r#"{{"date":"{date}","description":"{description}","category":"{category}","amount_cents":{amount}}}"#
            )
        };
        let cases = [
            (body("2025-02-30", "x", "y", "1"), InvalidInput::Date),
            (body("1969-12-31", "x", "y", "1"), InvalidInput::Date),
            (body("05/04/2025", "x", "y", "1"), InvalidInput::Date),
            (
                body("2025-05-04", "   ", "y", "1"),
                InvalidInput::Description,
            ),
            (
                body("2025-05-04", "a\\u0000b", "y", "1"),
                InvalidInput::Description,
            ),
            (
                body("2025-05-04", &"d".repeat(141), "y", "1"),
                InvalidInput::Description,
            ),
            (body("2025-05-04", "x", "", "1"), InvalidInput::Category),
            (body("2025-05-04", "x", "y", "0"), InvalidInput::Amount),
            (
                body("2025-05-04", "x", "y", "-100000001"),
                InvalidInput::Amount,
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(parse(&json), Err(expected), "{json}");
        }
    }

    #[test]
    fn refuses_malformed_json_without_panicking() {
        for body in [
            "",
            "[]",
            "{",
            r#"{"date":"2025-05-04"}"#,
            r#"{"date":"2025-05-04","description":"x","category":"y","amount_cents":1.5}"#,
            r#"{"date":"2025-05-04","description":"x","category":"y","amount_cents":"12"}"#,
            r#"{"date":"2025-05-04","description":"x","category":"y","amount_cents":99999999999999999999}"#,
            r#"{"date":"2025-05-04","description":"x","category":"y","amount_cents":1,"owner":"bob"}"#,
        ] {
            assert!(matches!(parse(body), Err(InvalidInput::Json(_))), "{body}");
        }
    }
}
