//! Property tests for issue 13 item 1: every spelling of a URL (IPv4 in decimal, hex, octal and
//! short forms, IPv4-mapped IPv6, case, trailing dots, explicit default ports, percent-encoded
//! unreserved characters, dot-segments, fragments) gets the decision its canonical form gets,
//! and a URL a Deny matches is denied in every spelling.

use proptest::prelude::*;
use weft_sandbox::http_url::canonicalize;
use weft_sandbox::Policy;

#[derive(Debug, Clone)]
enum Host {
    V4(u32),
    Domain(Vec<String>),
}

#[derive(Debug, Clone)]
struct Url {
    https: bool,
    host: Host,
    port: Option<u16>,
    segs: Vec<String>,
    query: Option<String>,
}

fn host() -> impl Strategy<Value = Host> {
    prop_oneof![
        // loopback and a few fixed addresses, so the Deny patterns below hit often
        prop_oneof![
            Just(0x7f00_0001u32),
            Just(0x7f00_0002u32),
            Just(0x0a00_0001u32),
            any::<u32>()
        ]
        .prop_map(Host::V4),
        prop::collection::vec("[a-z][a-z0-9]{0,6}", 1..4).prop_map(Host::Domain),
    ]
}

fn url() -> impl Strategy<Value = Url> {
    (
        any::<bool>(),
        host(),
        prop::option::of(prop_oneof![Just(80u16), Just(443u16), 1u16..=65535]),
        prop::collection::vec("[a-zA-Z0-9_~-]{0,6}", 0..4),
        prop::option::of("[a-z0-9=&]{0,8}"),
    )
        .prop_map(|(https, host, port, segs, query)| Url {
            https,
            host,
            port,
            segs,
            query,
        })
}

fn octets(a: u32) -> [u32; 4] {
    [a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255]
}

/// One of many spellings of an IPv4 address.
fn spell_v4(a: u32, how: u8) -> String {
    let o = octets(a);
    match how % 8 {
        0 => format!("{}.{}.{}.{}", o[0], o[1], o[2], o[3]),
        1 => format!("{a}"),
        2 => format!("0x{a:x}"),
        3 => format!("0{:o}.0{:o}.0{:o}.0{:o}", o[0], o[1], o[2], o[3]),
        4 => format!("{}.{}.{}", o[0], o[1], a & 0xffff),
        5 => format!("{}.{}", o[0], a & 0xff_ffff),
        6 => format!("[::ffff:{}.{}.{}.{}]", o[0], o[1], o[2], o[3]),
        _ => format!("0X{:X}.{}.{}.{}.", o[0], o[1], o[2], o[3]),
    }
}

fn canonical_text(u: &Url) -> String {
    let scheme = if u.https { "https" } else { "http" };
    let host = match &u.host {
        Host::V4(a) => spell_v4(*a, 0),
        Host::Domain(l) => l.join("."),
    };
    let port = u.port.map(|p| format!(":{p}")).unwrap_or_default();
    let mut s = format!("{scheme}://{host}{port}/{}", u.segs.join("/"));
    if let Some(q) = &u.query {
        s.push('?');
        s.push_str(q);
    }
    s
}

/// A re-encoding of `u` chosen by the bits of `k`.
fn respell(u: &Url, k: u64) -> String {
    let bit = |i: u32| k >> i & 1 == 1;
    let scheme = match (u.https, bit(0)) {
        (true, false) => "https",
        (true, true) => "HTTPS",
        (false, false) => "http",
        (false, true) => "HtTp",
    };
    let host = match &u.host {
        Host::V4(a) => spell_v4(*a, (k >> 1) as u8),
        Host::Domain(l) => {
            let mut h: String = l
                .join(".")
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if k >> (4 + i % 16) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            if bit(20) {
                h.push('.');
            }
            h
        }
    };
    let default = if u.https { 443 } else { 80 };
    let port = match u.port {
        Some(p) => format!(":{p}"),
        None if bit(21) => format!(":{default}"),
        None if bit(22) => format!(":{:05}", default),
        None => String::new(),
    };
    let mut path = String::new();
    if bit(23) {
        path.push_str("/./");
        path.push_str("x/..");
    }
    if bit(24) {
        path.push_str("/y/%2e%2E");
    }
    if bit(25) {
        path.push_str("/.");
    }
    for (i, s) in u.segs.iter().enumerate() {
        path.push(if bit(26) && i == 0 { '\\' } else { '/' });
        for (j, c) in s.chars().enumerate() {
            if k >> (32 + (i * 7 + j) % 30) & 1 == 1 {
                if bit(27) {
                    path.push_str(&format!("%{:02x}", c as u32));
                } else {
                    path.push_str(&format!("%{:02X}", c as u32));
                }
            } else {
                path.push(c);
            }
        }
    }
    if u.segs.is_empty() {
        path.push('/');
    }
    let mut s = format!("{scheme}://{host}{port}{path}");
    if let Some(q) = &u.query {
        s.push('?');
        s.push_str(q);
    }
    if bit(28) {
        s.push_str("#frag/../../x");
    }
    s
}

