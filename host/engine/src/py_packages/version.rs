//! Package versions and version specifiers, the part of PEP 440 a wheelhouse needs: release
//! numbers (`1.2.10` > `1.2.9`), an optional epoch, pre-releases (`a`, `b`, `rc`, sorting
//! before their release), post (`.postN`) and dev (`.devN`) releases; specifiers `==`, `!=`,
//! `>=`, `<=`, `>`, `<`, `~=` and `==X.*`. Local versions (`+local`) compare by their public
//! part.

use std::cmp::Ordering;

/// A parsed version (equal when they compare equal: `1.0` == `1.0.0`).
#[derive(Debug, Clone)]
pub struct Version {
    epoch: u64,
    release: Vec<u64>,
    /// (0 = a, 1 = b, 2 = rc, number); `None`: a final release.
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    text: String,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

fn num(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 18 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Version {
    /// Parses `text` (`1.0`, `v2.1rc1`, `1!2.0.post3.dev1`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a version");
        let t = text.trim().to_ascii_lowercase();
        let t = t.strip_prefix('v').unwrap_or(&t);
        let t = t.split('+').next().unwrap_or(t);
        if t.is_empty() || t.len() > 64 {
            return Err(bad());
        }
        let (epoch, rest) = match t.split_once('!') {
            Some((e, r)) => (num(e).ok_or_else(bad)?, r),
            None => (0, t),
        };
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (rel, mut tail) = rest.split_at(end);
        let rel = rel.trim_end_matches('.');
        if tail.is_empty() && rest.ends_with('.') && !rel.is_empty() {
            return Err(bad());
        }
        let release = rel
            .split('.')
            .map(num)
            .collect::<Option<Vec<_>>>()
            .filter(|r| !r.is_empty() && r.len() <= 16)
            .ok_or_else(bad)?;
        let mut take = |tags: &[(&str, u8)]| -> Option<(u8, u64)> {
            let s = tail.trim_start_matches(['.', '-', '_']);
            for (tag, k) in tags {
                if let Some(after) = s.strip_prefix(tag) {
                    let digits = after
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(after.len());
                    let n = if digits == 0 {
                        0
                    } else {
                        num(&after[..digits])?
                    };
                    tail = &after[digits..];
                    return Some((*k, n));
                }
            }
            None
        };
        let pre = take(&[
            ("alpha", 0),
            ("beta", 1),
            ("rc", 2),
            ("c", 2),
            ("a", 0),
            ("b", 1),
        ]);
        let post = take(&[("post", 0), ("rev", 0), ("r", 0)]).map(|p| p.1);
        let dev = take(&[("dev", 0)]).map(|d| d.1);
        if !tail.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            epoch,
            release,
            pre,
            post,
            dev,
            text: text.trim().to_string(),
        })
    }

    fn release_cmp(a: &[u64], b: &[u64]) -> Ordering {
        let n = a.len().max(b.len());
        (0..n)
            .map(|i| {
                a.get(i)
                    .copied()
                    .unwrap_or(0)
                    .cmp(&b.get(i).copied().unwrap_or(0))
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }

    /// Whether this is a pre- or dev release.
    pub fn is_prerelease(&self) -> bool {
        self.pre.is_some() || self.dev.is_some()
    }
}

impl Ord for Version {
    fn cmp(&self, o: &Self) -> Ordering {
        // a dev release of a final sorts before its pre-releases; a final after them
        let pre_key = |v: &Version| match (v.pre, v.post, v.dev) {
            (None, None, Some(_)) => (0u8, 0u8, 0u64),
            (Some((k, n)), _, _) => (1, k, n),
            _ => (2, 0, 0),
        };
        let post_key = |v: &Version| v.post.map_or((0u8, 0u64), |p| (1, p));
        let dev_key = |v: &Version| v.dev.map_or((1u8, 0u64), |d| (0, d));
        self.epoch
            .cmp(&o.epoch)
            .then_with(|| Self::release_cmp(&self.release, &o.release))
            .then_with(|| pre_key(self).cmp(&pre_key(o)))
            .then_with(|| post_key(self).cmp(&post_key(o)))
            .then_with(|| dev_key(self).cmp(&dev_key(o)))
    }
}

impl PartialEq for Version {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o).is_eq()
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// One version specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specifier {
    op: Op,
    version: Version,
    /// `==1.2.*`: the release prefix.
    prefix: Option<Vec<u64>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Ge,
    Le,
    Gt,
    Lt,
    Compatible,
}

