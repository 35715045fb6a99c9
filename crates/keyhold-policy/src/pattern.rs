//! Wildcard patterns (`*` = any run of characters, `?` = exactly one character) as IAM uses
//! them in `Action`, `Resource`, `StringLike` and the ARN operators.

/// A wildcard pattern, classified at parse time so the common shapes (`*`, a literal, a
/// literal followed by `*`) skip the general matcher.
#[derive(Debug, Clone)]
pub(crate) enum Pattern {
    /// Only `*`s: matches everything, including the empty string.
    Any,
    /// No wildcard at all.
    Exact(Box<str>),
    /// A literal followed by one trailing `*` (`kms:Encrypt*`).
    Prefix(Box<str>),
    /// Anything else.
    Glob(Box<str>),
}

impl Pattern {
    /// Classifies `pattern`. For case-insensitive matching the caller passes an ASCII
    /// lower-cased pattern and matches with `fold = true`.
    pub(crate) fn new(pattern: &str) -> Pattern {
        if !pattern.is_empty() && pattern.bytes().all(|b| b == b'*') {
            return Pattern::Any;
        }
        let wild = |s: &str| s.contains(['*', '?']);
        if !wild(pattern) {
            return Pattern::Exact(pattern.into());
        }
        match pattern.strip_suffix('*') {
            Some(prefix) if !wild(prefix) => Pattern::Prefix(prefix.into()),
            _ => Pattern::Glob(pattern.into()),
        }
    }

    /// Whether `text` matches. With `fold`, ASCII letters of `text` match case-insensitively
    /// (the pattern must then be lower-case already).
    pub(crate) fn matches(&self, text: &str, fold: bool) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(p) => {
                if fold {
                    text.eq_ignore_ascii_case(p)
                } else {
                    text == &**p
                }
            }
            Pattern::Prefix(p) => match text.get(..p.len()) {
                Some(head) if fold => head.eq_ignore_ascii_case(p),
                Some(head) => head == &**p,
                None => false,
            },
            Pattern::Glob(p) => glob(p, text, fold),
        }
    }
}

/// The next character of `s` at byte offset `at`, with its length in bytes.
fn char_at(s: &str, at: usize) -> Option<(char, usize)> {
    s.get(at..)?.chars().next().map(|c| (c, c.len_utf8()))
}

fn same(p: char, t: char, fold: bool) -> bool {
    p == t || (fold && p == t.to_ascii_lowercase())
}

/// Greedy matching with backtracking to the last `*`: linear for patterns with one `*`,
/// O(n·m) at worst, no allocation.
pub(crate) fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    // (pattern offset just after the last `*`, text offset that `*` currently extends to)
    let mut star: Option<(usize, usize)> = None;
    while let Some((tc, tlen)) = char_at(text, ti) {
        if let Some((pc, plen)) = char_at(pattern, pi) {
            if pc == '*' {
                pi += plen;
                star = Some((pi, ti));
                continue;
            }
            if pc == '?' || same(pc, tc, fold) {
                pi += plen;
                ti += tlen;
                continue;
            }
        }
        match star {
            Some((after_star, upto)) => {
                // Let the `*` swallow one more character and retry from there.
                let Some((_, len)) = char_at(text, upto) else {
                    return false;
                };
                star = Some((after_star, upto + len));
                pi = after_star;
                ti = upto + len;
            }
            None => return false,
        }
    }
    pattern
        .get(pi..)
        .is_some_and(|rest| rest.bytes().all(|b| b == b'*'))
}

/// A pattern for the ARN condition operators: the six colon-separated parts
/// (`arn:partition:service:region:account:resource`, the resource keeping any further colons)
/// are matched one by one, so a wildcard never spans a colon between parts. A pattern that is
/// not shaped like an ARN (e.g. a bare `*`) is matched against the whole value.
#[derive(Debug, Clone)]
pub(crate) enum ArnPattern {
    Parts(Box<[Pattern; 6]>),
    Whole(Pattern),
}

