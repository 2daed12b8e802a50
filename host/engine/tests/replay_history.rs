//! The durable history of a resumed run, on both storage backends: a replay whose Parallel
//! branches deliver their events in another order than the first run did still recognises
//! every recorded event (no twin is written) and maps links to them.

mod backends;

use std::sync::Arc;

use backends::{each_backend, Db, Fixture};
use serde_json::Value;
use weft_asl::{HistoryEvent, HistorySink};
use weft_engine::persistence::Database;
use weft_engine::standard::runner::DurableHistory;
use weft_engine::standard::{Observer, Runtime, Settings};

/// A service that hears nothing.
struct Unobserved;

impl Observer for Unobserved {}

/// A runtime (not started) on the fixture's database, its plugin store in `home`.
fn runtime(f: &Fixture, home: &std::path::Path) -> Arc<Runtime> {
    let database = match &f.db {
        Db::Sled(db, _) => Database::Sled(db.clone()),
        Db::Postgres(t) => Database::Postgres(t.connect()),
    };
    let store = Arc::new(weft_store::Store::open(home).unwrap());
    let settings = Settings {
        max_running: 2,
        per_state_machine: None,
        mocks: None,
        local_tasks: true,
        base_dir: home.to_path_buf(),
        buckets: Arc::new(weft_engine::buckets::Buckets::load(home).unwrap()),
        home_map: Arc::new(weft_engine::resource_map::ResourceMap::default()),
    };
    Arc::new(Runtime::new(
        store,
        database,
        &f.sfn_stores(),
        settings,
        Arc::new(Unobserved),
    ))
}

/// The execution's stored events, as GetExecutionHistory reads them.
fn stored(rt: &Arc<Runtime>, arn: &str) -> Vec<Value> {
    rt.pending.apply_if_queued(arn).unwrap();
    let mut out = Vec::new();
    for run in weft_engine::persistence::pending::history_events(rt.history.as_ref(), arn).unwrap()
    {
        for v in run {
            out.push(serde_json::from_slice(&v).unwrap());
        }
    }
    out
}

/// A resumed run's Parallel branches deliver their events in another order than the first run
/// did, and one with a lower replay id arrives after the replay diverged: it is still
/// recognised (no twin is written) and links to it are mapped.
#[test]
fn a_replay_whose_branches_deliver_out_of_order_writes_no_twin() {
    each_backend(|f| {
        let home = tempfile::tempdir().unwrap();
        let app = runtime(f, home.path());
        let arn = "arn:aws:states:us-east-1:000000000000:execution:sm:x";
        let ev = |id, prev, ty: &'static str, name: &str| HistoryEvent {
            id,
            previous_event_id: prev,
            timestamp_ms: 1_700_000_000_000,
            event_type: ty,
            details: serde_json::json!({"name": name}),
        };
        // first run: branch 0 waits in W and leaves it, branch 1 enters W2 last
        let mut first = DurableHistory::load(&app, arn, None).unwrap();
        first.event(ev(1, 0, "ExecutionStarted", ""));
        first.event(ev(2, 1, "WaitStateEntered", "W"));
        first.event(ev(3, 2, "WaitStateExited", "W"));
        first.event(ev(4, 3, "PassStateEntered", "Next"));
        first.event(ev(5, 1, "WaitStateEntered", "W2"));
        drop(first);
        assert_eq!(stored(&app, arn).len(), 5);
        // the replay: W2 entered took id 3 and W exited id 4, but W exited arrives first
        let mut replay = DurableHistory::load(&app, arn, None).unwrap();
        replay.event(ev(1, 0, "ExecutionStarted", ""));
        replay.event(ev(2, 1, "WaitStateEntered", "W"));
        replay.event(ev(4, 2, "WaitStateExited", "W"));
        replay.event(ev(3, 1, "WaitStateEntered", "W2"));
        replay.event(ev(5, 3, "WaitStateExited", "W2"));
        replay.event(ev(6, 4, "PassStateEntered", "Next"));
        drop(replay);
        let events = stored(&app, arn);
        let kinds: Vec<(u64, &str, &str, u64)> = events
            .iter()
            .map(|e| {
                let name = e["stateEnteredEventDetails"]["name"]
                    .as_str()
                    .or(e["stateExitedEventDetails"]["name"].as_str())
                    .unwrap_or("");
                (
                    e["id"].as_u64().unwrap(),
                    e["type"].as_str().unwrap(),
                    name,
                    e["previousEventId"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(events.len(), 6, "{kinds:?}");
        // the one new event (W2's exit) follows W2's entry as recorded (id 5)
        assert_eq!(kinds[5].1, "WaitStateExited", "{kinds:?}");
        assert_eq!(kinds[5].3, 5, "{kinds:?}");
    });
}