fn policy() -> Policy {
    Policy::parse(
        r#"{"Statement":[
          {"Effect":"Allow","Action":"http:Request","Resource":["http://127.0.0.1:*/*","https://*.b/*","http://10.0.0.1/pub/*"]},
          {"Sid":"NoTwo","Effect":"Deny","Action":"http:Request","Resource":"http://127.0.0.2*"},
          {"Sid":"NoTwoTls","Effect":"Deny","Action":"*","Resource":"https://127.0.0.2*"},
          {"Sid":"NoAdmin","Effect":"Deny","Action":"http:Request","Resource":"*/admin*"}]}"#,
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_spelling_has_the_canonical_form(u in url(), k in any::<u64>()) {
        let canonical = canonicalize(&canonical_text(&u)).unwrap();
        let spelled = respell(&u, k);
        prop_assert_eq!(canonicalize(&spelled).unwrap(), canonical.clone(), "{}", spelled);
        // the canonical text is a fixed point
        prop_assert_eq!(canonicalize(&canonical.to_string()).unwrap(), canonical);
    }

    #[test]
    fn every_spelling_gets_the_canonical_decision(u in url(), k in any::<u64>()) {
        let p = policy();
        let canonical = canonicalize(&canonical_text(&u)).unwrap().to_string();
        let spelled = respell(&u, k);
        let want = p.evaluate("http:Request", &canonical);
        prop_assert_eq!(p.evaluate("http:Request", &spelled), want.clone(), "{} vs {}", spelled, canonical);
        if let Host::V4(0x7f00_0002) = u.host {
            prop_assert!(!want.allowed(), "{}", canonical);
        }
    }

    #[test]
    fn userinfo_is_always_refused(u in url(), user in "[a-z0-9.:]{0,8}", k in any::<u64>()) {
        let spelled = respell(&u, k);
        let (scheme, rest) = spelled.split_once("://").unwrap();
        let with = format!("{scheme}://{user}@{rest}");
        if !user.is_empty() {
            prop_assert!(canonicalize(&with).is_err(), "{}", with);
        }
    }
}

/// The reproduction of issue 13 item 1, spelled out.
#[test]
fn issue_reproduction() {
    let p = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Action":"http:Request","Resource":["http://127.0.0.1:*/*","http://*.example.com/*","http://h.test/public/*"]},
                         {"Effect":"Deny","Action":"http:Request","Resource":"http://127.0.0.2*"}]}"#,
    )
    .unwrap();
    // userinfo smuggling another host is refused before any grant is consulted
    assert!(canonicalize("http://127.0.0.1:1@127.0.0.2:8080/x").is_err());
    assert!(!p
        .evaluate("http:Request", "http://127.0.0.1:1@127.0.0.2:8080/x")
        .allowed());
    // the host glob sees the host only
    assert!(!p
        .evaluate("http:Request", "http://evil.com/?.example.com/")
        .allowed());
    assert!(p
        .evaluate("http:Request", "http://a.example.com/x")
        .allowed());
    // dot-segments are resolved before matching
    assert!(!p
        .evaluate("http:Request", "http://h.test/public/../index.json")
        .allowed());
    assert!(!p
        .evaluate("http:Request", "http://h.test/public/%2e%2e/index.json")
        .allowed());
    assert!(p
        .evaluate("http:Request", "http://h.test/public/x.json")
        .allowed());
    // the Deny holds in every spelling
    for s in [
        "http://127.0.0.2:8080/",
        "http://2130706434:8080/",
        "http://0x7f000002:8080/",
        "http://0177.0.0.02:8080/",
        "http://127.2:8080/",
        "http://127.0.2:8080/",
        "http://[::ffff:127.0.0.2]:8080/",
        "http://[::FFFF:7F00:2]:8080/",
        "http://127.0.0.2.:8080/",
    ] {
        assert!(!p.evaluate("http:Request", s).allowed(), "{s}");
    }
}
