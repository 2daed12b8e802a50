//! HTTP URLs as the grant sees them: a guest's request URL is parsed once (WHATWG parsing by the
//! `url` crate) into a [`CanonicalUrl`] (scheme, host in one canonical form, explicit port,
//! path and query with normalised percent-encoding, no userinfo, no fragment), which is both what
//! `http:Request` statements are matched against and what the request is sent to. `http(s)://`
//! resources of a policy are parsed into an [`HttpPattern`] whose host part only ever sees the
//! host, its port part the port and its path part the path and query.

use crate::glob::{glob_match, has_wildcard};
use std::fmt;
use std::net::Ipv6Addr;

/// A request URL in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// A lowercase domain without a trailing dot, a dotted-decimal IPv4 address, or a bracketed
    /// compressed IPv6 address (IPv4-mapped IPv6 addresses are written as IPv4).
    pub host: String,
    pub port: u16,
    /// The path, plus `?query` when there is one.
    pub path_query: String,
}

impl fmt::Display for CanonicalUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}{}",
            self.scheme, self.host, self.port, self.path_query
        )
    }
}

/// Why a request URL is refused before any grant is consulted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{url}` is not an acceptable request URL: {reason}")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" {
        443
    } else {
        80
    }
}

/// Canonical text of a host parsed by `url`.
fn canonical_host(h: url::Host<&str>) -> Result<String, String> {
    match h {
        url::Host::Domain(d) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            if d.is_empty() || d.split('.').any(str::is_empty) {
                return Err(format!("`{d}` has an empty label"));
            }
            Ok(d.to_ascii_lowercase())
        }
        url::Host::Ipv4(a) => Ok(a.to_string()),
        url::Host::Ipv6(a) => ipv6_host(a),
    }
}

fn ipv6_host(a: Ipv6Addr) -> Result<String, String> {
    if let Some(v4) = a.to_ipv4_mapped() {
        return Ok(v4.to_string());
    }
    // deprecated IPv4-compatible addresses (`::a.b.c.d`) are one more spelling of an IPv4
    // address on some stacks: refused rather than guessed
    let s = a.segments();
    if s[..6] == [0; 6] && a != Ipv6Addr::UNSPECIFIED && a != Ipv6Addr::LOCALHOST {
        return Err(format!(
            "[{a}] is an IPv4-compatible IPv6 address; write the IPv4 address"
        ));
    }
    Ok(format!("[{a}]"))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encoding normalised: escapes of unreserved characters decoded, other escapes in
/// uppercase hex, a `%` that starts no escape encoded as `%25`.
pub(crate) fn normalize_percent(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                let v = (h * 16 + l) as u8;
                if is_unreserved(v) {
                    out.push(v as char);
                } else {
                    out.push_str(&format!("%{v:02X}"));
                }
                i += 3;
                continue;
            }
            out.push_str("%25");
            i += 1;
            continue;
        }
        // `s` is ASCII after url's serialisation, but stay correct for any UTF-8
        let ch = s[i..].chars().next().unwrap_or('\u{FFFD}');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Refuses path segments a server could still turn into traversal: encoded slashes and
/// backslashes, and dot-segments in any encoding.
fn check_segments(path: &str) -> Result<(), String> {
    for seg in path.split('/') {
        let d = percent_decode(seg);
        if d.contains(&b'/') || d.contains(&b'\\') {
            return Err(format!("path segment `{seg}` encodes a slash or backslash"));
        }
        if d == b"." || d == b".." {
            return Err(format!("path segment `{seg}` is a dot-segment"));
        }
    }
    Ok(())
}

