//! Several nodes on one PostgreSQL database ([`weft_engine::persistence::pg::cluster`]): what a
//! node owns, adoption of a dead node's executions, and the fence. The attacker here is a node
//! that was paused past its lease: every write it makes of an execution another node adopted
//! (journal, history, the execution's end) is refused, and the execution is reported lost.

mod backends;

use std::time::Duration;

use backends::TestDb;
use weft_engine::durable::{Entry, Journal};
use weft_engine::persistence::history::{EventWrite, HistoryBatch};
use weft_engine::persistence::pg::cluster::{self, Cluster};
use weft_engine::persistence::sfn::SfnStores;
use weft_engine::persistence::{Database, PersistenceError};

const LEASE: Duration = Duration::from_secs(30);

fn record(arn: &str, status: &str) -> Vec<u8> {
    serde_json::json!({"arn": arn, "state_machine_name": "sm", "name": arn.rsplit(':').next().unwrap(),
                       "start_ms": 1, "status": status})
    .to_string()
    .into_bytes()
}

/// Journals `output` as the result of the execution's first task and commits.
fn put_result(stores: &SfnStores, arn: &str, output: &str) {
    Journal::on(&stores.journal, arn)
        .put(
            "/0.1@1",
            &Entry::Ok {
                output: serde_json::json!(output),
            },
        )
        .unwrap();
    stores.commit.commit().unwrap();
}

/// Runs `sql` with text parameters.
fn execute(db: &weft_engine::persistence::PgDatabase, sql: &'static str, params: &[String]) {
    let params = params.to_vec();
    db.run({
        let pool = db.pool().clone();
        async move {
            let c = pool.get().await.unwrap();
            let p: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
                params.iter().map(|s| s as _).collect();
            c.execute(sql, &p).await.unwrap();
        }
    })
    .unwrap();
}

fn rows(db: &weft_engine::persistence::PgDatabase, sql: &'static str, arn: &str) -> i64 {
    let arn = arn.to_string();
    db.run({
        let pool = db.pool().clone();
        async move {
            let c = pool.get().await.unwrap();
            c.query_one(sql, &[&arn]).await.unwrap().get::<_, i64>(0)
        }
    })
    .unwrap()
}

/// Two connections to `t` (nodes A and B: each its own fence); A joined the cluster and
/// started `arn`: (A's database, B's database, A's membership, A's stores).
fn node_a_running(
    t: &TestDb,
    arn: &str,
) -> (
    weft_engine::persistence::PgDatabase,
    weft_engine::persistence::PgDatabase,
    std::sync::Arc<Cluster>,
    SfnStores,
) {
    let (pa, pb) = (t.connect(), t.connect());
    let a = Cluster::join(&pa, LEASE, None).unwrap();
    let sa = SfnStores::open(&Database::Postgres(pa.clone())).unwrap();
    assert_eq!(
        sa.executions
            .insert_execution(arn, &record(arn, "RUNNING"))
            .unwrap(),
        None
    );
    (pa, pb, a, sa)
}

