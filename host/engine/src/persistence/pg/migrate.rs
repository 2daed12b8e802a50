//! The PostgreSQL schema and its migrations. weft creates and migrates its own schema when a
//! node connects: every migration runs once, in order, in one transaction under an advisory
//! lock (nodes starting together take turns), and is recorded in `weft_schema_migrations`. A
//! node refuses a database whose schema is newer than the newest migration it knows.
//!
//! Migrations are append-only: a released one is never edited; a change is a new one. Records
//! are `JSON` (kept as written: key order and number spelling survive, as in sled), with the
//! columns queries select or order on beside them.

use deadpool_postgres::Client;

use super::super::error::chain;
use crate::persistence::PersistenceError;

/// The advisory lock key migrations hold (`"weft"` in ASCII).
const LOCK_KEY: i64 = 0x7765_6674;

/// Every migration: (version, what it does, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "the DAG scheduler: runs, task instances, task logs, SLA misses, seen files",
        r#"
CREATE TABLE dag_runs (
    dag_id          TEXT NOT NULL,
    logical_date_us BIGINT NOT NULL,
    run_id          TEXT NOT NULL,
    run_type        TEXT NOT NULL,
    state           TEXT NOT NULL,
    rec             JSON NOT NULL,
    PRIMARY KEY (dag_id, logical_date_us),
    UNIQUE (dag_id, run_id)
);
CREATE INDEX dag_runs_unfinished ON dag_runs (dag_id) WHERE state NOT IN ('success', 'failed');
CREATE TABLE task_instances (
    dag_id    TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    map_index BIGINT NOT NULL,
    rec       JSON NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index)
);
CREATE TABLE task_logs (
    seq        BIGSERIAL PRIMARY KEY,
    dag_id     TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    map_index  BIGINT NOT NULL,
    try_number INTEGER NOT NULL,
    entry      JSON NOT NULL
);
CREATE INDEX task_logs_of_task ON task_logs (dag_id, run_id, task_id, map_index, try_number, seq);
CREATE TABLE sla_misses (
    dag_id  TEXT NOT NULL,
    run_id  TEXT NOT NULL,
    task_id TEXT NOT NULL,
    rec     JSON NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id)
);
CREATE TABLE seen_files (
    dag_id TEXT NOT NULL,
    path   TEXT NOT NULL,
    mtime  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (dag_id, path)
);
"#,
    ),
    (
        2,
        "paused DAGs",
        r#"
CREATE TABLE dag_paused (
    dag_id TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL
);
"#,
    ),
    (
        3,
        "asset events, each DAG's queue of them, the events that triggered a run",
        r#"
CREATE TABLE asset_events (
    id  BIGSERIAL PRIMARY KEY,
    uri TEXT NOT NULL,
    rec JSON NOT NULL
);
CREATE INDEX asset_events_of_uri ON asset_events (uri, id);
CREATE TABLE asset_queue (
    dag_id   TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    rec      JSON NOT NULL,
    PRIMARY KEY (dag_id, event_id)
);
CREATE TABLE run_asset_events (
    dag_id    TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    event_ids JSON NOT NULL,
    PRIMARY KEY (dag_id, run_id)
);
"#,
    ),
];

/// The newest schema version this binary knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

fn pg(e: tokio_postgres::Error) -> PersistenceError {
    PersistenceError::Postgres(chain(&e))
}

/// Brings the schema up to [`latest`]; returns the database's version afterwards.
pub async fn migrate(client: &mut Client) -> Result<i64, PersistenceError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS weft_schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg)?;
    let row = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM weft_schema_migrations",
            &[],
        )
        .await
        .map_err(pg)?;
    let found: i64 = row.get(0);
    let known = latest();
    if found > known {
        return Err(PersistenceError::SchemaTooNew { found, known });
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        tx.batch_execute(sql).await.map_err(|e| {
            PersistenceError::Postgres(format!("migration {version} ({name}): {}", chain(&e)))
        })?;
        tx.execute(
            "INSERT INTO weft_schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(pg)?;
        tracing::info!(version, name, "migrated the database schema");
    }
    tx.commit().await.map_err(pg)?;
    Ok(found.max(known))
}