/// Parses a request URL into its canonical form, or says why it is refused.
pub fn canonicalize(raw: &str) -> Result<CanonicalUrl, UrlError> {
    let bad = |reason: String| UrlError {
        url: crate::host::truncate(raw, 512).to_string(),
        reason,
    };
    let u = url::Url::parse(raw).map_err(|e| bad(e.to_string()))?;
    let scheme = u.scheme().to_string();
    if scheme != "http" && scheme != "https" {
        return Err(bad(format!("the scheme `{scheme}` is not http or https")));
    }
    // any `@` in the authority, even an empty `user:@`, is refused
    let authority = raw
        .split_once(':')
        .map(|(_, r)| {
            r.trim_start_matches(['/', '\\'])
                .split(['/', '\\', '?', '#'])
                .next()
                .unwrap_or("")
        })
        .unwrap_or("");
    if authority.contains('@') || !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "credentials in the URL (`user:pass@`) are not allowed; send them in a header".into(),
        ));
    }
    let host = canonical_host(u.host().ok_or_else(|| bad("no host".into()))?).map_err(bad)?;
    let port = u
        .port_or_known_default()
        .ok_or_else(|| bad("no port".into()))?;
    if port == 0 {
        return Err(bad("port 0".into()));
    }
    let path = normalize_percent(u.path());
    check_segments(&path).map_err(bad)?;
    let mut path_query = path;
    if let Some(q) = u.query() {
        path_query.push('?');
        path_query.push_str(&normalize_percent(q));
    }
    Ok(CanonicalUrl {
        scheme,
        host,
        port,
        path_query,
    })
}

/// The `http(s)://` resource of a policy, split into parts that each match one part of a
/// [`CanonicalUrl`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpPattern {
    scheme: String,
    host: String,
    /// `None`: the default port of the request's scheme.
    port: Option<String>,
    path: String,
}

impl HttpPattern {
    /// Parses `scheme://host[:port]/path` where each part may use `*` and `?`. A pattern whose
    /// authority ends in `*` and has no path (`http://10.0.0.*`) extends over any port and path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not scheme://host/path"))?;
        let scheme = scheme.to_ascii_lowercase();
        if !glob_match(&scheme, "http") && !glob_match(&scheme, "https") {
            return Err(format!("`{text}`: the scheme must be http or https"));
        }
        if rest.contains(['#', '\\']) || rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "`{text}`: a URL pattern may not contain `#`, `\\`, spaces or control characters"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(format!(
                "`{text}`: credentials (`user@`) cannot appear in a URL pattern"
            ));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r
                .split_once(']')
                .ok_or_else(|| format!("`{text}`: `[` without `]`"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("`{text}`: expected `:port` after `]`"))?,
                ),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("`{text}`: no host"));
        }
        let host = pattern_host(&host).map_err(|e| format!("`{text}`: {e}"))?;
        let mut port = match port {
            None => None,
            Some("") => return Err(format!("`{text}`: empty port")),
            Some(p)
                if p.bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'?') =>
            {
                if has_wildcard(p) {
                    Some(p.to_string())
                } else {
                    let n: u16 = p
                        .parse()
                        .map_err(|_| format!("`{text}`: port `{p}` is out of range"))?;
                    Some(n.to_string())
                }
            }
            Some(p) => return Err(format!("`{text}`: `{p}` is not a port")),
        };
        let path = if path.is_empty() {
            if !authority.ends_with('*') {
                return Err(format!(
                    "`{text}` has no path: add `/` for the root only or `/*` for every path"
                ));
            }
            port.get_or_insert_with(|| "*".to_string());
            "*".to_string()
        } else {
            let p = normalize_percent(path);
            for seg in p.split('/') {
                if seg == "." || seg == ".." {
                    return Err(format!(
                        "`{text}`: dot-segments are not allowed in a URL pattern"
                    ));
                }
            }
            p
        };
        Ok(Self {
            scheme,
            host,
            port,
            path,
        })
    }

    pub fn matches(&self, u: &CanonicalUrl) -> bool {
        glob_match(&self.scheme, &u.scheme)
            && glob_match(&self.host, &u.host)
            && match &self.port {
                Some(p) => glob_match(p, &u.port.to_string()),
                None => u.port == default_port(&u.scheme),
            }
            && glob_match(&self.path, &u.path_query)
    }
}

