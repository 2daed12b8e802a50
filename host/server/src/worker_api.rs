//! The routes `weft worker` calls, and nothing else a worker needs:
//!
//! - `POST /v1/worker/poll` (`weft:PollTask` on `weft:queue:NAME`, every queue polled): a
//!   [`PollRequest`]; waits up to [`crate::dispatch::POLL_WAIT`] for a task of the worker's queues and answers
//!   a [`weft_engine::remote::PollResponse`].
//! - `POST /v1/worker/heartbeat` (`weft:Heartbeat` on `weft:worker:ID`): a
//!   [`HeartbeatRequest`] for a running try; `{"cancel": true}` asks the worker to stop it.
//! - `POST /v1/worker/report` (`weft:ReportTask` on `weft:worker:ID`): a [`TaskReport`]; one
//!   that carries a `next` poll (also `weft:PollTask` on each of its queues, decided before the
//!   report takes effect) is answered as that poll is, long wait included, so a slot reports
//!   and takes (or waits for) its next task in one round trip.
//! - `POST /v1/worker/drain` (`weft:Heartbeat` on `weft:worker:ID`): a [`DrainRequest`] from a
//!   worker shutting down; its session (the `session` its polls carry) takes no more tasks and
//!   its waiting polls are answered at once, while its running tries heartbeat and report.
//! - `GET /v1/blobs/{digest}` (`weft:GetBlob` on `weft:blob:DIGEST`): an installed plugin's
//!   component, or the Python packages archive of a try running on a worker of the caller's
//!   key (no other blob: not another key's, not one whose try ended), streamed as it lies in
//!   the node's store; the worker verifies the digest.
//!
//! Everything a worker sends is hostile: names are checked (length, alphabet), a worker id is
//! bound to the access key that first used it, a try can be heartbeated and reported only by
//! the worker that took it and only while the node waits for it (its `task_id` is its fencing
//! id), and outputs, streams and record lists are capped. A refused report is answered 409.

use crate::dispatch::DispatchError;
use crate::error::ApiError;
use crate::rest::reply;
use crate::v1_access::{decide, decide_with, V1Request};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::sync::Arc;
use weft_engine::remote::{
    valid_name, DrainRequest, HeartbeatRequest, PollRequest, RemoteTask, TaskReport, MAX_NAME_LEN,
    MAX_QUEUES,
};

/// Most concurrent sandboxes a worker may announce.
pub const MAX_SLOTS: u32 = 4096;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/worker/poll", post(poll))
        .route("/v1/worker/heartbeat", post(heartbeat))
        .route("/v1/worker/report", post(report))
        .route("/v1/worker/drain", post(drain))
        .route("/v1/workers", get(workers))
        .route("/v1/blobs/{digest}", get(blob))
}

fn name(field: &str, s: &str) -> Result<(), ApiError> {
    if valid_name(s) {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "/{field}: `{}` is not a name (1 to {MAX_NAME_LEN} letters, digits, `.`, `_` or `-`)",
            s.chars().take(MAX_NAME_LEN).collect::<String>()
        )))
    }
}

fn body<T: serde::de::DeserializeOwned>(req: &V1Request) -> Result<T, ApiError> {
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::validation(format!("request body: {e}")))
}

fn check_poll(p: &PollRequest) -> Result<(), ApiError> {
    name("worker_id", &p.worker_id)?;
    name("host", &p.host)?;
    if p.queues.is_empty() || p.queues.len() > MAX_QUEUES {
        return Err(ApiError::validation(format!(
            "/queues: a worker listens to 1 to {MAX_QUEUES} queues"
        )));
    }
    for (i, q) in p.queues.iter().enumerate() {
        name(&format!("queues/{i}"), q)?;
    }
    if let Some(session) = &p.session {
        name("session", session)?;
    }
    if p.slots > MAX_SLOTS || p.busy > p.slots {
        return Err(ApiError::validation(format!(
            "/slots: at most {MAX_SLOTS} slots, and busy <= slots"
        )));
    }
    Ok(())
}

