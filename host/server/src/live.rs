//! Live updates for the web UI: a process-wide broadcast of new history events and execution
//! status changes, and `GET /v1/executions/{arn}/events`, a server-sent events stream of one
//! execution's updates.
//!
//! Publishers (the history sink in `runner.rs`, status changes in `api.rs`) call
//! [`Live::history`] / [`Live::status`]; both are no-ops costing one atomic load when nobody
//! listens. A stream starts with a `status` event carrying the current status, then sends
//! `history` events (the event JSON exactly as GetExecutionHistory returns it) and `status`
//! events; it ends after a terminal status. A subscriber that falls behind the channel gets a
//! `resync` event and should fetch the history again.
//!
//! On a database several nodes share, an execution may run on another node, whose updates
//! this node never hears: the stream also reads the execution's stored status and last event
//! id every [`SHARED_POLL`] and sends a `resync` (the client fetches the history it lacks) or
//! a `status` event when they moved on.
//!
//! The stream is authenticated like every `/v1` route, from the `Authorization` header only (the
//! UI reads it with `fetch()`, not EventSource, so that it can send the header): a secret in a
//! URL would end up in logs, the browser's history and `Referer` headers. It needs
//! `states:GetExecutionHistory` on the execution (see [`crate::v1_access`]).

use crate::error::ApiError;
use crate::records::{parse_exec_arn, ExecutionRecord};
use crate::v1_access::{decide, V1Request};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Events buffered per subscriber before it is told to resync.
pub const CHANNEL_CAPACITY: usize = 4096;

/// One update.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A history event was recorded (the JSON GetExecutionHistory returns).
    History { execution: Arc<str>, event: Value },
    /// An execution's status changed (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED).
    Status { execution: Arc<str>, status: String },
}

impl LiveEvent {
    pub fn execution(&self) -> &str {
        match self {
            LiveEvent::History { execution, .. } | LiveEvent::Status { execution, .. } => execution,
        }
    }
}

/// The broadcast channel (cheap to clone).
#[derive(Clone)]
pub struct Live {
    tx: broadcast::Sender<LiveEvent>,
    /// Set when the server shuts down: open streams end, so a graceful shutdown does not wait
    /// for executions that are still running.
    stop: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Live {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(CHANNEL_CAPACITY);
        let (stop, _) = tokio::sync::watch::channel(false);
        Live {
            tx,
            stop: Arc::new(stop),
        }
    }
}

impl Live {
    /// Publishes a recorded history event of `execution`.
    /// True when someone listens (build events for [`Live::history`] only then).
    pub fn is_watched(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    pub fn history(&self, execution: &str, event: &Value) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(LiveEvent::History {
            execution: execution.into(),
            event: event.clone(),
        });
    }

    /// Publishes a status change of `execution`.
    pub fn status(&self, execution: &str, status: &str) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(LiveEvent::Status {
            execution: execution.into(),
            status: status.to_string(),
        });
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.tx.subscribe()
    }

    /// Ends every open stream (and the ones opened later).
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl AppState {
    /// Ends the web UI's open event streams: call it when the server starts shutting down
    /// (axum's graceful shutdown waits for open connections).
    pub fn end_live_streams(&self) {
        self.live.shutdown();
    }
}

pub fn is_terminal(status: &str) -> bool {
    status != "RUNNING" && status != "PENDING_REDRIVE"
}

/// The value of `name` in a raw query string (`a=1&b=X`), percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn load_execution(app: &AppState, arn: &str) -> Result<ExecutionRecord, ApiError> {
    let key = parse_exec_arn(arn)?;
    match app.executions.execution(&key)? {
        Some(b) => Ok(serde_json::from_slice(&b)?),
        None => Err(ApiError::new(
            "ExecutionDoesNotExist",
            format!("Execution Does Not Exist: '{arn}'"),
        )
        .with_status(axum::http::StatusCode::NOT_FOUND)),
    }
}

struct StreamState {
    rx: broadcast::Receiver<LiveEvent>,
    stop: tokio::sync::watch::Receiver<bool>,
    arn: String,
    first: Option<Event>,
    done: bool,
    /// On a database several nodes share: the store, read every [`SHARED_POLL`] for what
    /// other nodes recorded (this node's broadcast only carries its own executions' updates).
    shared: Option<SharedPoll>,
}

/// How often a stream on a shared database looks for updates other nodes stored.
pub const SHARED_POLL: std::time::Duration = std::time::Duration::from_millis(500);

/// What a stream on a shared database has told its client, to tell only what is new.
struct SharedPoll {
    app: Arc<AppState>,
    tick: tokio::time::Interval,
    /// The highest history event id the client was sent or told to fetch.
    seen: u64,
    /// The last status the client was sent.
    status: String,
}

