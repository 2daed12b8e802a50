//! `job-sim`: a simulated long-running job, for `.sync` integrations served by a resource map
//! entry in `start_poll` mode (`glue:startJobRun.sync: {plugin: job-sim, mode: start_poll}`).
//!
//! Input: the resource map's envelope `{"phase": "start"|"call"|"poll", "request": ..., "poll"?}`.
//! - `start` / `call`: `request` holds the job's parameters; `JobName` (default `job`),
//!   `PollsUntilDone` (default 2) and `Fail` (default false). Output: the run
//!   `{"JobRunId": "jr_JOBNAME", "JobName", "PollsUntilDone", "Fail"}`.
//! - `poll`: `request` is that run, `poll` the poll number. Output: `{"status": "RUNNING"}`
//!   until `poll` reaches `PollsUntilDone`, then `{"status": "SUCCEEDED", "output":
//!   {"JobRunId", "JobRunState": "SUCCEEDED", "Polls"}}` or, with `Fail`, `{"status":
//!   "FAILED", "error": "Glue.JobRunFailed", "cause"}`.
use weft_guest::{Context, TaskError, Value};

fn run(_ctx: &Context, input: Value) -> Result<Value, TaskError> {
    let phase = input["phase"].as_str().unwrap_or("call");
    let req = &input["request"];
    match phase {
        "start" | "call" => {
            let name = req["JobName"].as_str().unwrap_or("job");
            if name.is_empty() || name.len() > 255 {
                return Err(TaskError::invalid_input("JobName is 1 to 255 characters"));
            }
            Ok(serde_json::json!({
                "JobRunId": format!("jr_{name}"),
                "JobName": name,
                "PollsUntilDone": req["PollsUntilDone"].as_u64().unwrap_or(2),
                "Fail": req["Fail"].as_bool().unwrap_or(false),
            }))
        }
        "poll" => {
            let n = input["poll"].as_u64().unwrap_or(0);
            let until = req["PollsUntilDone"].as_u64().unwrap_or(2);
            let id = req["JobRunId"].as_str().unwrap_or("");
            if n < until {
                Ok(serde_json::json!({"status": "RUNNING"}))
            } else if req["Fail"].as_bool().unwrap_or(false) {
                Ok(serde_json::json!({"status": "FAILED", "error": "Glue.JobRunFailed",
                                      "cause": format!("job run {id} failed after {n} polls")}))
            } else {
                Ok(serde_json::json!({"status": "SUCCEEDED", "output": {
                    "JobRunId": id, "JobRunState": "SUCCEEDED", "Polls": n}}))
            }
        }
        other => Err(TaskError::invalid_input(format!("unknown phase `{other}`"))),
    }
}

weft_guest::export_operator!(run);