fn dispatch_error(e: DispatchError) -> ApiError {
    let kind = match e {
        DispatchError::NotYours { .. } => "TaskNotAssignedException",
        DispatchError::WorkerIdTaken { .. } => "AccessDeniedException",
    };
    let status = match e {
        DispatchError::NotYours { .. } => StatusCode::CONFLICT,
        DispatchError::WorkerIdTaken { .. } => StatusCode::FORBIDDEN,
    };
    ApiError::new(kind, e.to_string()).with_status(status)
}

async fn poll(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    // polls, heartbeats and reports are the workers' data plane, several per task: like
    // CloudTrail's data events they are not audited when allowed (refusals are)
    let first = decide_with(&app, &req, "weft:PollTask", false, |ctx| {
        let p: PollRequest = body(&req)?;
        check_poll(&p)?;
        ctx.authorize(format!("weft:queue:{}", p.queues[0]))?;
        for q in &p.queues[1..] {
            ctx.authorize_also("weft:PollTask", &format!("weft:queue:{q}"))?;
        }
        Ok((p, ctx.caller().to_string()))
    });
    let (p, principal) = match first {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    next_task(&app, &p, &principal).await
}

/// One look at the queues for poll `p`.
enum Look {
    /// A task (or the poll's refusal): the answer.
    Answered(Response),
    /// No task: the depth of its queues.
    Empty(u64),
}

fn look(app: &AppState, p: &PollRequest, principal: &str) -> Look {
    match app.dispatch.take(p, principal) {
        Err(e) => Look::Answered(dispatch_error(e).into_response()),
        Ok((Some(task), depth)) => Look::Answered(answer(&PollAnswer {
            task: Some(&task),
            queue_depth: depth,
        })),
        Ok((None, depth)) => Look::Empty(depth),
    }
}

fn no_task(depth: u64) -> Response {
    answer(&PollAnswer {
        task: None,
        queue_depth: depth,
    })
}

/// Answers poll `p` with a task of its queues, waiting up to the poll wait for one.
async fn next_task(app: &AppState, p: &PollRequest, principal: &str) -> Response {
    // a busy slot's usual case, a task already waiting: no wakeup to set up
    match look(app, p, principal) {
        Look::Answered(r) => return r,
        Look::Empty(depth) if app.dispatch.is_draining(p) => return no_task(depth),
        Look::Empty(_) => {}
    }
    let deadline = tokio::time::Instant::now() + app.dispatch.poll_wait();
    // one wakeup per queue: a task queued wakes one poll of its queue
    let wakes = app.dispatch.wakeup(&p.queues);
    loop {
        // registered before looking, so a task queued in between is not missed
        let mut notified: Vec<_> = wakes.iter().map(|n| Box::pin(n.notified())).collect();
        for n in &mut notified {
            n.as_mut().enable();
        }
        let any = std::future::poll_fn(|cx| {
            for n in &mut notified {
                if std::future::Future::poll(n.as_mut(), cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
            }
            std::task::Poll::Pending
        });
        match look(app, p, principal) {
            Look::Answered(r) => return r,
            Look::Empty(depth) => {
                if tokio::time::Instant::now() >= deadline
                    || app.dispatch.is_draining(p)
                    || tokio::time::timeout_at(deadline, any).await.is_err()
                {
                    return no_task(depth);
                }
            }
        }
    }
}

/// A [`weft_engine::remote::PollResponse`] as it is sent, borrowing the task the dispatcher holds.
#[derive(serde::Serialize)]
struct PollAnswer<'a> {
    task: Option<&'a RemoteTask>,
    queue_depth: u64,
}

/// A JSON answer, serialised straight from `v` (no intermediate [`Value`]).
fn answer(v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(e.to_string()).into_response(),
    }
}

