//! The PostgreSQL schema and its migrations. weft creates and migrates its own schema when a
//! node connects: every migration runs once, in order, in one transaction under an advisory
//! lock (nodes starting together take turns), and is recorded in `weft_schema_migrations`. A
//! node refuses a database whose schema is newer than the newest migration it knows.
//!
//! Migrations are append-only: a released one is never edited; a change is a new one. Records
//! are `JSON` (kept as written: key order and number spelling survive, as in sled), with the
//! columns queries select or order on beside them. The Step Functions tables (migration 4) keep
//! their records as `BYTEA`, byte for byte what the runtime encoded (the store never interprets
//! them), and their text keys `COLLATE "C"` so listings follow sled's byte order. A migration is applied when
//! its version is not recorded yet, so versions may have gaps that a later binary fills.

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
    (
        4,
        "the Step Functions side: catalog, executions, history, journal, tokens, logs",
        r#"
CREATE TABLE sfn_state_machines (name TEXT COLLATE "C" PRIMARY KEY, rec BYTEA NOT NULL);
CREATE TABLE sfn_versions (
    name    TEXT COLLATE "C" NOT NULL,
    version BIGINT NOT NULL,
    rec     BYTEA NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE sfn_aliases (
    name  TEXT COLLATE "C" NOT NULL,
    alias TEXT COLLATE "C" NOT NULL,
    rec   BYTEA NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE sfn_resource_maps (name TEXT COLLATE "C" PRIMARY KEY, rec BYTEA NOT NULL);
CREATE TABLE sfn_tags (arn TEXT COLLATE "C" PRIMARY KEY, rec BYTEA NOT NULL);
CREATE TABLE sfn_executions (
    arn           TEXT COLLATE "C" PRIMARY KEY,
    state_machine TEXT COLLATE "C" NOT NULL,
    name          TEXT COLLATE "C" NOT NULL,
    start_ms      BIGINT NOT NULL,
    status        TEXT NOT NULL,
    rec           BYTEA NOT NULL,
    owner         TEXT,
    epoch         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sfn_executions_by_start ON sfn_executions (state_machine, start_ms, name);
CREATE INDEX sfn_executions_running ON sfn_executions (state_machine, start_ms)
    WHERE status IN ('RUNNING', 'PENDING_REDRIVE');
CREATE TABLE sfn_history (
    execution TEXT COLLATE "C" NOT NULL,
    id        BIGINT NOT NULL,
    event     BYTEA NOT NULL,
    PRIMARY KEY (execution, id)
);
CREATE TABLE sfn_task_logs (
    execution TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    state     TEXT COLLATE "C" NOT NULL,
    attempt   BIGINT NOT NULL,
    entry     BYTEA NOT NULL,
    PRIMARY KEY (execution, seq, state, attempt)
);
CREATE TABLE sfn_journal (
    execution TEXT COLLATE "C" NOT NULL,
    key       TEXT COLLATE "C" NOT NULL,
    entry     BYTEA NOT NULL,
    PRIMARY KEY (execution, key)
);
CREATE TABLE sfn_tokens (token TEXT COLLATE "C" PRIMARY KEY, rec BYTEA NOT NULL);
CREATE TABLE sfn_activities (name TEXT COLLATE "C" PRIMARY KEY, rec BYTEA NOT NULL);
CREATE TABLE sfn_audit (
    seq     BIGSERIAL PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    rec     BYTEA NOT NULL
);
CREATE INDEX sfn_audit_by_time ON sfn_audit (time_ms, seq);
CREATE TABLE sfn_execution_log (
    seq     BIGSERIAL PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    rec     BYTEA NOT NULL
);
CREATE INDEX sfn_execution_log_by_time ON sfn_execution_log (time_ms, seq);
CREATE TABLE sfn_map_runs (arn TEXT COLLATE "C" PRIMARY KEY, rec BYTEA NOT NULL);
CREATE TABLE sfn_meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
"#,
    ),
    (
        5,
        "several nodes: node leases, execution wake-ups, shared credentials",
        r#"
CREATE TABLE weft_nodes (
    id          TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until TIMESTAMPTZ NOT NULL
);
ALTER TABLE sfn_executions ADD COLUMN woken BOOLEAN NOT NULL DEFAULT false;
CREATE INDEX sfn_executions_owned ON sfn_executions (owner)
    WHERE status IN ('RUNNING', 'PENDING_REDRIVE');
CREATE INDEX sfn_executions_woken ON sfn_executions (owner) WHERE woken;
CREATE TABLE weft_credentials (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    text     TEXT NOT NULL,
    policies JSON NOT NULL
);
"#,
    ),
    (
        6,
        "several DAG schedulers: DAG leases, live schedulers, pool slots in use",
        r#"
CREATE TABLE dag_leases (
    dag_id     TEXT PRIMARY KEY,
    owner      TEXT,
    expires_at TIMESTAMPTZ NOT NULL,
    epoch      BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE dag_schedulers (
    owner      TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE dag_pools (pool TEXT PRIMARY KEY);
CREATE TABLE pool_slots (
    dag_id    TEXT NOT NULL,
    run_id    TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    map_index BIGINT NOT NULL,
    pool      TEXT NOT NULL,
    slots     BIGINT NOT NULL,
    owner     TEXT NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index)
);
CREATE INDEX pool_slots_of_pool ON pool_slots (pool);
"#,
    ),
    (
        7,
        "task tokens indexed by execution and by open activity task",
        r#"
ALTER TABLE sfn_tokens ADD COLUMN execution TEXT COLLATE "C",
                       ADD COLUMN open_activity TEXT COLLATE "C";
CREATE FUNCTION sfn_tokens_index() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    j jsonb;
BEGIN
    BEGIN
        j := convert_from(NEW.rec, 'UTF8')::jsonb;
    EXCEPTION WHEN others THEN
        j := NULL;
    END;
    IF jsonb_typeof(j) = 'object' THEN
        NEW.execution := j->>'execution';
        NEW.open_activity := CASE WHEN j->>'claimed_by' IS NULL THEN j->>'activity' END;
    ELSE
        NEW.execution := NULL;
        NEW.open_activity := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER sfn_tokens_index BEFORE INSERT OR UPDATE OF rec ON sfn_tokens
    FOR EACH ROW EXECUTE FUNCTION sfn_tokens_index();
UPDATE sfn_tokens SET rec = rec;
CREATE INDEX sfn_tokens_of_execution ON sfn_tokens (execution);
CREATE INDEX sfn_tokens_open_activity ON sfn_tokens (open_activity, token)
    WHERE open_activity IS NOT NULL;
"#,
    ),
];

/// The newest schema version this binary knows.
pub fn latest() -> i64 {
    MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
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
    let applied: Vec<i64> = tx
        .query("SELECT version FROM weft_schema_migrations", &[])
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let found = applied.iter().copied().max().unwrap_or(0);
    let known = latest();
    if found > known {
        return Err(PersistenceError::SchemaTooNew { found, known });
    }
    // (every migration not yet applied, older ones included: versions may have gaps that a
    // later binary fills)
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| !applied.contains(&m.0)) {
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