impl Specifier {
    /// Parses `>=1.0` (spaces allowed after the operator).
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let (op, v) = [
            ("===", None),
            ("==", Some(Op::Eq)),
            ("!=", Some(Op::Ne)),
            (">=", Some(Op::Ge)),
            ("<=", Some(Op::Le)),
            ("~=", Some(Op::Compatible)),
            (">", Some(Op::Gt)),
            ("<", Some(Op::Lt)),
        ]
        .iter()
        .find_map(|(p, op)| t.strip_prefix(p).map(|rest| (*op, rest.trim())))
        .ok_or_else(|| format!("`{t}` is not a version specifier"))?;
        let op = op.ok_or_else(|| format!("`{t}`: `===` is not supported"))?;
        if let Some(prefix) = v.strip_suffix(".*") {
            if !matches!(op, Op::Eq | Op::Ne) {
                return Err(format!("`{t}`: `.*` goes with `==` or `!=` only"));
            }
            let version = Version::parse(prefix)?;
            return Ok(Self {
                op,
                prefix: Some(version.release.clone()),
                version,
            });
        }
        let version = Version::parse(v)?;
        if op == Op::Compatible && version.release.len() < 2 {
            return Err(format!("`{t}`: `~=` needs at least two release numbers"));
        }
        Ok(Self {
            op,
            version,
            prefix: None,
        })
    }

    /// Whether `v` satisfies this specifier.
    pub fn matches(&self, v: &Version) -> bool {
        if let Some(p) = &self.prefix {
            let hit = v.release.len() >= p.len() && v.release[..p.len()] == p[..];
            return (self.op == Op::Eq) == hit;
        }
        let o = v.cmp(&self.version);
        match self.op {
            Op::Eq => o.is_eq(),
            Op::Ne => o.is_ne(),
            Op::Ge => o.is_ge(),
            Op::Le => o.is_le(),
            Op::Gt => o.is_gt(),
            Op::Lt => o.is_lt(),
            Op::Compatible => {
                let p = &self.version.release[..self.version.release.len() - 1];
                o.is_ge() && v.release.len() >= p.len() && v.release[..p.len()] == p[..]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn orders_as_pep_440() {
        let sorted = [
            "1.0.dev1",
            "1.0a1",
            "1.0b2",
            "1.0rc1",
            "1.0",
            "1.0.post1",
            "1.0.1",
            "1.2.9",
            "1.2.10",
            "2!0.1",
        ];
        for w in sorted.windows(2) {
            assert!(v(w[0]) < v(w[1]), "{} < {}", w[0], w[1]);
        }
        assert_eq!(v("1.0"), v("1.0"));
        assert!(v("1.0").cmp(&v("1.0.0")).is_eq());
        for bad in ["", "x", "1..2", "1.0-foo", "1.", &"9".repeat(30)] {
            assert!(Version::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn specifiers_match() {
        let s = |t: &str| Specifier::parse(t).unwrap();
        assert!(s("==1.0").matches(&v("1.0.0")));
        assert!(s(">=1.0").matches(&v("1.5")));
        assert!(!s("<1.0").matches(&v("1.0")));
        assert!(s("~=1.4").matches(&v("1.9")));
        assert!(!s("~=1.4.2").matches(&v("1.5")));
        assert!(s("==1.2.*").matches(&v("1.2.7")));
        assert!(!s("==1.2.*").matches(&v("1.3")));
        assert!(s("!=1.2.*").matches(&v("1.3")));
        assert!(Specifier::parse("===1").is_err());
        assert!(Specifier::parse(">=1.*").is_err());
    }
}
