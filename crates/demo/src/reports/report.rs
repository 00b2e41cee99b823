//! The report: the bank's data as the app reads it, and the totals per category and
//! per month computed from it.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An account as the bank lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Account {
    pub id: String,
    pub name: String,
    pub currency: String,
    pub balance_cents: i64,
}

/// A transaction as the bank lists it (negative amounts are spending).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub account_id: String,
    pub date: String,
    pub description: String,
    pub category: String,
    pub amount_cents: i64,
}

/// Money in and out of one category or month.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub count: usize,
    pub income_cents: i64,
    /// Spending as a positive number.
    pub spending_cents: i64,
}

impl Flow {
    fn add(&mut self, amount_cents: i64) {
        self.count += 1;
        if amount_cents >= 0 {
            self.income_cents = self.income_cents.saturating_add(amount_cents);
        } else {
            self.spending_cents = self
                .spending_cents
                .saturating_add(amount_cents.saturating_neg());
        }
    }

    pub fn net_cents(&self) -> i64 {
        self.income_cents.saturating_sub(self.spending_cents)
    }
}

/// Totals of a list of transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Per category, the biggest spending first.
    pub categories: Vec<(String, Flow)>,
    /// Per month (`YYYY-MM`), oldest first.
    pub months: Vec<(String, Flow)>,
    pub total: Flow,
}

/// Add up transactions per category and per month.
pub fn summarize(transactions: &[Transaction]) -> Summary {
    let mut categories: BTreeMap<&str, Flow> = BTreeMap::new();
    let mut months: BTreeMap<&str, Flow> = BTreeMap::new();
    let mut total = Flow::default();
    for t in transactions {
        let month = t.date.get(..7).unwrap_or(&t.date);
        categories
            .entry(&t.category)
            .or_default()
            .add(t.amount_cents);
        months.entry(month).or_default().add(t.amount_cents);
        total.add(t.amount_cents);
    }
    let mut categories: Vec<(String, Flow)> = categories
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    categories.sort_by(|(a, x), (b, y)| {
        y.spending_cents
            .cmp(&x.spending_cents)
            .then_with(|| a.cmp(b))
    });
    Summary {
        categories,
        months: months.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        total,
    }
}

/// An amount in cents as `-1,234.56`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", thousands(abs / 100), abs % 100)
}

/// An amount in cents rounded to whole units, as `1,235`.
pub fn whole(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!(
        "{sign}{}",
        thousands(abs / 100 + u64::from(abs % 100 >= 50))
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2025-03` as `Mar 2025`; anything else as it is.
pub fn month_label(month: &str) -> String {
    const NAMES: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let parsed = month
        .split_once('-')
        .and_then(|(y, m)| Some((y, NAMES.get(m.parse::<usize>().ok()?.checked_sub(1)?)?)));
    match parsed {
        Some((year, name)) if year.len() == 4 => format!("{name} {year}"),
        _ => month.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(date: &str, category: &str, amount_cents: i64) -> Transaction {
        Transaction {
            id: format!("tx-{date}-{amount_cents}"),
            account_id: "acc".into(),
            date: date.into(),
            description: "x".into(),
            category: category.into(),
            amount_cents,
        }
    }

    #[test]
    fn totals_per_category_and_month() {
        let summary = summarize(&[
            t("2025-03-25", "Income", 300_000),
            t("2025-03-02", "Groceries", -4_550),
            t("2025-04-01", "Housing", -120_000),
            t("2025-04-03", "Groceries", -2_000),
            t("2025-04-09", "Groceries", 500),
        ]);
        let flow = |count, income_cents, spending_cents| Flow {
            count,
            income_cents,
            spending_cents,
        };
        assert_eq!(
            summary.categories,
            vec![
                ("Housing".into(), flow(1, 0, 120_000)),
                ("Groceries".into(), flow(3, 500, 6_550)),
                ("Income".into(), flow(1, 300_000, 0)),
            ]
        );
        assert_eq!(
            summary.months,
            vec![
                ("2025-03".into(), flow(2, 300_000, 4_550)),
                ("2025-04".into(), flow(3, 500, 122_000))
            ]
        );
        assert_eq!(summary.total, flow(5, 300_500, 126_550));
        assert_eq!(summary.months[1].1.net_cents(), -121_500);
        assert_eq!(summarize(&[]).months, vec![]);
    }

    #[test]
    fn formats_money_and_months() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(-5), "-0.05");
        assert_eq!(money(123_456_789), "1,234,567.89");
        assert_eq!(money(i64::MIN), "-92,233,720,368,547,758.08");
        assert_eq!(whole(-123_450), "-1,235");
        assert_eq!(whole(99_949), "999");
        assert_eq!(month_label("2025-03"), "Mar 2025");
        assert_eq!(month_label("2025-13"), "2025-13");
        assert_eq!(month_label("junk"), "junk");
    }
}