async fn heartbeat(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    reply(decide_with(&app, &req, "weft:Heartbeat", false, |ctx| {
        let h: HeartbeatRequest = body(&req)?;
        name("worker_id", &h.worker_id)?;
        name("task_id", &h.task_id)?;
        ctx.authorize(format!("weft:worker:{}", h.worker_id))?;
        let cancel = app
            .dispatch
            .heartbeat(&h.worker_id, ctx.caller(), &h.task_id)
            .map_err(dispatch_error)?;
        Ok(json!({ "cancel": cancel }))
    }))
}

/// A worker shutting down: its session takes no more tasks, its waiting polls are answered.
async fn drain(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    // rare and telling (who took a worker out of service): audited, unlike the data plane
    reply(decide_with(&app, &req, "weft:Heartbeat", true, |ctx| {
        let d: DrainRequest = body(&req)?;
        name("worker_id", &d.worker_id)?;
        name("session", &d.session)?;
        ctx.authorize(format!("weft:worker:{}", d.worker_id))?;
        app.dispatch
            .drain(&d.worker_id, ctx.caller(), &d.session)
            .map_err(dispatch_error)?;
        Ok(json!({}))
    }))
}

/// Caps what a report may make the node keep (see [`weft_engine::remote::RemoteOutcome::cap`]).
pub fn cap_report(r: &mut TaskReport) {
    r.outcome.cap();
}

async fn report(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    let reported = decide_with(&app, &req, "weft:ReportTask", false, |ctx| {
        let mut r: TaskReport = body(&req)?;
        name("worker_id", &r.worker_id)?;
        name("task_id", &r.task_id)?;
        ctx.authorize(format!("weft:worker:{}", r.worker_id))?;
        // the poll that rides along is decided with the report, before either takes effect
        let next = r.next.take();
        if let Some(p) = &next {
            check_poll(p)?;
            if p.worker_id != r.worker_id {
                return Err(ApiError::validation(
                    "/next/worker_id: a report's poll is the reporting worker's own",
                ));
            }
            for q in &p.queues {
                ctx.authorize_also("weft:PollTask", &format!("weft:queue:{q}"))?;
            }
        }
        cap_report(&mut r);
        app.dispatch
            .report(ctx.caller(), r)
            .map_err(dispatch_error)?;
        Ok(next.map(|p| (p, ctx.caller().to_string())))
    });
    match reported {
        Err(e) => e.into_response(),
        Ok(None) => answer(&json!({})),
        // the slot's next poll, waiting as a poll does: an idle slot needs no second request
        Ok(Some((p, principal))) => next_task(&app, &p, &principal).await,
    }
}

async fn workers(State(app): State<Arc<AppState>>, req: V1Request) -> Response {
    reply(decide(&app, &req, "weft:ListWorkers", |ctx| {
        ctx.authorize("weft:workers")?;
        let queues: Vec<Value> = app
            .dispatch
            .queue_depths()
            .into_iter()
            .map(|(q, n)| json!({"queue": q, "depth": n}))
            .collect();
        Ok(
            json!({"workers": app.dispatch.workers(), "queues": queues, "running": app.dispatch.running()}),
        )
    }))
}

