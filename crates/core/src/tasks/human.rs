//! Times, durations and tables as people read them in the markdown views ("12 s ago", "1.4 s");
//! the JSON views keep raw unix milliseconds.

/// How long ago `at` (unix ms) was, from `now`: "just now", "12 s ago", "4 min ago",
/// "3 h ago", "2 d ago". A time in the future (a clock that moved) reads "just now".
pub fn ago(at: i64, now: i64) -> String {
    let secs = now.saturating_sub(at).max(0) / 1000;
    match secs {
        0..=1 => "just now".to_owned(),
        2..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A duration in milliseconds as seconds ("0.3 s", "12.0 s") or minutes past two minutes
/// ("3 min 20 s").
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 120_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// A markdown table; cells have `|` and newlines escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let clean = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!(
        "| {} |\n|{}\n",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| clean(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_like_a_person_would_say_it() {
        let now = 1_000_000_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(ago(now + 5000, now), "just now");
        assert_eq!(ago(now - 12_000, now), "12 s ago");
        assert_eq!(ago(now - 4 * 60_000, now), "4 min ago");
        assert_eq!(ago(now - 3 * 3_600_000, now), "3 h ago");
        assert_eq!(ago(now - 50 * 3_600_000, now), "2 d ago");
        assert!(ago(i64::MIN, now).ends_with(" d ago"));
        assert_eq!(duration(340), "0.3 s");
        assert_eq!(duration(200_000), "3 min 20 s");
        assert_eq!(duration(-5), "0.0 s");
    }
}
