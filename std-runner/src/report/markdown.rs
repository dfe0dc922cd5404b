//! Markdown building blocks shared by every report: a training run's `report.md` ([`super::run`])
//! and each experiment's `summary.md` (`experiments::Output::finish`). Every helper returns whole
//! lines, each ending in a newline.

use std::fmt::Write as _;

/// A two-column `key | value` table without a header.
pub fn key_value(rows: &[(&str, String)]) -> String {
    let mut s = String::from("| | |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    s
}

/// The header of a table: the column names and the separator line.
pub fn table_head(columns: &[&str]) -> String {
    head(columns, "---")
}

/// The header of a table of numbers: the column names and a separator aligning every column right.
pub fn table_head_right(columns: &[&str]) -> String {
    head(columns, "---:")
}

fn head(columns: &[&str], rule: &str) -> String {
    let mut s = row(columns);
    s.push('|');
    for _ in columns {
        s.push_str(rule);
        s.push('|');
    }
    s.push('\n');
    s
}

/// One table row.
pub fn row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut s = String::from("|");
    for c in cells {
        let _ = write!(s, " {} |", c.as_ref());
    }
    s.push('\n');
    s
}

/// A list of links to `files`; an SVG figure is also shown inline, under its link.
pub fn file_list(files: &[String]) -> String {
    let mut s = String::new();
    for f in files {
        if f.ends_with(".svg") {
            let _ = writeln!(s, "- [{f}]({f})\n\n  ![{f}]({f})");
        } else {
            let _ = writeln!(s, "- [{f}]({f})");
        }
    }
    s
}

/// A fraction as a percentage with two decimals, `—` when absent.
pub fn pct(a: Option<f32>) -> String {
    a.map_or("—".into(), |a| format!("{:.2} %", 100.0 * a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_lists() {
        assert_eq!(key_value(&[("a", "1".into())]), "| | |\n|---|---|\n| a | 1 |\n");
        assert_eq!(table_head(&["x", "y"]), "| x | y |\n|---|---|\n");
        assert_eq!(table_head_right(&["n"]), "| n |\n|---:|\n");
        assert_eq!(row(&["1", "two"]), "| 1 | two |\n");
        let files = ["a.csv".to_string(), "b.svg".to_string()];
        assert_eq!(file_list(&files), "- [a.csv](a.csv)\n- [b.svg](b.svg)\n\n  ![b.svg](b.svg)\n");
        assert_eq!((pct(Some(0.5)), pct(None)), ("50.00 %".to_string(), "—".to_string()));
    }
}
