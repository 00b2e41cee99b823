//! `GET /`: the welcome page when not connected; otherwise the report, read from
//! the bank with the session's token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::bank_client::{BankData, CallError, Reconnect};
use super::chart::{bar_chart, Bar};
use super::pages::{
    render, AccountRow, Failure, FlowRow, MessagePage, ReportPage, TransactionRow, WelcomePage,
};
use super::report::{money, month_label, summarize, whole, Flow, Transaction};
use super::request::current_session;
use super::App;

/// How many of the latest transactions the report lists.
const RECENT: usize = 10;

pub async fn home(State(app): State<App>, headers: HeaderMap) -> Result<Response, Failure> {
    let (session, set_cookie) = current_session(&app, &headers)?;
    let mut session = session.lock().await;
    if session.tokens.is_none() {
        let page = WelcomePage {
            csrf: &session.csrf,
            scope: &app.config.scope,
        };
        return Ok(render(StatusCode::OK, &page, set_cookie));
    }
    match app.fetch_bank_data(&mut session).await {
        Ok(data) => {
            let scope = session
                .tokens
                .as_ref()
                .map(|t| t.scope.clone())
                .unwrap_or_default();
            Ok(render(
                StatusCode::OK,
                &report_page(session.csrf.clone(), scope, data),
                set_cookie,
            ))
        }
        Err(CallError::Reconnect(why)) => {
            Ok(reconnect_page(why, &session.csrf).respond(StatusCode::OK))
        }
        Err(CallError::Failed(message)) => Err(Failure::new(
            StatusCode::BAD_GATEWAY,
            "The bank could not be read",
            message,
        )),
    }
}

/// The page shown once the tokens are gone.
pub fn reconnect_page(why: Reconnect, csrf: &str) -> MessagePage {
    let page = match why {
        Reconnect::Revoked => MessagePage::new(
            "Access revoked — reconnect",
            &[
                "Tessera no longer accepts the tokens of the reports app: the access you granted was revoked.",
                "The app has forgotten its tokens. Connect again if you want a new report.",
            ],
        ),
        Reconnect::Expired => MessagePage::new(
            "Access expired — reconnect",
            &["The access you granted has expired. Connect again if you want a new report."],
        ),
    };
    page.with_connect(csrf)
}

fn flow_row(name: String, flow: &Flow) -> FlowRow {
    FlowRow {
        name,
        count: flow.count,
        income: money(flow.income_cents),
        spending: money(flow.spending_cents),
        net: money(flow.net_cents()),
    }
}

pub fn transaction_row(t: &Transaction) -> TransactionRow {
    TransactionRow {
        date: t.date.clone(),
        description: t.description.clone(),
        category: t.category.clone(),
        amount: money(t.amount_cents),
    }
}

fn report_page(csrf: String, scope: String, data: BankData) -> ReportPage {
    let summary = summarize(&data.transactions);
    let bars: Vec<Bar> = summary
        .months
        .iter()
        .map(|(month, flow)| Bar {
            label: month_label(month),
            value: flow.spending_cents,
            value_text: whole(flow.spending_cents),
        })
        .collect();
    let mut recent: Vec<&Transaction> = data.transactions.iter().collect();
    recent.sort_by(|a, b| b.date.cmp(&a.date));
    ReportPage {
        csrf,
        scope,
        notes: data.notes,
        accounts: data
            .accounts
            .iter()
            .map(|a| AccountRow {
                name: a.name.clone(),
                balance: money(a.balance_cents),
                currency: a.currency.clone(),
            })
            .collect(),
        chart: bar_chart("Spending per month", &bars),
        months: summary
            .months
            .iter()
            .map(|(m, f)| flow_row(month_label(m), f))
            .collect(),
        categories: summary
            .categories
            .iter()
            .map(|(c, f)| flow_row(c.clone(), f))
            .collect(),
        total: flow_row("Total".into(), &summary.total),
        recent: recent
            .into_iter()
            .take(RECENT)
            .map(transaction_row)
            .collect(),
    }
}
