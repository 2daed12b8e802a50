//! The web UI: a small single-page app (plain HTML, CSS and JavaScript, no build step) embedded
//! in the binary and served at `GET /`, `GET /ui/app.js` and `GET /ui/app.css`.
//!
//! The static files need no authentication; the app itself calls the Step Functions API
//! (`POST /`), its JSON endpoints under `/v1` ([`crate::rest`], live updates in
//! [`crate::live`]) and Airflow's API under `/api/v2` ([`crate::airflow_api`]: a DAG's pause
//! switch, trigger form, marks and source) with the secret the user logs in with (kept in
//! `localStorage`), always in the `Authorization` header, never in a URL. Whatever a DAG file
//! or a request supplied is put into the page as text (`textContent`), never as HTML. Every response forbids framing by other sites
//! (`frame-ancestors 'none'`, `X-Frame-Options: DENY`: no clickjacking of the UI's buttons) and
//! limits the page to the server's own scripts, styles and connections
//! (`Content-Security-Policy`). `host/cli/tests/browser.rs` drives it in headless Chromium.

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The app's HTML shell.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");
/// The app's script.
pub const APP_JS: &str = include_str!("../assets/app.js");
/// The app's stylesheet.
pub const APP_CSS: &str = include_str!("../assets/app.css");

/// What the UI's pages may load and who may frame them.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, CSP),
            (X_FRAME_OPTIONS, "DENY"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the app's HTML shell.
pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

/// `GET /ui/app.js` and `GET /ui/app.css` (the `GET /` route is set up next to `POST /` by
/// [`crate::router`]).
pub fn asset_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}
