//! How text becomes search terms, shared by indexing and querying so both always agree.
//!
//! Two analyses of the same text:
//! - **words**: split on anything not alphanumeric, lowercased; camelCase words also yield
//!   their parts (`parseHeader` → `parseheader`, `parse`, `header`). Good for prose.
//! - **identifiers**: whitespace- and bracket-delimited tokens that look like code — they
//!   contain `_ / . : -` or a digit, or are camelCase — kept whole and lowercased, so
//!   `src/db/pool.rs`, `fn_parse_header`, `E0502` and `crate::db::Pool` match exactly. A path
//!   also yields its suffixes (`db/pool.rs`, `pool.rs`).
//!
//! Also the token estimate every budget uses: about four characters per token.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Longer tokens are dropped: base64 blobs and minified code only bloat the index.
const MAX_TOKEN_CHARS: usize = 64;

/// Query words that match almost every record and so only cost time. Indexing keeps them.
const STOP_WORDS: [&str; 40] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "do", "for", "from", "has", "have",
    "how", "i", "if", "in", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "so",
    "that", "the", "this", "to", "was", "we", "what", "when", "which", "with", "you",
];

/// Estimated tokens of `text` for budgets: a quarter of its characters, rounded up.
pub fn estimate_tokens(text: &str) -> u32 {
    let chars = text.chars().count();
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX)
}

/// The words analysis (see the module header).
pub fn words(text: &str, out: &mut Vec<String>) {
    for piece in text.split(|c: char| !c.is_alphanumeric()) {
        if piece.is_empty() || piece.chars().count() > MAX_TOKEN_CHARS {
            continue;
        }
        out.push(piece.to_lowercase());
        if is_camel_case(piece) {
            for part in camel_parts(piece) {
                out.push(part.to_lowercase());
            }
        }
    }
}

/// The identifiers analysis (see the module header).
pub fn identifiers(text: &str, out: &mut Vec<String>) {
    let delimiters = |c: char| {
        c.is_whitespace()
            || matches!(
                c,
                '(' | ')'
                    | '['
                    | ']'
                    | '{'
                    | '}'
                    | '<'
                    | '>'
                    | '"'
                    | '\''
                    | '`'
                    | ','
                    | ';'
                    | '|'
                    | '='
            )
    };
    for raw in text.split(delimiters) {
        let token = raw.trim_matches(|c: char| {
            matches!(
                c,
                '.' | ':' | '!' | '?' | '*' | '#' | '@' | '&' | '-' | '/' | '\\'
            )
        });
        if token.is_empty() || token.chars().count() > MAX_TOKEN_CHARS {
            continue;
        }
        if !looks_like_code(token) {
            continue;
        }
        let lower = token.to_lowercase();
        if lower.contains('/') {
            for (at, _) in lower.match_indices('/') {
                let suffix = &lower[at + 1..];
                if !suffix.is_empty() {
                    out.push(suffix.to_owned());
                }
            }
        }
        if lower.contains("::") {
            for (at, _) in lower.match_indices("::") {
                let suffix = &lower[at + 2..];
                if !suffix.is_empty() {
                    out.push(suffix.to_owned());
                }
            }
        }
        out.push(lower);
    }
}

fn looks_like_code(token: &str) -> bool {
    let has_alnum = token.chars().any(char::is_alphanumeric);
    let marked = token
        .chars()
        .any(|c| matches!(c, '_' | '/' | '.' | ':' | '-') || c.is_ascii_digit());
    has_alnum && (marked || is_camel_case(token))
}

/// `parseHeader`, `HttpClient`: a lowercase letter followed by an uppercase one.
fn is_camel_case(word: &str) -> bool {
    let mut previous_lower = false;
    for c in word.chars() {
        if c.is_uppercase() && previous_lower {
            return true;
        }
        previous_lower = c.is_lowercase();
    }
    false
}

fn camel_parts(word: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut previous_lower = false;
    for (at, c) in word.char_indices() {
        if c.is_uppercase() && previous_lower {
            parts.push(&word[start..at]);
            start = at;
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
    }
    parts.push(&word[start..]);
    parts
}

/// The distinct terms of a query, in first-seen order: (words, identifiers). Stop words are
/// left out of the words; at most `max_terms` of each are kept, so a long task text stays a
/// bounded query.
pub fn query_terms(text: &str, max_terms: usize) -> (Vec<String>, Vec<String>) {
    let mut all_words = Vec::new();
    words(text, &mut all_words);
    let mut all_idents = Vec::new();
    identifiers(text, &mut all_idents);
    let mut seen = std::collections::HashSet::new();
    let words: Vec<String> = all_words
        .into_iter()
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .filter(|w| seen.insert(w.clone()))
        .take(max_terms)
        .collect();
    let mut seen = std::collections::HashSet::new();
    let idents: Vec<String> = all_idents
        .into_iter()
        .filter(|w| seen.insert(w.clone()))
        .take(max_terms)
        .collect();
    (words, idents)
}

/// Which analysis a [`TermsTokenizer`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analysis {
    Words,
    Identifiers,
}

/// The tantivy side of [`words`] and [`identifiers`].
#[derive(Debug, Clone)]
pub struct TermsTokenizer {
    pub analysis: Analysis,
}

pub struct TermsStream {
    tokens: std::vec::IntoIter<String>,
    token: Token,
}

impl Tokenizer for TermsTokenizer {
    type TokenStream<'a> = TermsStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> TermsStream {
        let mut out = Vec::new();
        match self.analysis {
            Analysis::Words => words(text, &mut out),
            Analysis::Identifiers => identifiers(text, &mut out),
        }
        TermsStream {
            tokens: out.into_iter(),
            token: Token::default(),
        }
    }
}

impl TokenStream for TermsStream {
    fn advance(&mut self) -> bool {
        match self.tokens.next() {
            Some(text) => {
                // Positions are not indexed (no phrase queries), so offsets stay 0.
                self.token.position = self.token.position.wrapping_add(1);
                self.token.text = text;
                true
            }
            None => false,
        }
    }

    fn token(&self) -> &Token {
        &self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents_of(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        identifiers(text, &mut out);
        out
    }

    fn words_of(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        words(text, &mut out);
        out
    }

    #[test]
    fn paths_identifiers_and_error_codes_stay_whole() {
        let found = idents_of("see `src/db/pool.rs`: fn_parse_header fails, error[E0502]: x.");
        assert!(found.contains(&"src/db/pool.rs".to_owned()), "{found:?}");
        assert!(found.contains(&"db/pool.rs".to_owned()), "{found:?}");
        assert!(found.contains(&"pool.rs".to_owned()), "{found:?}");
        assert!(found.contains(&"fn_parse_header".to_owned()), "{found:?}");
        assert!(found.contains(&"e0502".to_owned()), "{found:?}");
        assert!(!found.contains(&"see".to_owned()), "{found:?}");
    }

    #[test]
    fn words_split_code_and_camel_case() {
        assert_eq!(
            words_of("parseHeader in src/db"),
            ["parseheader", "parse", "header", "in", "src", "db"]
        );
    }

    #[test]
    fn query_terms_drop_stop_words_and_duplicates() {
        let (words, idents) = query_terms("the pool and the Pool for src/db/pool.rs", 10);
        assert_eq!(words, ["pool", "src", "db", "rs"]);
        assert_eq!(idents, ["db/pool.rs", "pool.rs", "src/db/pool.rs"]);
    }

    #[test]
    fn token_estimate_rounds_up() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