/// The host part of a pattern in the same canonical form as a request's host: without
/// wildcards it goes through the URL host parser (IPv4 spellings, IDNA, case, trailing dot);
/// with wildcards it must be ASCII and is lowercased.
fn pattern_host(h: &str) -> Result<String, String> {
    if !has_wildcard(h) {
        let parsed = url::Host::parse(h).map_err(|e| format!("host `{h}`: {e}"))?;
        return canonical_host(match &parsed {
            url::Host::Domain(d) => url::Host::Domain(d.as_str()),
            url::Host::Ipv4(a) => url::Host::Ipv4(*a),
            url::Host::Ipv6(a) => url::Host::Ipv6(*a),
        });
    }
    if !h.bytes().all(|b| {
        b.is_ascii_alphanumeric()
            || matches!(b, b'.' | b'-' | b'_' | b'*' | b'?' | b'[' | b']' | b':')
    }) {
        return Err(format!(
            "wildcard host `{h}` may only use ASCII letters, digits, `.`, `-`, `_`, `*`, `?` (write IDNs in punycode)"
        ));
    }
    let h = h.to_ascii_lowercase();
    Ok(h.strip_suffix('.').map(str::to_string).unwrap_or(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        canonicalize(s).unwrap().to_string()
    }

    #[test]
    fn spellings_of_one_url_share_a_canonical_form() {
        let want = "http://127.0.0.1:80/public/x";
        for s in [
            "http://127.0.0.1/public/x",
            "HTTP://127.0.0.1:80/public/x",
            "http://2130706433/public/x",
            "http://0x7f.1/public/x",
            "http://0x7f000001/public/x",
            "http://0177.0.0.1/public/x",
            "http://127.1/public/x",
            "http://127.0.0.1./public/x",
            "http://[::ffff:127.0.0.1]/public/x",
            "http://[::ffff:7f00:1]:80/public/x",
            "http://127.0.0.1/public/a/../x",
            "http://127.0.0.1/public/%2e%2e/public/x",
            "http://127.0.0.1/public/./x#frag",
            "http://127.0.0.1\\public\\x",
            "http://127.0.0.1/public/%78",
            "http://%31%32%37.0.0.1/public/x",
        ] {
            assert_eq!(canon(s), want, "{s}");
        }
        assert_eq!(
            canon("https://Example.COM./a?b=%7e"),
            "https://example.com:443/a?b=~"
        );
    }

    #[test]
    fn refused_urls() {
        for s in [
            "http://127.0.0.1:1@127.0.0.2:8080/x",
            "http://:@127.0.0.2/",
            "http:\\\\@127.0.0.2/",
            "http:/u@127.0.0.2/",
            "http://user@example.com/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "http://example.com/a%2f..%2fb",
            "http://example.com/a/%2e%2e%5cb",
            "http://[::127.0.0.2]/",
            "http://example..com/",
            "not a url",
        ] {
            assert!(canonicalize(s).is_err(), "{s} was accepted");
        }
    }

    #[test]
    fn patterns_match_parts() {
        let p = HttpPattern::parse("http://*.example.com/*").unwrap();
        assert!(p.matches(&canonicalize("http://a.example.com/x").unwrap()));
        assert!(!p.matches(&canonicalize("http://evil.com/?.example.com/").unwrap()));
        assert!(!p.matches(&canonicalize("http://a.example.com:8080/x").unwrap()));
        let p = HttpPattern::parse("http://127.0.0.1:*/public/*").unwrap();
        assert!(p.matches(&canonicalize("http://127.0.0.1:9/public/x?q").unwrap()));
        assert!(!p.matches(&canonicalize("http://127.0.0.1:9/public/../index.json").unwrap()));
        let d = HttpPattern::parse("http://127.0.0.2*").unwrap();
        for s in [
            "http://127.0.0.2:8080/x",
            "http://2130706434/",
            "http://0x7f.0.0.2/",
            "http://127.2:1/",
            "http://[::ffff:127.0.0.2]/",
        ] {
            assert!(d.matches(&canonicalize(s).unwrap()), "{s}");
        }
        let p = HttpPattern::parse("HTTP://0x7F.1/").unwrap();
        assert!(p.matches(&canonicalize("http://127.0.0.1:80/").unwrap()));
        for bad in [
            "http://example.com",
            "http://u@example.com/",
            "http://example.com/a/../b",
            "ftp://example.com/*",
            "http://example.com:99999/",
            "http://exa mple.com/",
        ] {
            assert!(HttpPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
