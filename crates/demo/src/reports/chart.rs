//! An inline SVG bar chart, rendered by a template so that every label is escaped.

use askama::Template;

const BAR_WIDTH: i64 = 56;
const GAP: i64 = 20;
const PLOT_HEIGHT: i64 = 160;
const TOP: i64 = 22;
const BOTTOM: i64 = 26;

struct BarView {
    x: i64,
    y: i64,
    width: i64,
    height: i64,
    center: i64,
    value_y: i64,
    value: String,
    label: String,
}

#[derive(Template)]
#[template(path = "chart.svg", escape = "html")]
struct Chart<'a> {
    title: &'a str,
    width: i64,
    height: i64,
    baseline: i64,
    label_y: i64,
    bars: Vec<BarView>,
}

/// A bar of `value` (negative values are drawn as zero) named `label`, with the
/// text `value_text` above it.
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub value_text: String,
}

/// The SVG of a bar chart: the tallest bar fills the plot, the others are scaled to it.
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(0);
    let baseline = TOP + PLOT_HEIGHT;
    let views = bars
        .iter()
        .enumerate()
        .map(|(i, bar)| {
            let height = if max == 0 {
                0
            } else {
                (i128::from(bar.value.max(0)) * i128::from(PLOT_HEIGHT) / i128::from(max)) as i64
            };
            let x = GAP + i as i64 * (BAR_WIDTH + GAP);
            BarView {
                x,
                y: baseline - height,
                width: BAR_WIDTH,
                height,
                center: x + BAR_WIDTH / 2,
                value_y: baseline - height - 6,
                value: bar.value_text.clone(),
                label: bar.label.clone(),
            }
        })
        .collect();
    let chart = Chart {
        title,
        width: GAP + bars.len() as i64 * (BAR_WIDTH + GAP),
        height: baseline + BOTTOM,
        baseline,
        label_y: baseline + 18,
        bars: views,
    };
    chart.render().unwrap_or_else(|e| {
        tracing::error!(error = %e, "chart rendering failed");
        String::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: i64) -> Bar {
        Bar {
            label: label.into(),
            value,
            value_text: format!("<{value}>"),
        }
    }

    #[test]
    fn scales_bars_to_the_tallest() {
        let svg = bar_chart(
            "Spending",
            &[bar("a", 1000), bar("b", 500), bar("c", -20), bar("d", 0)],
        );
        assert!(svg.starts_with("<svg "), "{svg}");
        assert!(
            svg.contains(r#"<rect class="bar" x="20" y="22" width="56" height="160">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<rect class="bar" x="96" y="102" width="56" height="80">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<rect class="bar" x="172" y="182" width="56" height="0">"#),
            "{svg}"
        );
        assert_eq!(svg.matches("<rect ").count(), 4);
        assert!(svg.contains(r#"viewBox="0 0 324 208""#), "{svg}");
    }

    #[test]
    fn escapes_every_text() {
        let svg = bar_chart("a \"title\" & more", &[bar("<script>alert(1)</script>", 5)]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(
            svg.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{svg}"
        );
        assert!(svg.contains("&#60;5&#62;"), "{svg}");
        assert!(svg.contains("a &#34;title&#34; &#38; more"), "{svg}");
    }

    #[test]
    fn draws_nothing_for_no_data() {
        let svg = bar_chart("Spending", &[]);
        assert_eq!(svg.matches("<rect ").count(), 0);
        assert!(svg.ends_with("</svg>"), "{svg}");
    }
}