async fn blob(
    State(app): State<Arc<AppState>>,
    Path(digest): Path<String>,
    req: V1Request,
) -> Response {
    let found = decide(&app, &req, "weft:GetBlob", |ctx| {
        let d: weft_store::Digest = digest
            .parse()
            .ok()
            .filter(|_| digest.len() == 64)
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "`{}` is not a blake3 digest (64 hex digits)",
                    digest.chars().take(80).collect::<String>()
                ))
            })?;
        ctx.authorize(format!("weft:blob:{}", d.to_hex()))?;
        // only installed plugins and the packages of the caller's running tries are served,
        // not every blob of the store
        let installed = app
            .store
            .registry()
            .by_digest(&d)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        if installed.is_none()
            && !app
                .dispatch
                .holds_packages(ctx.caller(), d.to_hex().as_str())
        {
            return Err(ApiError::new(
                "ResourceNotFoundException",
                format!(
                    "no installed plugin has digest {}, and no try running on a worker of this key carries packages of that digest",
                    d.to_hex()
                ),
            )
            .with_status(StatusCode::NOT_FOUND));
        }
        let kind = if installed.is_some() {
            "application/wasm"
        } else {
            "application/zip"
        };
        Ok((app.store.blobs().path(&d), kind))
    });
    let (path, kind) = match found {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            return ApiError::internal(format!("blob {}: {e}", path.display())).into_response()
        }
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(axum::body::Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut resp = axum::body::Body::from_stream(stream).into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(kind),
    );
    if let Some(n) = len {
        if let Ok(v) = axum::http::HeaderValue::from_str(&n.to_string()) {
            resp.headers_mut()
                .insert(axum::http::header::CONTENT_LENGTH, v);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_engine::remote::{RemoteOutcome, MAX_OUTPUT_BYTES, MAX_RECORDS, MAX_STDIO_BYTES};

    #[test]
    fn a_poll_answer_reads_as_a_poll_response() {
        let task = RemoteTask {
            task_id: "t".into(),
            queue: "q".into(),
            execution: "e".into(),
            state: "s".into(),
            attempt: 1,
            plugin: weft_engine::remote::RemotePlugin {
                name: "echo".into(),
                version: "1".into(),
                digest: "0".repeat(64),
                world: "task".into(),
            },
            input: "{}".into(),
            ctx: "{}".into(),
            timeout_ms: 1,
            grant: vec![],
            secrets: Default::default(),
            heartbeat_ms: 1,
            packages: Some("ab".repeat(32)),
        };
        let sent = serde_json::to_vec(&PollAnswer {
            task: Some(&task),
            queue_depth: 3,
        })
        .unwrap();
        let got: weft_engine::remote::PollResponse = serde_json::from_slice(&sent).unwrap();
        assert_eq!(got.task.as_ref(), Some(&task));
        assert_eq!(got.queue_depth, 3);
    }

    #[test]
    fn names_and_report_caps() {
        assert!(valid_name("worker-1.example_host"));
        for bad in ["", "a b", "a/b", "../x", &"a".repeat(MAX_NAME_LEN + 1), "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let mut r = TaskReport {
            worker_id: "w".into(),
            task_id: "t".into(),
            outcome: RemoteOutcome {
                output: Some("1".repeat(MAX_OUTPUT_BYTES + 1)),
                stdout: "é".repeat(MAX_STDIO_BYTES),
                logs: vec![Value::Null; MAX_RECORDS + 5],
                ..Default::default()
            },
            next: None,
        };
        cap_report(&mut r);
        assert_eq!(r.outcome.output, None);
        assert_eq!(
            r.outcome.error.as_ref().unwrap().error,
            "States.DataLimitExceeded"
        );
        assert!(r.outcome.stdout.len() <= MAX_STDIO_BYTES);
        assert_eq!(r.outcome.logs.len(), MAX_RECORDS);
        let mut empty = TaskReport {
            worker_id: "w".into(),
            task_id: "t".into(),
            outcome: RemoteOutcome::default(),
            next: None,
        };
        cap_report(&mut empty);
        assert_eq!(empty.outcome.error.unwrap().error, "States.TaskFailed");
        // attacker: an error name and cause of multi-byte characters straddling the caps are
        // cut on a character boundary (a byte cut would panic the handler)
        let mut wide = TaskReport {
            worker_id: "w".into(),
            task_id: "t".into(),
            outcome: RemoteOutcome::failed(&"€".repeat(100), "€".repeat(20_000)),
            next: None,
        };
        cap_report(&mut wide);
        let e = wide.outcome.error.unwrap();
        assert_eq!((e.error.len(), e.cause.len()), (255, 32 * 1024 - 2));
    }
}
