//! The carry: what one step hands to the next, condensed from the handoff sections of its
//! reply and bounded by `maxCarryChars`.
//!
//! Rules (the original's): keep Summary, Artifacts, Risks and Next, each capped at
//! 900/1600/900/900 characters scaled by `maxCarryChars / 4500` (at most 1, each cap at least
//! 60); a reply without those headings becomes the Summary (up to `max(240, maxCarry / 4)`).
//! A step's block is `### <title>` with `#### <section>` parts, appended to the carry; when
//! the carry is too long the oldest blocks go first, then the rest is cut with
//! `\n...(truncated)`.

/// The sections of a handoff that are carried, with their unscaled caps.
const KEPT: [(&str, usize); 4] = [
    ("Summary", 900),
    ("Artifacts", 1600),
    ("Risks", 900),
    ("Next", 900),
];
/// Every heading of the handoff format; the ones not in [`KEPT`] end a kept section.
const HEADINGS: [&str; 5] = ["summary", "actions", "artifacts", "risks", "next"];
const SCALE_BASE: usize = 4500;
const MIN_SECTION: usize = 60;
const TRUNCATED: &str = "\n...(truncated)";
const BLOCK_START: &str = "### ";

/// The carry after a step, and whether anything was cut to fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub carry: String,
    pub trimmed: bool,
}

/// Appends `title`'s handoff from `response` to `carry`, keeping within `max_chars`.
pub fn append(carry: &str, title: &str, response: &str, max_chars: usize) -> Carried {
    let (block, mut trimmed) = block(title, response, max_chars);
    let mut blocks = split_blocks(carry);
    blocks.push(block);
    let joined = |blocks: &[String]| blocks.join("\n\n");
    while blocks.len() > 1 && joined(&blocks).chars().count() > max_chars {
        blocks.remove(0);
        trimmed = true;
    }
    let mut carry = joined(&blocks);
    if carry.chars().count() > max_chars {
        let keep = max_chars.saturating_sub(TRUNCATED.chars().count());
        carry = carry.chars().take(keep).collect::<String>() + TRUNCATED;
        trimmed = true;
    }
    Carried { carry, trimmed }
}

/// True when `response` has at least one handoff heading.
pub fn has_handoff(response: &str) -> bool {
    response.lines().any(|line| heading(line).is_some())
}

fn block(title: &str, response: &str, max_chars: usize) -> (String, bool) {
    let scale = (max_chars as f64 / SCALE_BASE as f64).min(1.0);
    let cap = |base: usize| ((base as f64 * scale) as usize).max(MIN_SECTION);
    let sections = sections(response);
    let mut out = format!("{BLOCK_START}{title}");
    let mut trimmed = false;
    if sections.iter().all(|(_, body)| body.is_empty()) {
        let (text, cut) = cut(response.trim(), (max_chars / 4).max(240));
        out.push_str(&format!("\n#### Summary\n{text}"));
        return (out, cut);
    }
    for ((name, base), (_, body)) in KEPT.iter().zip(&sections) {
        if body.is_empty() {
            continue;
        }
        let (text, cut) = cut(body, cap(*base));
        trimmed |= cut;
        out.push_str(&format!("\n#### {name}\n{text}"));
    }
    (out, trimmed)
}

/// The bodies of the kept sections, in [`KEPT`] order (empty when absent).
fn sections(response: &str) -> Vec<(&'static str, String)> {
    let mut bodies: Vec<(&'static str, String)> =
        KEPT.iter().map(|(n, _)| (*n, String::new())).collect();
    let mut current: Option<usize> = None;
    for line in response.lines() {
        if let Some(name) = heading(line) {
            current = KEPT
                .iter()
                .position(|(kept, _)| kept.eq_ignore_ascii_case(name));
            continue;
        }
        if let Some(i) = current {
            let body = &mut bodies[i].1;
            if !body.is_empty() {
                body.push('\n');
            }
            body.push_str(line);
        }
    }
    for (_, body) in &mut bodies {
        *body = body.trim().to_owned();
    }
    bodies
}

/// `#`, `##` or `###`, a handoff heading name, an optional colon; any case.
fn heading(line: &str) -> Option<&'static str> {
    let line = line.trim();
    let hashes = line.chars().take_while(|c| *c == '#').count();
    if !(1..=3).contains(&hashes) {
        return None;
    }
    let name = line[hashes..].trim().trim_end_matches(':').trim();
    HEADINGS
        .iter()
        .find(|h| h.eq_ignore_ascii_case(name))
        .copied()
}

fn cut(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        return (text.to_owned(), false);
    }
    let keep = max.saturating_sub(TRUNCATED.chars().count());
    (
        text.chars().take(keep).collect::<String>() + TRUNCATED,
        true,
    )
}

/// The carry's blocks, oldest first.
fn split_blocks(carry: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    for line in carry.lines() {
        match blocks.last_mut() {
            Some(last) if !line.starts_with(BLOCK_START) => {
                last.push('\n');
                last.push_str(line);
            }
            _ => blocks.push(line.to_owned()),
        }
    }
    blocks.into_iter().map(|b| b.trim().to_owned()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const REPLY: &str = "Intro text\n## Summary\n1. do a\n2. do b\n## Actions\n- looked\n\
                         ### artifacts:\n- src/a.rs\n# RISKS\n- none\n## Next\nimplement a";

    #[test]
    fn keeps_summary_artifacts_risks_next_in_any_heading_form() {
        let carried = append("", "Plan", REPLY, 24_000);
        assert_eq!(
            carried.carry,
            "### Plan\n#### Summary\n1. do a\n2. do b\n#### Artifacts\n- src/a.rs\n\
             #### Risks\n- none\n#### Next\nimplement a"
        );
        assert!(!carried.trimmed);
        assert!(has_handoff(REPLY));
    }

    #[test]
    fn a_reply_without_headings_becomes_the_summary() {
        let carried = append("", "Look", "just text", 24_000);
        assert_eq!(carried.carry, "### Look\n#### Summary\njust text");
        assert!(!has_handoff("just text"));
    }

    #[test]
    fn sections_are_capped_by_the_scaled_budget_with_a_floor_of_60() {
        let long = format!("## Summary\n{}", "x".repeat(500));
        // 450 / 4500 scales 900 to 90.
        let carried = append("", "T", &long, 450);
        let summary = carried.carry.split("#### Summary\n").nth(1).unwrap();
        assert_eq!(summary.chars().count(), 90);
        assert!(summary.ends_with(TRUNCATED) && carried.trimmed);
        // 45 / 4500 would give 9: the floor is 60.
        let tiny = block("T", &long, 45).0;
        assert_eq!(
            tiny.split("#### Summary\n").nth(1).unwrap().chars().count(),
            60
        );
    }

    #[test]
    fn oldest_blocks_go_first_then_the_rest_is_cut() {
        let first = append("", "One", "## Summary\naaaa", 100).carry;
        let second = append(&first, "Two", "## Summary\nbbbb", 100).carry;
        assert!(second.starts_with("### One") && second.contains("### Two"));
        let third = append(&second, "Three", "## Summary\ncccc", 60);
        assert!(third.trimmed);
        assert!(!third.carry.contains("### One"), "{}", third.carry);
        assert!(third.carry.contains("### Three"));
        let cut = append("", "Big", &format!("## Next\n{}", "z".repeat(400)), 70);
        assert_eq!(cut.carry.chars().count(), 70);
        assert!(cut.carry.ends_with(TRUNCATED));
    }
}
