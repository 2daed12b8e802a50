//! IAM wildcards (`*` any run of characters, also empty; `?` exactly one character) over
//! canonical resource strings: whole-string matching, and the two questions the grant compiler
//! asks about a whole directory: "could this pattern match something that starts with X?"
//! (a Deny that must withhold a directory) and "does it match everything that starts with X?"
//! (an Allow that covers a directory). Matching runs a small NFA over pattern positions, so it is
//! linear in the text and never backtracks exponentially.

/// The pattern positions live after consuming `text` (closed under `*` matching empty).
fn states_after(p: &[u8], text: &[u8]) -> Vec<bool> {
    let mut cur = vec![false; p.len() + 1];
    cur[0] = true;
    close(p, &mut cur);
    for &c in text {
        let mut next = vec![false; p.len() + 1];
        let mut any = false;
        for i in 0..p.len() {
            if !cur[i] {
                continue;
            }
            match p[i] {
                b'*' => {
                    next[i] = true;
                    any = true;
                }
                b'?' => {
                    next[i + 1] = true;
                    any = true;
                }
                pc if pc == c => {
                    next[i + 1] = true;
                    any = true;
                }
                _ => {}
            }
        }
        if !any {
            return next;
        }
        close(p, &mut next);
        cur = next;
    }
    cur
}

/// `*` may match nothing: a live `*` at `i` makes `i + 1` live too.
fn close(p: &[u8], s: &mut [bool]) {
    for i in 0..p.len() {
        if s[i] && p[i] == b'*' {
            s[i + 1] = true;
        }
    }
}

/// Whether `pattern` matches all of `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    states_after(pattern.as_bytes(), text.as_bytes())[pattern.len()]
}

/// Whether some string that starts with `prefix` (including `prefix` itself) matches `pattern`.
pub fn could_match_with_prefix(pattern: &str, prefix: &str) -> bool {
    // every live position can be completed: literals by themselves, `?` by any character, `*`
    // by nothing
    states_after(pattern.as_bytes(), prefix.as_bytes())
        .iter()
        .any(|&s| s)
}

/// Whether every string that starts with `prefix` (including `prefix` itself) matches `pattern`:
/// after the prefix, the pattern must be able to sit on a `*` followed only by `*`s.
pub fn matches_every_extension(pattern: &str, prefix: &str) -> bool {
    let p = pattern.as_bytes();
    let s = states_after(p, prefix.as_bytes());
    (0..p.len()).any(|i| s[i] && p[i..].iter().all(|&c| c == b'*'))
}

/// Whether the text contains a wildcard character.
pub fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_matches() {
        assert!(glob_match("fs:*", "fs:Read"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("secret:db?", "secret:db1"));
        assert!(!glob_match("secret:db?", "secret:db"));
        assert!(!glob_match("", "x"));
        assert!(glob_match("", ""));
        // no exponential blow-up
        let p = "*a".repeat(30) + "b";
        assert!(!glob_match(&p, &"a".repeat(5000)));
    }

    #[test]
    fn prefix_questions() {
        assert!(could_match_with_prefix("*secret*", "file:/base/data"));
        assert!(could_match_with_prefix(
            "file:/base/data/secret/*",
            "file:/base/data"
        ));
        assert!(!could_match_with_prefix(
            "file:/base/other/*",
            "file:/base/data/"
        ));
        assert!(could_match_with_prefix(
            "file:/base/*",
            "file:/base/data/x/y"
        ));
        assert!(matches_every_extension("file:/base/*", "file:/base/data/"));
        assert!(!matches_every_extension(
            "file:/base/*.csv",
            "file:/base/data/"
        ));
        assert!(matches_every_extension("*", ""));
        assert!(!matches_every_extension("*secret*", "file:/base/"));
        assert!(matches_every_extension("*secret*", "file:/base/secret"));
    }
}