impl SharedPoll {
    /// The execution's stored status and last history event id, read off the async threads.
    async fn read(&self, arn: &str) -> Option<(String, u64)> {
        let (app, arn) = (self.app.clone(), arn.to_string());
        tokio::task::spawn_blocking(move || {
            let rec = load_execution(&app, &arn).ok()?;
            let last = app.history.last_event_id(&arn).ok()?;
            Some((rec.status, last))
        })
        .await
        .ok()
        .flatten()
    }
}

/// `GET /v1/executions/{arn}/events`: the execution's updates as server-sent events.
pub async fn execution_events(
    State(app): State<Arc<AppState>>,
    Path(arn): Path<String>,
    req: V1Request,
) -> Response {
    let opened = decide(&app, &req, "states:GetExecutionHistory", |ctx| {
        let arn = parse_exec_arn(&arn)?;
        ctx.authorize(arn.as_str())?;
        // subscribe before reading the status, so no change falls between the two
        let rx = app.live.subscribe();
        Ok((rx, load_execution(&app, &arn)?))
    });
    let (rx, rec) = match opened {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let first = status_event(&rec.status);
    let shared = match app.database {
        weft_engine::persistence::Database::Postgres(_) => {
            let seen = {
                let (app, arn) = (app.clone(), rec.arn.clone());
                tokio::task::spawn_blocking(move || app.history.last_event_id(&arn).ok())
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(0)
            };
            let mut tick = tokio::time::interval(SHARED_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            Some(SharedPoll {
                app: app.clone(),
                tick,
                seen,
                status: rec.status.clone(),
            })
        }
        weft_engine::persistence::Database::Sled(_) => None,
    };
    let state = StreamState {
        rx,
        stop: app.live.stop.subscribe(),
        arn: rec.arn.clone(),
        first: Some(first),
        done: is_terminal(&rec.status),
        shared,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if let Some(ev) = st.first.take() {
            return Some((Ok::<Event, Infallible>(ev), st));
        }
        if st.done || *st.stop.borrow() {
            return None;
        }
        loop {
            let polled = async {
                match st.shared.as_mut() {
                    Some(p) => p.tick.tick().await,
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                r = st.rx.recv() => Some(r),
                _ = polled => None,
                _ = st.stop.wait_for(|stop| *stop) => return None,
            };
            let Some(next) = next else {
                let p = st.shared.as_mut().expect("ticks only with a poll");
                let Some((status, last)) = p.read(&st.arn).await else {
                    continue;
                };
                if last > p.seen {
                    // another node recorded events: the client fetches what it lacks
                    p.seen = last;
                    let ev = Event::default()
                        .event("resync")
                        .data(json!({"stored": last}).to_string());
                    return Some((Ok(ev), st));
                }
                if status != p.status {
                    p.status = status.clone();
                    st.done = is_terminal(&status);
                    return Some((Ok(status_event(&status)), st));
                }
                continue;
            };
            match next {
                Ok(ev) if ev.execution() == st.arn => {
                    let out = match ev {
                        LiveEvent::History { event, .. } => {
                            if let Some(p) = st.shared.as_mut() {
                                p.seen = p.seen.max(event["id"].as_u64().unwrap_or(0));
                            }
                            Event::default().event("history").data(event.to_string())
                        }
                        LiveEvent::Status { status, .. } => {
                            if let Some(p) = st.shared.as_mut() {
                                if p.status == status {
                                    continue;
                                }
                                p.status = status.clone();
                            }
                            st.done = is_terminal(&status);
                            status_event(&status)
                        }
                    };
                    return Some((Ok(out), st));
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let ev = Event::default()
                        .event("resync")
                        .data(json!({"missed": n}).to_string());
                    return Some((Ok(ev), st));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn status_event(status: &str) -> Event {
    Event::default()
        .event("status")
        .data(json!({"status": status}).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query() {
        assert_eq!(
            query_param(Some("a=1&name=AB%2BC"), "name").as_deref(),
            Some("AB+C")
        );
        assert_eq!(query_param(Some("a=1"), "name"), None);
        assert_eq!(query_param(None, "name"), None);
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("x%zz"), "x%zz");
    }

    #[tokio::test]
    async fn publish_without_listeners_is_a_no_op() {
        let live = Live::default();
        live.history("a", &json!({"id": 1}));
        let mut rx = live.subscribe();
        live.status("a", "SUCCEEDED");
        match rx.recv().await.unwrap() {
            LiveEvent::Status { status, .. } => assert_eq!(status, "SUCCEEDED"),
            other => panic!("{other:?}"),
        }
    }
}
