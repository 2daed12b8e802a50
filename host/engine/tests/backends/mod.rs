//! Storage fixtures: the same test body runs once per storage backend. sled gets a temporary
//! directory; PostgreSQL gets a fresh database in the cluster named by `$WEFT_TEST_PG`, or in
//! a throwaway cluster that `scripts/pg.sh` starts for this test process (and stops after it).
//! Without PostgreSQL (it cannot be installed here) the PostgreSQL half is skipped with a loud
//! message, unless `WEFT_REQUIRE_PG=1` (`make test`), where that is a failure.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use weft_engine::persistence::sfn::SfnStores;
use weft_engine::persistence::PgDatabase;
use weft_engine::scheduler::SchedStore;

/// One backend's store for a test body, and what keeps it alive.
pub struct Fixture {
    /// `sled` or `postgres`.
    pub name: &'static str,
    /// The database.
    pub db: Db,
}

/// The database behind a fixture.
pub enum Db {
    /// A sled database in a temporary directory.
    Sled(sled::Db, tempfile::TempDir),
    /// A fresh PostgreSQL database.
    Postgres(TestDb),
}

impl Fixture {
    /// The scheduler's store on this backend (a new handle on the same data each call, as a
    /// restarted process would open it).
    pub fn sched_store(&self) -> SchedStore {
        match &self.db {
            Db::Sled(db, _) => SchedStore::open(db).unwrap(),
            Db::Postgres(t) => SchedStore::postgres(&t.connect()),
        }
    }
}

impl Fixture {
    /// Every Step Functions store on this backend (a new handle on the same data each call, as
    /// a restarted process would open them).
    pub fn sfn_stores(&self) -> SfnStores {
        match &self.db {
            Db::Sled(db, _) => SfnStores::open_sled(db).unwrap(),
            Db::Postgres(t) => SfnStores::open_pg(&t.connect()).unwrap(),
        }
    }
}

/// Runs `body` on sled, then on PostgreSQL.
pub fn each_backend(body: impl Fn(&Fixture)) {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(dir.path()).unwrap();
    body(&Fixture {
        name: "sled",
        db: Db::Sled(db, dir),
    });
    if let Some(t) = TestDb::create() {
        body(&Fixture {
            name: "postgres",
            db: Db::Postgres(t),
        });
    }
}

/// The URL of the test cluster (`None`: no PostgreSQL here, the caller skips).
pub fn cluster_url() -> Option<String> {
    static URL: OnceLock<Option<String>> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(u) = std::env::var("WEFT_TEST_PG") {
            if !u.is_empty() {
                return Some(u);
            }
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg.sh");
        let state = std::env::temp_dir().join(format!("weft-pg-test-{}", std::process::id()));
        let out = std::process::Command::new("bash")
            .arg(script)
            .args(["start", "--stop-with", &std::process::id().to_string()])
            .env("WEFT_PG_STATE", &state)
            .stderr(std::process::Stdio::inherit())
            .output();
        let url = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("export WEFT_TEST_PG=").map(str::to_string)),
            Ok(o) => {
                eprintln!("scripts/pg.sh failed ({})", o.status);
                None
            }
            Err(e) => {
                eprintln!("cannot run scripts/pg.sh: {e}");
                None
            }
        };
        if url.is_none() {
            if std::env::var("WEFT_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("PostgreSQL is required (WEFT_REQUIRE_PG=1) but could not be started");
            }
            eprintln!(
                "\n*** SKIPPING the PostgreSQL half of the storage tests: PostgreSQL could not \
                 be installed or started (see above); set WEFT_TEST_PG to a cluster to run it ***\n"
            );
        }
        url
    })
    .clone()
}

/// A fresh database in the test cluster, dropped with the value.
pub struct TestDb {
    admin: String,
    name: String,
    /// Its URL.
    pub url: String,
}

/// Runs `sql` on the database at `admin`.
pub fn admin_exec(admin: &str, sql: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
            .await
            .map_err(|e| e.to_string())?;
        let h = tokio::spawn(conn);
        let r = client.batch_execute(sql).await.map_err(|e| e.to_string());
        drop(client);
        let _ = h.await;
        r
    })
}

impl TestDb {
    /// A new database (`None`: no PostgreSQL here).
    pub fn create() -> Option<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin = cluster_url()?;
        // (a name made here from numbers only: identifiers cannot be bound parameters)
        let name = format!(
            "weft_t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        admin_exec(&admin, &format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        Some(TestDb { admin, name, url })
    }

    /// Connects (and migrates) like a node starting.
    pub fn connect(&self) -> PgDatabase {
        PgDatabase::connect(&self.url).unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = admin_exec(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A queued scheduled run of `dag` named `id` on 2024-01-`day` (a zero-length data interval).
pub fn run(dag: &str, id: &str, day: u32) -> weft_engine::scheduler::DagRunRecord {
    let d = chrono::NaiveDate::from_ymd_opt(2024, 1, day)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    weft_engine::scheduler::DagRunRecord {
        dag_id: dag.into(),
        run_id: id.into(),
        run_type: "scheduled".into(),
        logical_date: d,
        data_interval_start: d,
        data_interval_end: d,
        state: "queued".into(),
        conf: serde_json::Map::new(),
        queued_at: d,
        start_date: None,
        end_date: None,
        note: None,
    }
}

/// A task instance of `task` (map index `map_index`) in `state`, on its first try.
pub fn stored_ti(
    task: &str,
    map_index: i64,
    state: weft_dag::TiState,
) -> weft_engine::scheduler::StoredTi {
    weft_engine::scheduler::StoredTi {
        ti: weft_dag::TiRecord {
            task_id: task.into(),
            map_index,
            state,
            try_number: 1,
            tries_before_clear: 0,
            duration_s: 0.0,
            wait_until: 0.0,
            first_poke_at: None,
            pokes: 0,
            xcom: serde_json::Value::Null,
            error: None,
            mapped_args: serde_json::Map::new(),
            note: None,
            xcoms: Default::default(),
        },
        start_date: None,
        end_date: None,
        hostname: None,
    }
}

/// The one DAG of a dag-factory YAML text (every operator allowed); its load errors fail the
/// test.
pub fn dag(yaml: &str) -> weft_dag::Dag {
    let (dags, errors) = weft_dag::parse_dag_file(
        std::path::Path::new("t.yaml"),
        yaml,
        &weft_dag::FolderConfig::default(),
        &weft_dag::AnyOperator,
    );
    assert!(errors.is_empty(), "{errors:?}");
    dags.into_iter().next().unwrap()
}