fn split6(s: &str) -> Option<[&str; 6]> {
    let mut it = s.splitn(6, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    Some(parts)
}

impl ArnPattern {
    pub(crate) fn new(pattern: &str) -> ArnPattern {
        match split6(pattern) {
            Some(parts) => ArnPattern::Parts(Box::new(parts.map(Pattern::new))),
            None => ArnPattern::Whole(Pattern::new(pattern)),
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            ArnPattern::Whole(p) => p.matches(value, false),
            ArnPattern::Parts(parts) => match split6(value) {
                Some(values) => parts.iter().zip(values).all(|(p, v)| p.matches(v, false)),
                None => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Pattern::new(p).matches(t, false)
    }

    #[test]
    fn shapes() {
        assert!(matches!(Pattern::new("*"), Pattern::Any));
        assert!(matches!(Pattern::new("***"), Pattern::Any));
        assert!(matches!(Pattern::new("kms:Encrypt"), Pattern::Exact(_)));
        assert!(matches!(Pattern::new("kms:Re*"), Pattern::Prefix(_)));
        assert!(matches!(Pattern::new("kms:*Key"), Pattern::Glob(_)));
        assert!(matches!(Pattern::new("kms:?ecrypt"), Pattern::Glob(_)));
        assert!(matches!(Pattern::new(""), Pattern::Exact(_)));
    }

    #[test]
    fn wildcards() {
        for (p, t, want) in [
            ("*", "", true),
            ("*", "anything", true),
            ("a*", "a", true),
            ("a*", "ab", true),
            ("a*", "ba", false),
            ("*a", "ba", true),
            ("*a", "ab", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a?c", "abbc", false),
            ("a*b*c", "a-b-b-c", true),
            ("a*b*c", "a-b-b-d", false),
            ("*x*", "abxcd", true),
            ("?", "é", true),
            ("é?", "éa", true),
            ("a**", "a", true),
            ("ab", "abc", false),
            ("abc", "ab", false),
            ("*ab", "aab", true),
            ("a*a*a", "aaaaaaaab", false),
        ] {
            assert_eq!(m(p, t), want, "{p:?} vs {t:?}");
        }
    }

    #[test]
    fn folding_is_ascii_on_the_text_side() {
        let p = Pattern::new("kms:encrypt*");
        assert!(p.matches("KMS:Encrypt", true));
        assert!(!p.matches("KMS:Encrypt", false));
        assert!(Pattern::new("kms:*key").matches("kms:CreateKEY", true));
        assert!(Pattern::new("kms:encrypt").matches("kms:ENCRYPT", true));
        // Prefix longer than the text, or cutting a multi-byte character.
        assert!(!Pattern::new("kms:encrypt*").matches("kms", true));
        assert!(!Pattern::new("ab*").matches("aé", false));
    }

    #[test]
    fn arn_parts() {
        let p = ArnPattern::new("arn:aws:kms:*:111122223333:key/*");
        assert!(p.matches("arn:aws:kms:us-east-1:111122223333:key/abc"));
        assert!(!p.matches("arn:aws:kms:us-east-1:444455556666:key/abc"));
        assert!(!p.matches("arn:aws:kms:us-east-1:111122223333:alias/abc"));
        assert!(!p.matches("not-an-arn"));
        // A `*` in one part does not reach into the next.
        let p = ArnPattern::new("arn:aws:iam::*:role/x");
        assert!(p.matches("arn:aws:iam::111122223333:role/x"));
        let p = ArnPattern::new("arn:aws:kms:*:111122223333:key/*");
        assert!(!p.matches("arn:aws:kms:us-east-1:x:111122223333:key/1"));
        assert!(Pattern::new("arn:aws:kms:*:111122223333:key/*")
            .matches("arn:aws:kms:us-east-1:x:111122223333:key/1", false));
        // The resource part keeps its colons.
        let p = ArnPattern::new("arn:aws:logs:*:*:log-group:app:*");
        assert!(p.matches("arn:aws:logs:eu-west-1:111122223333:log-group:app:log-stream:x"));
        // A non-ARN pattern matches the whole value.
        assert!(ArnPattern::new("*").matches("arn:aws:iam::111122223333:root"));
        assert!(ArnPattern::new("arn:aws:iam::*").matches("arn:aws:iam::1:root"));
    }
}
