//! Fuzzy model-id matching (case, `prefix:` parts, date and version suffixes) and the
//! "did you mean" suggestions for a miss.
//!
//! Every string here comes from a user, a config or OpenCode's catalog, so nothing slices at a
//! byte offset that might fall inside a character: suffixes are matched on character
//! boundaries and distances count characters.

use super::catalog::{Catalog, CatalogModel, provider_rank};

/// How many suggestions a miss keeps.
pub const MAX_SUGGESTIONS: usize = 20;

/// One suggestion, closest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub full_id: String,
    pub distance: usize,
}

/// Lower case, without a leading `prefix:` and without `-YYYYMMDD`, `-YYYY-MM-DD` or `-vN`
/// suffixes (repeatedly: `x-v2-20250101` becomes `x`).
pub fn normalize(id: &str) -> String {
    let mut text = id.trim().to_lowercase();
    if let Some((prefix, rest)) = text.split_once(':')
        && !rest.is_empty()
        && !prefix.is_empty()
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !rest.chars().all(|c| c.is_ascii_digit() || c == 'b')
    {
        text = rest.to_owned();
    }
    loop {
        let stripped = strip_suffix(&text);
        if stripped.len() == text.len() {
            return text;
        }
        text = stripped;
    }
}

fn strip_suffix(text: &str) -> String {
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    // -YYYY-MM-DD: eleven ASCII bytes, so a cut inside a character can never be one.
    if let Some(at) = text.len().checked_sub(11).filter(|&at| at > 0)
        && let Some((head, tail)) = text.split_at_checked(at)
    {
        let parts: Vec<&str> = tail.split('-').collect();
        if !head.is_empty()
            && parts.len() == 4
            && parts[0].is_empty()
            && parts[1].len() == 4
            && parts[2].len() == 2
            && parts[3].len() == 2
            && parts[1..].iter().all(|p| digits(p))
        {
            return head.to_owned();
        }
    }
    if let Some((head, tail)) = text.rsplit_once('-')
        && !head.is_empty()
    {
        // -YYYYMMDD
        if tail.len() == 8 && digits(tail) {
            return head.to_owned();
        }
        // -vN
        if let Some(version) = tail.strip_prefix('v')
            && digits(version)
        {
            return head.to_owned();
        }
    }
    text.to_owned()
}

/// The original's scores: equal +50, prefix +25, substring +10 (on id or name, normalized);
/// a configured (non-`api`) provider +5; "thinking" −10 and "reasoning" −5 so a plain variant
/// wins over its thinking twin. `None` when neither id nor name matches at all.
pub fn match_score(model: &CatalogModel, query: &str) -> Option<i32> {
    let query = normalize(query);
    if query.is_empty() {
        return None;
    }
    let part_score = |candidate: &str| {
        let candidate = normalize(candidate);
        if candidate == query {
            50
        } else if candidate.starts_with(&query) {
            25
        } else if candidate.contains(&query) {
            10
        } else {
            0
        }
    };
    let base = part_score(&model.model_id).max(part_score(&model.name));
    if base == 0 {
        return None;
    }
    let mut score = base;
    if model.source.as_deref() != Some("api") {
        score += 5;
    }
    let id = model.model_id.to_lowercase();
    if id.contains("thinking") {
        score -= 10;
    }
    if id.contains("reasoning") {
        score -= 5;
    }
    Some(score)
}

/// The best fuzzy match; ties break by provider rank, then alphabetically.
pub fn best_match<'a>(
    models: impl Iterator<Item = &'a CatalogModel>,
    query: &str,
) -> Option<&'a CatalogModel> {
    let mut best: Option<(i32, &CatalogModel)> = None;
    for model in models {
        let Some(score) = match_score(model, query) else {
            continue;
        };
        let better = match best {
            None => true,
            Some((best_score, current)) => {
                score > best_score || (score == best_score && tie_key(model) < tie_key(current))
            }
        };
        if better {
            best = Some((score, model));
        }
    }
    best.map(|(_, model)| model)
}

fn tie_key(model: &CatalogModel) -> (u8, String) {
    (provider_rank(model.source.as_deref()), model.full_id())
}

/// Up to [`MAX_SUGGESTIONS`] usable models, closest (edit distance on normalized ids) first.
pub fn suggestions(catalog: &Catalog, reference: &str) -> Vec<Suggestion> {
    let (provider, model) = reference.split_once('/').unwrap_or(("", reference));
    let wanted_model = normalize(model);
    let wanted_provider = provider.to_lowercase();
    let mut out: Vec<(usize, u8, Suggestion)> = catalog
        .usable()
        .map(|m| {
            let mut distance = edit_distance(&wanted_model, &normalize(&m.model_id));
            if !wanted_provider.is_empty() && m.provider_id.to_lowercase() != wanted_provider {
                // Same model name elsewhere is still a good hint, just a weaker one.
                distance += 2;
            }
            (
                distance,
                provider_rank(m.source.as_deref()),
                Suggestion {
                    full_id: m.full_id(),
                    distance,
                },
            )
        })
        .collect();
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then(a.1.cmp(&b.1))
            .then_with(|| a.2.full_id.cmp(&b.2.full_id))
    });
    out.into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, _, s)| s)
        .collect()
}

/// Levenshtein distance over chars. Callers bound the lengths (a model reference is at most
/// [`super::resolve::MAX_REFERENCE_CHARS`] characters), since the cost is their product.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_case_prefixes_dates_and_versions() {
        for (input, want) in [
            ("Claude-Sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("seer-pro-v2", "seer-pro"),
            ("seer-pro-v2-20250101", "seer-pro"),
            ("openrouter:Seer-Pro", "seer-pro"),
            ("qwen3.6:27b", "qwen3.6:27b"),
            ("v2", "v2"),
            ("gpt-5", "gpt-5"),
            // A multi-byte char where a date suffix would start: no panic, nothing stripped.
            ("aé1234567890", "aé1234567890"),
        ] {
            assert_eq!(normalize(input), want, "{input}");
        }
    }

    #[test]
    fn edit_distance_counts_single_char_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
