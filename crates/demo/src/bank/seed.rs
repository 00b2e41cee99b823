//! Demo data: two accounts and about three months of varied transactions, derived
//! from a hash of the owner's name so that every person gets their own, stable story.

use crate::date::{civil_from_days, days_from_civil, format};

/// The first day of a demo history: the 1st of the month two months before
/// `today`'s, so the history holds two whole months and the current one.
pub fn history_start(today: i64) -> i64 {
    let (year, month, _) = civil_from_days(today);
    let (year, month) = if month > 2 {
        (year, month - 2)
    } else {
        (year - 1, month + 10)
    };
    days_from_civil(year, month, 1)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedAccount {
    pub name: &'static str,
    pub currency: &'static str,
    pub transactions: Vec<SeedTransaction>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedTransaction {
    pub date: String,
    pub description: String,
    pub category: &'static str,
    pub amount_cents: i64,
}

/// A small deterministic generator (SplitMix64) seeded with FNV-1a of a name.
struct Dice(u64);

impl Dice {
    fn for_name(name: &str) -> Self {
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        Self(hash)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A whole number in `low..=high`.
    fn between(&mut self, low: i64, high: i64) -> i64 {
        let span = (high - low + 1).max(1) as u64;
        low + (self.next() % span) as i64
    }

    /// True once in `n` times.
    fn one_in(&mut self, n: u64) -> bool {
        self.next() % n.max(1) == 0
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

const EMPLOYERS: [&str; 4] = [
    "Northwind Traders",
    "Contoso Ltd",
    "Fabrikam Inc",
    "Tailspin Toys",
];
const GROCERS: [&str; 4] = ["FreshMart", "Corner Grocer", "Green Basket", "Daily Market"];
const RESTAURANTS: [&str; 5] = [
    "Trattoria Roma",
    "Sushi Bar",
    "Cafe Central",
    "Burger Joint",
    "Noodle House",
];
const TRANSPORT: [&str; 4] = ["City Metro", "Taxi", "Fuel Station", "Bike Share"];
const SHOPS: [&str; 4] = [
    "Bookshop",
    "Hardware Store",
    "Clothing Store",
    "Electronics Shop",
];

fn add(
    list: &mut Vec<SeedTransaction>,
    day: i64,
    description: String,
    category: &'static str,
    amount_cents: i64,
) {
    list.push(SeedTransaction {
        date: format(day),
        description,
        category,
        amount_cents,
    });
}

/// The demo accounts of `owner_name`, with history up to and including `today`
/// (a day number). The same name and day always give the same data.
pub fn generate(owner_name: &str, today: i64) -> Vec<SeedAccount> {
    let mut dice = Dice::for_name(owner_name);
    let salary = dice.between(2_400, 3_600) * 100;
    let employer = dice.pick(&EMPLOYERS);
    let rent = dice.between(800, 1_400) * 100;
    let saving = dice.between(2, 6) * 10_000;
    let mut everyday = Vec::new();
    let mut savings = Vec::new();
    let start = history_start(today);
    add(
        &mut everyday,
        start,
        "Opening balance".into(),
        "Transfers",
        dice.between(1_500, 3_000) * 100,
    );
    add(
        &mut savings,
        start,
        "Opening balance".into(),
        "Transfers",
        dice.between(3_000, 12_000) * 100,
    );
    for day in start..=today {
        let (_, _, dom) = civil_from_days(day);
        match dom {
            1 => {
                add(&mut everyday, day, "Rent".into(), "Housing", -rent);
                add(
                    &mut savings,
                    day,
                    "Interest".into(),
                    "Income",
                    dice.between(100, 900),
                );
            }
            5 => add(
                &mut everyday,
                day,
                "Electricity".into(),
                "Utilities",
                -dice.between(4_000, 11_000),
            ),
            8 => add(
                &mut everyday,
                day,
                "Streaming service".into(),
                "Subscriptions",
                -dice.between(899, 1_599),
            ),
            12 => add(
                &mut everyday,
                day,
                "Mobile phone".into(),
                "Utilities",
                -dice.between(1_500, 4_000),
            ),
            25 => add(
                &mut everyday,
                day,
                format!("Salary {employer}"),
                "Income",
                salary,
            ),
            26 => {
                add(
                    &mut everyday,
                    day,
                    "Transfer to savings".into(),
                    "Savings",
                    -saving,
                );
                add(
                    &mut savings,
                    day,
                    "Transfer from everyday account".into(),
                    "Savings",
                    saving,
                );
            }
            _ => {}
        }
        if dice.one_in(3) {
            let shop = dice.pick(&GROCERS);
            add(
                &mut everyday,
                day,
                shop.into(),
                "Groceries",
                -dice.between(1_500, 9_500),
            );
        }
        if dice.one_in(6) {
            let place = dice.pick(&RESTAURANTS);
            add(
                &mut everyday,
                day,
                place.into(),
                "Eating out",
                -dice.between(1_200, 6_500),
            );
        }
        if dice.one_in(5) {
            let how = dice.pick(&TRANSPORT);
            add(
                &mut everyday,
                day,
                how.into(),
                "Transport",
                -dice.between(250, 4_500),
            );
        }
        if dice.one_in(12) {
            let shop = dice.pick(&SHOPS);
            add(
                &mut everyday,
                day,
                shop.into(),
                "Shopping",
                -dice.between(1_500, 15_000),
            );
        }
    }
    vec![
        SeedAccount {
            name: "Everyday account",
            currency: "EUR",
            transactions: everyday,
        },
        SeedAccount {
            name: "Savings account",
            currency: "EUR",
            transactions: savings,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_name_gives_the_same_data_and_names_differ() {
        let today = days_from_civil(2025, 6, 15);
        let alice = generate("alice", today);
        assert_eq!(alice, generate("alice", today));
        assert_ne!(alice, generate("bob", today));
    }

    #[test]
    fn covers_about_three_months_with_varied_categories() {
        let today = days_from_civil(2025, 6, 15);
        let accounts = generate("alice", today);
        assert_eq!(accounts.len(), 2);
        let everyday = &accounts[0].transactions;
        assert!(everyday.len() > 50, "only {} transactions", everyday.len());
        let first = format(history_start(today));
        let last = format(today);
        for t in accounts.iter().flat_map(|a| &a.transactions) {
            assert!(t.date >= first && t.date <= last, "{} out of range", t.date);
            assert_ne!(t.amount_cents, 0);
        }
        assert_eq!(first, "2025-04-01");
        assert_eq!(
            format(history_start(days_from_civil(2025, 2, 10))),
            "2024-12-01"
        );
        let months: std::collections::BTreeSet<_> = everyday.iter().map(|t| &t.date[..7]).collect();
        assert_eq!(months.len(), 3, "{months:?}");
        let categories: std::collections::BTreeSet<_> =
            everyday.iter().map(|t| t.category).collect();
        for c in [
            "Income",
            "Housing",
            "Groceries",
            "Eating out",
            "Transport",
            "Utilities",
        ] {
            assert!(categories.contains(c), "no {c}");
        }
        let salary = everyday
            .iter()
            .filter(|t| t.description.starts_with("Salary"))
            .count();
        assert_eq!(salary, 2, "April and May; June 25 is still to come");
    }
}
