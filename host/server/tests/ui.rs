//! The web UI's static files: served by the router on 127.0.0.1:0 without authentication, with
//! the right content types; `POST /` (the API) still answers next to `GET /`.

use weft_server::auth::Tokens;

mod common;

use common::{request, start_with, Server};

async fn start(tokens: Option<Tokens>) -> Server {
    start_with(tokens, 10).await
}

fn header<'a>(hs: &'a [(String, String)], name: &str) -> &'a str {
    hs.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn tokens() -> Tokens {
    Tokens::parse("secret-token\n")
}

#[tokio::test]
async fn index_is_html_without_auth() {
    let srv = start(Some(tokens())).await;
    let (status, hs, body) = request(srv.addr, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        header(&hs, "content-type").starts_with("text/html"),
        "{hs:?}"
    );
    assert!(body.contains("<title>weft server</title>"), "{body}");
    assert!(body.contains("/ui/app.js") && body.contains("/ui/app.css"));
    assert!(body.contains("<label for=\"token\">"));
    // the secret's field has no name: a form submitted before the script runs sends nothing
    assert!(!body.contains("name=\"token\""), "{body}");
    // no other site may frame the UI (clickjacking) or add scripts to it
    assert_eq!(header(&hs, "x-frame-options"), "DENY");
    let csp = header(&hs, "content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(header(&hs, "x-content-type-options"), "nosniff");
}

#[tokio::test]
async fn the_app_never_puts_the_secret_in_a_url() {
    let srv = start(Some(tokens())).await;
    let (_, hs, js) = request(srv.addr, "GET", "/ui/app.js", &[], "").await;
    assert!(header(&hs, "content-security-policy").contains("frame-ancestors"));
    // the event stream is read with fetch() and the Authorization header (EventSource cannot
    // send headers, which is why a key used to travel in the query string)
    assert!(!js.contains("token="), "a key in a query string");
    assert!(
        !js.contains("new EventSource"),
        "EventSource cannot send the header"
    );
    assert!(js.contains("getReader()") && js.contains("Authorization"));
}

#[tokio::test]
async fn assets_have_content_types() {
    let srv = start(Some(tokens())).await;
    let (status, hs, body) = request(srv.addr, "GET", "/ui/app.js", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        header(&hs, "content-type").starts_with("text/javascript"),
        "{hs:?}"
    );
    assert!(body.contains("AWSStepFunctions."));
    assert!(body.contains("application/x-amz-json-1.0"));
    assert!(body.contains("/v1/state-machines/summary") && body.contains("GetExecutionHistory"));
    assert!(body.contains("JSON.parse"));

    let (status, hs, body) = request(srv.addr, "GET", "/ui/app.css", &[], "").await;
    assert_eq!(status, 200);
    assert!(
        header(&hs, "content-type").starts_with("text/css"),
        "{hs:?}"
    );
    assert!(body.contains("@media"));

    let (status, _, _) = request(srv.addr, "GET", "/ui/missing.js", &[], "").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn api_still_served_on_post() {
    let srv = start(Some(tokens())).await;
    let target = [
        ("X-Amz-Target", "AWSStepFunctions.ListStateMachines"),
        ("Content-Type", "application/x-amz-json-1.0"),
    ];
    let (status, _, body) = request(srv.addr, "POST", "/", &target, "{}").await;
    assert_eq!(status, 403, "{body}");
    let mut with_auth = target.to_vec();
    with_auth.push(("Authorization", "Bearer secret-token"));
    let (status, hs, body) = request(srv.addr, "POST", "/", &with_auth, "{}").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&hs, "content-type"), "application/x-amz-json-1.0");
    assert!(body.contains("stateMachines"));
}