#[test]
fn a_node_whose_execution_was_adopted_writes_nothing_of_it() {
    let Some(t) = TestDb::create() else { return };
    let arn = "arn:aws:states:us-east-1:000000000000:execution:sm:x1";
    let (pa, pb, a, sa) = node_a_running(&t, arn);
    assert_eq!(
        a.fence().epoch_of(arn),
        Some(1),
        "a node owns what it starts"
    );
    Journal::on(&sa.journal, arn)
        .put("/0.1@1", &Entry::Started { at_ms: 1 })
        .unwrap();
    sa.commit.commit().unwrap();

    // node B finds nothing to adopt while A's lease runs
    let b = Cluster::join(&pb, LEASE, None).unwrap();
    assert!(b.adopt(10).unwrap().is_empty());
    // A is paused past its lease: B adopts at a new epoch
    execute(
        &pb,
        "UPDATE weft_nodes SET lease_until = now() - interval '1 second' WHERE id = $1",
        &[a.node_id()],
    );
    assert_eq!(b.adopt(10).unwrap(), [arn.to_string()]);
    assert_eq!(b.fence().epoch_of(arn), Some(2));
    assert!(b.adopt(10).unwrap().is_empty(), "adopted once");

    // A wakes up and writes: journal, history and the record's end are all refused
    put_result(&sa, arn, "stale");
    sa.history
        .write_batch(&HistoryBatch {
            events: vec![EventWrite {
                execution: arn.into(),
                id: 1,
                json: "{\"id\":1}".into(),
            }],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        rows(&pb, "SELECT count(*) FROM sfn_journal WHERE execution = $1 AND convert_from(entry, 'UTF8') LIKE '%stale%'", arn),
        0,
        "the stale node's journal write landed"
    );
    assert_eq!(
        rows(
            &pb,
            "SELECT count(*) FROM sfn_history WHERE execution = $1",
            arn
        ),
        0
    );
    assert_eq!(
        a.fence().take_lost(),
        [arn.to_string()],
        "A learns it lost the execution"
    );
    assert!(!a.fence().holds(arn));
    // the end A's run would record (it began at epoch 1) is refused too
    let r = sa.executions.update_execution_at(arn, Some(1), &mut |old| {
        old.map(|_| record(arn, "SUCCEEDED"))
    });
    assert!(matches!(r, Err(PersistenceError::Fenced { .. })), "{r:?}");
    assert_eq!(
        rows(
            &pb,
            "SELECT count(*) FROM sfn_executions WHERE arn = $1 AND status = 'RUNNING'",
            arn
        ),
        1
    );

    // B's writes go through
    let sb = SfnStores::open(&Database::Postgres(pb.clone())).unwrap();
    put_result(&sb, arn, "fresh");
    assert_eq!(
        rows(&pb, "SELECT count(*) FROM sfn_journal WHERE execution = $1 AND convert_from(entry, 'UTF8') LIKE '%fresh%'", arn),
        1
    );
    // an answer from any node (a callback) is decided in the database, and wakes the owner
    let answered = Journal::on(&sa.journal, arn)
        .complete_now(
            "/1.1@1",
            &Entry::Ok {
                output: serde_json::json!(1),
            },
        )
        .unwrap();
    assert!(answered);
    cluster::wake(&pa, arn).unwrap();
    assert_eq!(b.take_woken().unwrap(), [arn.to_string()]);
    assert!(b.take_woken().unwrap().is_empty());
    assert!(
        !Journal::on(&sb.journal, arn)
            .complete_now(
                "/1.1@1",
                &Entry::Ok {
                    output: serde_json::json!(2)
                }
            )
            .unwrap(),
        "a second answer to the same attempt is refused"
    );
}

#[test]
fn a_stale_owner_cannot_record_an_execution_end() {
    let Some(t) = TestDb::create() else { return };
    let arn = "arn:aws:states:us-east-1:000000000000:execution:sm:x2";
    let (_, pb, a, sa) = node_a_running(&t, arn);
    // another node took it (a newer epoch) while A still believes it owns it
    let b = Cluster::join(&pb, LEASE, None).unwrap();
    execute(
        &pb,
        "UPDATE sfn_executions SET owner = $2, epoch = epoch + 1 WHERE arn = $1",
        &[arn.to_string(), b.node_id()],
    );
    let r = sa
        .executions
        .update_execution(arn, &mut |old| old.map(|_| record(arn, "SUCCEEDED")));
    assert!(matches!(r, Err(PersistenceError::Fenced { .. })), "{r:?}");
    assert_eq!(
        rows(
            &pb,
            "SELECT count(*) FROM sfn_executions WHERE arn = $1 AND status = 'RUNNING'",
            arn
        ),
        1
    );
    assert_eq!(a.fence().take_lost(), [arn.to_string()]);
}
