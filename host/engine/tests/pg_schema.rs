//! weft's own PostgreSQL schema management: migrations run once, a newer schema is refused
//! with both versions named, and an unreachable database is reported with its host, port and
//! the driver's reason.

mod backends;

use backends::{admin_exec, TestDb};
use weft_engine::persistence::pg::migrate;
use weft_engine::persistence::{PersistenceError, PgDatabase};

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let Some(t) = TestDb::create() else { return };
    let db = t.connect();
    drop(db);
    let db = t.connect(); // a second node: nothing to migrate
    let pool = db.pool().clone();
    let n: i64 = db
        .run(async move {
            let c = pool.get().await.unwrap();
            c.query_one("SELECT count(*) FROM weft_schema_migrations", &[])
                .await
                .unwrap()
                .get(0)
        })
        .unwrap();
    assert_eq!(n as usize, migrate::MIGRATIONS.len());
    let newer = migrate::latest() + 1;
    admin_exec(
        &t.url,
        &format!("INSERT INTO weft_schema_migrations (version, name) VALUES ({newer}, 'future')"),
    )
    .unwrap();
    match PgDatabase::connect(&t.url) {
        Err(e @ PersistenceError::SchemaTooNew { found, known }) => {
            assert_eq!((found, known), (newer, migrate::latest()));
            let m = e.to_string();
            assert!(m.contains(&format!("version {newer}")), "{m}");
            assert!(m.contains(&format!("version {}", migrate::latest())), "{m}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a schema newer than the binary was accepted"),
    }
}

#[test]
fn an_unreachable_database_names_host_port_and_reason() {
    // a port nothing listens on
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://weft:secret@127.0.0.1:{port}/weft");
    match PgDatabase::connect(&url) {
        Err(e @ PersistenceError::Connect { .. }) => {
            let m = e.to_string();
            assert!(m.contains(&format!("127.0.0.1:{port}")), "{m}");
            assert!(m.to_lowercase().contains("refused"), "{m}");
            assert!(!m.contains("secret"), "{m}");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("connected to a closed port"),
    }
    match PgDatabase::connect("postgres://u@127.0.0.1:notaport/db") {
        Err(e @ PersistenceError::BadUrl(_)) => assert!(e.to_string().contains("postgres://")),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("accepted a bad URL"),
    }
}

#[test]
fn tokens_written_before_their_index_existed_are_indexed_by_the_upgrade() {
    use weft_engine::persistence::pg::PgTokens;
    use weft_engine::persistence::tokens::TokenStore;
    let Some(t) = TestDb::create() else { return };
    drop(t.connect());
    // the schema as version 6 left it, holding tokens (one not a JSON record)
    admin_exec(
        &t.url,
        r#"DROP FUNCTION sfn_tokens_index() CASCADE;
           ALTER TABLE sfn_tokens DROP COLUMN execution, DROP COLUMN open_activity;
           DELETE FROM weft_schema_migrations WHERE version = 7;
           INSERT INTO sfn_tokens (token, rec) VALUES
             ('t1', convert_to('{"execution":"arn:x","activity":"a"}', 'UTF8')),
             ('t2', convert_to('{"execution":"arn:x","activity":"a","claimed_by":"w"}', 'UTF8')),
             ('t3', '\xff00'::BYTEA)"#,
    )
    .unwrap();
    let db = t.connect();
    let tokens = PgTokens::new(&db);
    let of: Vec<String> = tokens
        .tokens_of("arn:x")
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(of, ["t1", "t2"]);
    assert_eq!(tokens.open_activity_tasks("a", 10).unwrap(), ["t1"]);
    assert_eq!(tokens.token("t3").unwrap(), Some(vec![0xff, 0]));
}
