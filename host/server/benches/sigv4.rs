//! The per-request cost of the API's authentication: verifying an SDK-signed SigV4 request
//! (canonical request, body hash, HMAC chain, constant-time compare) for a small and a 64 KiB
//! body. Run with `cargo bench -p weft-server --bench sigv4`.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::time::Instant;
use weft_server::sigv4::{hex, parse, sign, verify, Signed};

const SECRET: &str = "bench-secret";

fn main() {
    let at: DateTime<Utc> = "2026-12-05T08:00:00Z".parse().expect("a time");
    for (label, body) in [
        ("ListStateMachines, 2-byte body", b"{}".to_vec()),
        (
            "StartExecution, 64 KiB body",
            format!("{{\"input\":\"{}\"}}", "x".repeat(64 << 10)).into_bytes(),
        ),
    ] {
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-amz-json-1.0".to_string(),
            ),
            ("host".to_string(), "127.0.0.1:8470".to_string()),
            ("x-amz-date".to_string(), "20261205T080000Z".to_string()),
            (
                "x-amz-target".to_string(),
                "AWSStepFunctions.StartExecution".to_string(),
            ),
        ];
        let names = ["content-type", "host", "x-amz-date", "x-amz-target"];
        let scope = "20261205/us-east-1/states/aws4_request";
        let sig = sign(
            SECRET,
            "POST",
            "/",
            "",
            &headers,
            &names,
            &hex(&Sha256::digest(&body)),
            "20261205T080000Z",
            scope,
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=AKID/{scope}, SignedHeaders={}, Signature={sig}",
            names.join(";")
        );
        let req = Signed {
            method: "POST",
            path: "/",
            query: "",
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            body: &body,
        };
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            let s = parse(&auth).expect("parses");
            verify(SECRET, &s, &req, at).expect("verifies");
        }
        let el = t.elapsed().as_secs_f64();
        println!(
            "sigv4 verify ({label}): {:.1} us per request, {:.0} requests/s on one core",
            el * 1e6 / n as f64,
            n as f64 / el
        );
    }
}
