//! Asset events paged in the store ([`DagStore::asset_events_page`]) and each asset's summary
//! ([`DagStore::asset_stats`]), on sled and on PostgreSQL: many events, every order and filter
//! the Airflow API offers, checked against the in-memory reference; caps on hostile pages; the
//! sled index rebuilt for a database written before it.

mod backends;

use backends::{each_backend, Db};
use chrono::{DateTime, Utc};
use weft_engine::persistence::asset_query::{AssetEventOrder, AssetEventQuery, MAX_PAGE};
use weft_engine::scheduler::AssetEvent;

const URIS: [&str; 3] = ["s3://lake/a", "s3://lake/b", "file:///tmp/c"];
const N: i64 = 600;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 123_456_000).unwrap()
}

/// Event `i`: its asset, source and timestamp vary independently of its id.
fn event(i: i64) -> AssetEvent {
    AssetEvent {
        id: 0,
        uri: URIS[(i % 3) as usize].into(),
        extra: serde_json::Map::from_iter([("n".to_string(), serde_json::json!(i))]),
        source_dag_id: (i % 4 != 0).then(|| format!("dag_{}", i % 5)),
        source_task_id: (i % 4 != 0).then(|| format!("t{}", i % 2)),
        source_run_id: (i % 4 != 0).then(|| format!("run_{}", i % 7)),
        source_map_index: if i % 6 == 0 { 2 } else { -1 },
        source_aliases: Vec::new(),
        timestamp: at((i * 7919) % 1000),
    }
}

fn reference(all: &[AssetEvent], q: &AssetEventQuery) -> (Vec<i64>, usize) {
    let mut m: Vec<&AssetEvent> = all.iter().filter(|e| q.matches(e)).collect();
    m.sort_by(|a, b| q.compare(a, b));
    let total = m.len();
    (
        m.iter()
            .skip(q.offset)
            .take(q.page_size())
            .map(|e| e.id)
            .collect(),
        total,
    )
}

#[test]
fn pages_filter_and_order_in_the_store_as_the_reference_does() {
    each_backend(|f| {
        let s = f.sched_store();
        for i in 0..N {
            s.add_asset_event(&event(i), &[]).unwrap();
        }
        let all = s.asset_events(None).unwrap();
        assert_eq!(all.len(), N as usize);
        let q = |order: Vec<(AssetEventOrder, bool)>| AssetEventQuery {
            order,
            limit: 25,
            offset: 40,
            ..Default::default()
        };
        let mut queries = vec![
            q(vec![(AssetEventOrder::Id, false)]),
            q(vec![(AssetEventOrder::Id, true)]),
            q(vec![(AssetEventOrder::Timestamp, false)]),
            q(vec![(AssetEventOrder::Timestamp, true)]),
            q(vec![
                (AssetEventOrder::SourceDagId, false),
                (AssetEventOrder::Timestamp, true),
            ]),
            q(vec![(AssetEventOrder::SourceDagId, true)]),
            q(vec![(AssetEventOrder::SourceTaskId, false)]),
            q(vec![
                (AssetEventOrder::SourceRunId, true),
                (AssetEventOrder::Id, true),
            ]),
            q(vec![(AssetEventOrder::SourceMapIndex, true)]),
            AssetEventQuery {
                order: vec![(AssetEventOrder::Asset, false), (AssetEventOrder::Id, true)],
                asset_rank: vec![URIS[1].into(), URIS[2].into()],
                limit: 30,
                offset: 190,
                ..Default::default()
            },
            AssetEventQuery {
                uris: Some(vec![URIS[0].into(), URIS[2].into()]),
                source_dag_id: Some("dag_1".into()),
                order: vec![(AssetEventOrder::Timestamp, false)],
                ..Default::default()
            },
            AssetEventQuery {
                uris: Some(vec![URIS[1].into()]),
                source_map_index: Some(2),
                timestamp_gte: Some(at(100)),
                timestamp_lte: Some(at(800)),
                source_task_id: Some("t0".into()),
                ..Default::default()
            },
            AssetEventQuery {
                source_run_id: Some("run_3".into()),
                limit: 7,
                offset: 3,
                ..Default::default()
            },
            // past the end: empty, with the total
            AssetEventQuery {
                offset: 10_000,
                ..Default::default()
            },
            AssetEventQuery {
                uris: Some(Vec::new()),
                ..Default::default()
            },
        ];
        // a hostile page size is capped
        queries.push(AssetEventQuery {
            limit: usize::MAX,
            ..Default::default()
        });
        for (n, q) in queries.iter().enumerate() {
            let page = s.asset_events_page(q).unwrap();
            let (ids, total) = reference(&all, q);
            let got: Vec<i64> = page.events.iter().map(|e| e.id).collect();
            assert_eq!(
                (got, page.total),
                (ids, total),
                "{}: query {n}: {q:?}",
                f.name
            );
            assert!(page.events.len() <= MAX_PAGE);
        }
        // whole events come back, extra included
        let page = s
            .asset_events_page(&AssetEventQuery {
                limit: 1,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.events[0], all[0], "{}", f.name);

        let stats = s.asset_stats().unwrap();
        let mut uris: Vec<&str> = URIS.to_vec();
        uris.sort();
        assert_eq!(
            stats.iter().map(|s| s.uri.as_str()).collect::<Vec<_>>(),
            uris,
            "{}",
            f.name
        );
        for st in &stats {
            let of: Vec<&AssetEvent> = all.iter().filter(|e| e.uri == st.uri).collect();
            assert_eq!(st.count, of.len() as u64);
            assert_eq!(st.first_timestamp, of[0].timestamp, "{}", f.name);
            let last = of.last().unwrap();
            assert_eq!((st.last_id, st.last_timestamp), (last.id, last.timestamp));
        }
    });
}

#[test]
fn sled_rebuilds_the_asset_index_of_an_older_database() {
    each_backend(|f| {
        let Db::Sled(db, _) = &f.db else {
            return;
        };
        let s = f.sched_store();
        for i in 0..10 {
            s.add_asset_event(&event(i), &[]).unwrap();
        }
        // as written before the index existed
        db.open_tree("asset_event_index").unwrap().clear().unwrap();
        let s = f.sched_store();
        let stats = s.asset_stats().unwrap();
        assert_eq!(stats.iter().map(|s| s.count).sum::<u64>(), 10);
        let page = s
            .asset_events_page(&AssetEventQuery {
                uris: Some(vec![URIS[0].into()]),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.total, 4);
    });
}
