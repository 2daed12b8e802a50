//! The Step Functions stores ([`weft_engine::persistence::sfn::SfnStores`]): one test body per
//! behaviour, run on sled and on PostgreSQL (see `backends`). Catalog, execution records and
//! their summary, history and task logs, the journal behind the group committer, tokens and
//! activities, the append logs and Map Runs; listings that page; two writers at once; and
//! hostile names and records, refused the same way by both databases.

mod backends;

use std::sync::Mutex;

use backends::each_backend;
use serde_json::{json, Value};
use weft_engine::durable::{Entry, Journal};
use weft_engine::persistence::history::{EventWrite, HistoryBatch, JournalLine, TaskLogWrite};
use weft_engine::persistence::limits::{MAX_KEY_BYTES, MAX_RECORD_BYTES};
use weft_engine::persistence::PersistenceError;

fn names(v: Vec<(String, Vec<u8>)>) -> Vec<String> {
    v.into_iter().map(|(n, _)| n).collect()
}

#[test]
fn the_catalog_lists_in_byte_order_pages_and_never_overwrites_on_create() {
    each_backend(|f| {
        let c = f.sfn_stores().catalog;
        for n in ["b", "a", "a-2", "c", "B"] {
            assert_eq!(c.insert_state_machine(n, n.as_bytes()).unwrap(), None);
        }
        // byte order: upper case first, `a` before `a-2`
        assert_eq!(
            names(c.state_machines(None, 10).unwrap()),
            ["B", "a", "a-2", "b", "c"]
        );
        assert_eq!(names(c.state_machines(None, 2).unwrap()), ["B", "a"]);
        assert_eq!(names(c.state_machines(Some("a"), 2).unwrap()), ["a-2", "b"]);
        assert!(c.state_machines(Some("c"), 2).unwrap().is_empty());
        assert_eq!(
            c.insert_state_machine("a", b"again").unwrap(),
            Some(b"a".to_vec()),
            "{}",
            f.name
        );
        c.update_state_machine("a", &mut |old| old.map(|o| [o, b"+"].concat()))
            .unwrap();
        assert_eq!(c.state_machine("a").unwrap(), Some(b"a+".to_vec()));
        c.update_state_machine("nope", &mut |old| old.map(<[u8]>::to_vec))
            .unwrap();
        assert_eq!(c.state_machine("nope").unwrap(), None);
        c.update_state_machine("a", &mut |_| None).unwrap();
        assert_eq!(c.state_machine("a").unwrap(), None, "an update may remove");
        c.remove_state_machine("b").unwrap();
        assert_eq!(
            names(c.state_machines(None, 10).unwrap()),
            ["B", "a-2", "c"]
        );

        for v in [10u64, 1, 2] {
            c.put_version("sm", v, format!("{{\"v\":{v}}}").as_bytes())
                .unwrap();
        }
        c.put_version("sm-2", 99, b"{}").unwrap();
        let vs: Vec<u64> = c.versions("sm").unwrap().into_iter().map(|v| v.0).collect();
        assert_eq!(vs, [1, 2, 10]);
        assert_eq!(c.latest_version("sm").unwrap().unwrap().0, 10);
        assert_eq!(c.version("sm", 2).unwrap(), Some(b"{\"v\":2}".to_vec()));
        c.remove_version("sm", 10).unwrap();
        assert_eq!(c.latest_version("sm").unwrap().unwrap().0, 2);
        assert!(c.latest_version("none").unwrap().is_none());

        assert_eq!(c.insert_alias("sm", "prod", b"1").unwrap(), None);
        assert_eq!(
            c.insert_alias("sm", "prod", b"2").unwrap(),
            Some(b"1".to_vec())
        );
        c.put_alias("sm", "beta", b"3").unwrap();
        c.put_alias("sm-2", "other", b"4").unwrap();
        assert_eq!(names(c.aliases("sm").unwrap()), ["beta", "prod"]);
        c.put_alias("sm", "prod", b"5").unwrap();
        assert_eq!(c.alias("sm", "prod").unwrap(), Some(b"5".to_vec()));
        c.remove_alias("sm", "beta").unwrap();
        assert_eq!(names(c.aliases("sm").unwrap()), ["prod"]);

        c.put_resource_map("sm", b"{\"resources\":{}}").unwrap();
        assert!(c.resource_map("sm").unwrap().is_some());
        c.remove_resource_map("sm").unwrap();
        assert!(c.resource_map("sm").unwrap().is_none());

        c.update_tags("arn:x", &mut |_| Some(b"{\"team\":\"data\"}".to_vec()))
            .unwrap();
        assert_eq!(
            c.tags("arn:x").unwrap(),
            Some(b"{\"team\":\"data\"}".to_vec())
        );
        c.remove_tags("arn:x").unwrap();
        assert_eq!(c.tags("arn:x").unwrap(), None);
        // a reopened store (a restarted node) reads the same
        let again = f.sfn_stores().catalog;
        assert_eq!(
            names(again.state_machines(None, 10).unwrap()),
            ["B", "a-2", "c"]
        );
    });
}

/// Two writers rewriting the same record through read-modify-write lose no update.
#[test]
fn concurrent_read_modify_writes_lose_nothing() {
    each_backend(|f| {
        let s = f.sfn_stores();
        s.catalog.insert_state_machine("counter", b"0").unwrap();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let c = s.catalog.clone();
                scope.spawn(move || {
                    for _ in 0..40 {
                        c.update_state_machine("counter", &mut |old| {
                            let n: u64 = std::str::from_utf8(old?).ok()?.parse().ok()?;
                            Some((n + 1).to_string().into_bytes())
                        })
                        .unwrap();
                    }
                });
            }
        });
        assert_eq!(
            s.catalog.state_machine("counter").unwrap(),
            Some(b"80".to_vec()),
            "{}",
            f.name
        );
    });
}

fn exec_arn(sm: &str, name: &str) -> String {
    format!("arn:aws:states:us-east-1:000000000000:execution:{sm}:{name}")
}

fn exec(sm: &str, name: &str, start_ms: i64, status: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "arn": exec_arn(sm, name), "state_machine_name": sm, "name": name,
        "start_ms": start_ms, "status": status, "input": "{}",
    }))
    .unwrap()
}

fn counts(s: &weft_engine::persistence::executions::Summary) -> Vec<(&str, u64)> {
    s.counts.iter().map(|(k, v)| (k.as_str(), *v)).collect()
}

#[test]
fn execution_summaries_count_the_window_and_what_runs_now() {
    each_backend(|f| {
        let s = f.sfn_stores().executions;
        let day = 86_400_000;
        let now = 10 * day;
        for (name, start, status) in [
            ("old-ok", now - 2 * day, "SUCCEEDED"),
            ("old-run", now - 3 * day, "RUNNING"),
            ("new-ok", now - 1000, "SUCCEEDED"),
            ("new-bad", now - 500, "FAILED"),
            ("new-run", now - 100, "RUNNING"),
        ] {
            s.put_execution(
                &exec_arn("orders", name),
                &exec("orders", name, start, status),
            )
            .unwrap();
        }
        s.put_execution(
            &exec_arn("orders2", "x"),
            &exec("orders2", "x", now - 10, "FAILED"),
        )
        .unwrap();
        let sum = s.summary("orders", now - day).unwrap();
        assert_eq!(
            counts(&sum),
            [("FAILED", 1), ("RUNNING", 2), ("SUCCEEDED", 1)],
            "{}",
            f.name
        );
        assert_eq!(sum.last_start_ms, Some(now - 100));
        assert_eq!(s.summary("none", 0).unwrap(), Default::default());
        s.put_execution(
            &exec_arn("orders", "ancient"),
            &exec("orders", "ancient", -5, "ABORTED"),
        )
        .unwrap();
        assert_eq!(s.summary("orders", -10).unwrap().counts["ABORTED"], 1);

        // status changes move an execution between counts, and nothing lingers
        let arn = exec_arn("sm", "e");
        assert_eq!(
            s.insert_execution(&arn, &exec("sm", "e", 1_000, "RUNNING"))
                .unwrap(),
            None
        );
        assert_eq!(
            s.insert_execution(&arn, &exec("sm", "e", 1_000, "FAILED"))
                .unwrap(),
            Some(exec("sm", "e", 1_000, "RUNNING")),
            "an insert never overwrites"
        );
        for status in ["ABORTED", "RUNNING", "SUCCEEDED"] {
            s.update_execution(&arn, &mut |old| {
                let mut v: Value = serde_json::from_slice(old?).ok()?;
                v["status"] = json!(status);
                serde_json::to_vec(&v).ok()
            })
            .unwrap();
            assert_eq!(
                counts(&s.summary("sm", 0).unwrap()),
                [(status, 1)],
                "after {status}"
            );
        }
        assert!(s.summary("sm", 2_000).unwrap().counts.is_empty());
        // the record a store keeps is the record given, byte for byte
        let stored: Value = serde_json::from_slice(&s.execution(&arn).unwrap().unwrap()).unwrap();
        assert_eq!(stored["status"], "SUCCEEDED");
        s.repair_index(&s.execution(&arn).unwrap().unwrap())
            .unwrap();
    });
}

/// Listing executions by ARN prefix walks every record in ARN order across pages (more
/// records than a PostgreSQL page), stops when asked, and never strays past the prefix.
#[test]
fn executions_list_by_prefix_across_pages() {
    each_backend(|f| {
        let s = f.sfn_stores().executions;
        for i in 0..620 {
            let name = format!("e{i:04}");
            s.put_execution(&exec_arn("big", &name), &exec("big", &name, i, "SUCCEEDED"))
                .unwrap();
        }
        s.put_execution(&exec_arn("big2", "z"), &exec("big2", "z", 1, "RUNNING"))
            .unwrap();
        s.put_execution(&exec_arn("bif", "z"), &exec("bif", "z", 1, "RUNNING"))
            .unwrap();
        let mut seen = Vec::new();
        s.each_execution(&exec_arn("big", ""), &mut |v| {
            let v: Value = serde_json::from_slice(v).unwrap();
            seen.push(v["name"].as_str().unwrap().to_string());
            true
        })
        .unwrap();
        assert_eq!(seen.len(), 620, "{}", f.name);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        let mut n = 0;
        s.each_execution("", &mut |_| {
            n += 1;
            n < 3
        })
        .unwrap();
        assert_eq!(n, 3, "a visitor that answers false stops the walk");
    });
}

fn ev(arn: &str, id: u64) -> EventWrite {
    EventWrite {
        execution: arn.into(),
        id,
        json: format!("{{\"id\":{id}}}"),
    }
}

fn event_ids(
    h: &dyn weft_engine::persistence::history::HistoryStore,
    arn: &str,
    reverse: bool,
) -> Vec<u64> {
    let mut out = Vec::new();
    h.each_run(arn, reverse, &mut |_, evs| {
        let mut ids: Vec<u64> = evs
            .iter()
            .map(|v| {
                serde_json::from_slice::<Value>(v).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        if reverse {
            ids.reverse();
        }
        out.extend(ids);
        true
    })
    .unwrap();
    out
}

#[test]
fn history_reads_back_in_id_order_both_ways_across_pages() {
    each_backend(|f| {
        let h = f.sfn_stores().history;
        let mut b = HistoryBatch::default();
        for id in 1..=1200 {
            b.events.push(ev("a", id));
        }
        b.events.push(ev("b", 1));
        h.write_batch(&b).unwrap();
        h.write_batch(&HistoryBatch {
            events: vec![ev("a", 1201)],
            ..Default::default()
        })
        .unwrap();
        h.put_event("a", 1202, b"{\"id\":1202}").unwrap();
        let fwd = event_ids(h.as_ref(), "a", false);
        assert_eq!(fwd, (1..=1202).collect::<Vec<_>>(), "{}", f.name);
        let back = event_ids(h.as_ref(), "a", true);
        assert_eq!(back, (1..=1202).rev().collect::<Vec<_>>());
        assert_eq!(h.last_event_id("a").unwrap(), 1202);
        assert_eq!(h.last_event_id("b").unwrap(), 1);
        assert_eq!(h.last_event_id("zz").unwrap(), 0);
        // the newest event, the way GetExecutionHistory's reverse order starts
        let mut newest = None;
        h.each_run("a", true, &mut |last, _| {
            newest = Some(last);
            false
        })
        .unwrap();
        assert_eq!(newest, Some(1202));
    });
}

#[test]
fn task_logs_and_run_recorded_journal_entries_are_all_read_back() {
    each_backend(|f| {
        let s = f.sfn_stores();
        let log = |arn: &str, seq, state: &str| TaskLogWrite {
            execution: arn.into(),
            seq,
            state: state.into(),
            attempt: 1,
            json: format!("{{\"state\":\"{state}\"}}"),
        };
        let line = |arn: &str, key: &str, out: u64| JournalLine {
            execution: arn.into(),
            key: key.into(),
            json: format!("{{\"t\":\"ok\",\"output\":{out}}}").into_bytes(),
        };
        s.history
            .write_batch(&HistoryBatch {
                events: vec![ev("a", 1), ev("a", 2)],
                task_logs: vec![log("a", 7, "X"), log("b", 8, "Y"), log("a", 3, "W")],
                journal: vec![line("a", "/0.1@1", 1), line("b", "/0.1@1", 2)],
            })
            .unwrap();
        assert_eq!(
            event_ids(s.history.as_ref(), "a", false),
            [1, 2],
            "{}",
            f.name
        );
        let mut logs = s.history.task_logs("a").unwrap();
        logs.sort();
        assert_eq!(
            logs,
            [
                (3, b"{\"state\":\"W\"}".to_vec()),
                (7, b"{\"state\":\"X\"}".to_vec())
            ]
        );
        assert_eq!(s.history.task_logs("b").unwrap().len(), 1);
        // the runtime reads a journal entry a batch recorded from either place
        for (arn, out) in [("a", 1), ("b", 2)] {
            let mut found = s.history.journal_lines(arn).unwrap();
            let j = Journal::on(&s.journal, arn);
            found.extend(
                j.entries()
                    .unwrap()
                    .into_iter()
                    .map(|(k, e)| (k, serde_json::to_vec(&e).unwrap())),
            );
            assert_eq!(found.len(), 1, "{arn}: {found:?}");
            assert_eq!(found[0].0, "/0.1@1");
            let e: Entry = serde_json::from_slice(&found[0].1).unwrap();
            assert_eq!(e, Entry::Ok { output: json!(out) });
        }
    });
}

/// Two writers append to the same execution's history at once (batches and single events,
/// interleaved ids): every id is stored once, and reads return them in order.
#[test]
fn two_writers_on_one_history_keep_every_id_once() {
    each_backend(|f| {
        let s = f.sfn_stores();
        std::thread::scope(|scope| {
            for parity in 0..2u64 {
                let h = s.history.clone();
                scope.spawn(move || {
                    for i in 0..60u64 {
                        let id = 2 * i + parity + 1;
                        if i % 2 == 0 {
                            h.write_batch(&HistoryBatch {
                                events: vec![ev("shared", id)],
                                ..Default::default()
                            })
                            .unwrap();
                        } else {
                            h.put_event("shared", id, format!("{{\"id\":{id}}}").as_bytes())
                                .unwrap();
                        }
                    }
                });
            }
        });
        let ids = event_ids(s.history.as_ref(), "shared", false);
        assert_eq!(ids, (1..=120).collect::<Vec<_>>(), "{}", f.name);
        assert_eq!(s.history.last_event_id("shared").unwrap(), 120);
    });
}

/// The journal behind the group committer: writes are read back before and after a commit,
/// durable once the commit returns (a reopened store sees them), and a clear removes them.
#[test]
fn the_journal_is_durable_at_each_group_commit() {
    each_backend(|f| {
        let arn = "arn:aws:states:us-east-1:000000000000:execution:sm:it's";
        {
            let s = f.sfn_stores();
            let j = Journal::on(&s.journal, arn);
            j.put("/0.1@1", &Entry::Started { at_ms: 5 }).unwrap();
            assert!(j
                .complete(
                    "/0.1@1",
                    &Entry::Ok {
                        output: json!({"x": 1})
                    }
                )
                .unwrap());
            assert!(
                !j.complete(
                    "/0.1@1",
                    &Entry::Err {
                        error: "E".into(),
                        cause: "late".into()
                    }
                )
                .unwrap(),
                "a result is never replaced"
            );
            j.put("/1.1:wait", &Entry::Timer { until_ms: 99 }).unwrap();
            assert_eq!(
                j.get("/1.1:wait").unwrap(),
                Some(Entry::Timer { until_ms: 99 })
            );
            s.commit.commit().unwrap();
            let other = Journal::on(&s.journal, "arn:other");
            other.put("/0.1@1", &Entry::Timer { until_ms: 1 }).unwrap();
            s.commit.commit().unwrap();
        }
        let s = f.sfn_stores();
        let j = Journal::on(&s.journal, arn);
        let keys: Vec<String> = j.entries().unwrap().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["/0.1@1", "/1.1:wait"], "{}", f.name);
        assert_eq!(
            j.get("/0.1@1").unwrap(),
            Some(Entry::Ok {
                output: json!({"x": 1})
            })
        );
        j.clear().unwrap();
        assert!(j.entries().unwrap().is_empty());
        s.commit.commit().unwrap();
        let s = f.sfn_stores();
        assert!(Journal::on(&s.journal, arn).entries().unwrap().is_empty());
        assert_eq!(
            Journal::on(&s.journal, "arn:other")
                .entries()
                .unwrap()
                .len(),
            1,
            "a clear removes one execution's journal only"
        );
    });
}

#[test]
fn tokens_are_found_by_execution_and_by_open_activity_task() {
    each_backend(|f| {
        let s = f.sfn_stores();
        let rec = |x: &str, activity: Option<&str>, claimed: Option<&str>| {
            serde_json::json!({"execution": x, "key": "/1.0@1", "activity": activity,
                               "claimed_by": claimed, "input": "{}"})
            .to_string()
            .into_bytes()
        };
        let x1 = "arn:aws:states:us-east-1:000000000000:execution:sm:one";
        let x2 =
            "arn:aws:states:us-east-1:000000000000:execution:sm:two'; DROP TABLE sfn_tokens;--";
        assert!(s.tokens.insert_token("k-a", &rec(x1, None, None)).unwrap());
        assert!(s
            .tokens
            .insert_token("k-b", &rec(x1, Some("act"), None))
            .unwrap());
        assert!(s
            .tokens
            .insert_token("k-c", &rec(x2, Some("act"), None))
            .unwrap());
        assert!(s
            .tokens
            .insert_token("k-d", &rec(x2, Some("other"), None))
            .unwrap());
        // records that are not token records are kept and found by nothing
        assert!(s.tokens.insert_token("k-e", b"not json at all").unwrap());
        assert!(s.tokens.insert_token("k-f", b"[1, 2]").unwrap());
        assert!(s.tokens.insert_token("k-g", b"{\"execution\": 7}").unwrap());

        let of = |x: &str| -> Vec<String> {
            s.tokens
                .tokens_of(x)
                .unwrap()
                .into_iter()
                .map(|(t, _)| t)
                .collect()
        };
        assert_eq!(of(x1), ["k-a", "k-b"], "{}", f.name);
        assert_eq!(of(x2), ["k-c", "k-d"], "{}", f.name);
        assert_eq!(of("arn:none"), Vec::<String>::new());
        assert_eq!(s.tokens.tokens_of(x1).unwrap()[0].1, rec(x1, None, None));
        assert_eq!(
            s.tokens.open_activity_tasks("act", 10).unwrap(),
            ["k-b", "k-c"]
        );
        assert_eq!(s.tokens.open_activity_tasks("act", 1).unwrap(), ["k-b"]);
        assert!(s.tokens.open_activity_tasks("act", 0).unwrap().is_empty());

        // a claim (compare-and-set) and an overwrite move the task out of the open ones
        s.tokens
            .update_token("k-b", &mut |cur| {
                assert!(cur.is_some());
                Some(rec(x1, Some("act"), Some("worker-1")))
            })
            .unwrap();
        assert_eq!(
            s.tokens.open_activity_tasks("act", 10).unwrap(),
            ["k-c"],
            "{}",
            f.name
        );
        s.tokens
            .put_token("k-c", &rec(x2, Some("act"), Some("worker-2")))
            .unwrap();
        assert!(s.tokens.open_activity_tasks("act", 10).unwrap().is_empty());
        assert_eq!(s.tokens.open_activity_tasks("other", 10).unwrap(), ["k-d"]);
        // a removed token is gone from both lookups
        s.tokens.remove_token("k-d").unwrap();
        assert_eq!(of(x2), ["k-c"]);
        assert!(s
            .tokens
            .open_activity_tasks("other", 10)
            .unwrap()
            .is_empty());
        assert_eq!(
            s.tokens.token("k-e").unwrap(),
            Some(b"not json at all".to_vec())
        );
    });
}

#[test]
fn tokens_are_recorded_once_and_listed_across_pages() {
    each_backend(|f| {
        let s = f.sfn_stores();
        assert!(s.tokens.insert_token("tok-1", b"{\"e\":1}").unwrap());
        assert!(!s.tokens.insert_token("tok-1", b"{\"e\":2}").unwrap());
        assert_eq!(
            s.tokens.token("tok-1").unwrap(),
            Some(b"{\"e\":1}".to_vec())
        );
        s.tokens.put_token("tok-1", b"{\"e\":3}").unwrap();
        assert_eq!(
            s.tokens.token("tok-1").unwrap(),
            Some(b"{\"e\":3}".to_vec())
        );
        for i in 0..540 {
            s.tokens.insert_token(&format!("t{i:04}"), b"{}").unwrap();
        }
        let mut seen = Vec::new();
        s.tokens
            .each_token(&mut |t, _| {
                seen.push(t.to_string());
                true
            })
            .unwrap();
        assert_eq!(seen.len(), 541, "{}", f.name);
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        s.tokens.remove_token("tok-1").unwrap();
        assert_eq!(s.tokens.token("tok-1").unwrap(), None);

        for n in ["b", "a", "c"] {
            s.activities.put_activity(n, n.as_bytes()).unwrap();
        }
        assert_eq!(
            names(s.activities.activities(None, 10).unwrap()),
            ["a", "b", "c"]
        );
        assert_eq!(names(s.activities.activities(Some("a"), 1).unwrap()), ["b"]);
        s.activities.remove_activity("b").unwrap();
        assert_eq!(s.activities.activity("b").unwrap(), None);
        assert_eq!(s.activities.activity("c").unwrap(), Some(b"c".to_vec()));
    });
}

#[test]
fn logs_read_newest_first_across_pages_and_map_runs_are_recorded_once() {
    each_backend(|f| {
        let s = f.sfn_stores();
        s.audit
            .append(&[
                (30, b"c".to_vec()),
                (30, b"d".to_vec()),
                (10, b"a".to_vec()),
            ])
            .unwrap();
        s.audit.append(&[(15, b"late".to_vec())]).unwrap();
        let newest = |log: &dyn weft_engine::persistence::AppendLog, n: usize| {
            let mut out = Vec::new();
            log.newest_first(&mut |v| {
                out.push(String::from_utf8(v.to_vec()).unwrap());
                out.len() < n
            })
            .unwrap();
            out
        };
        assert_eq!(
            newest(s.audit.as_ref(), 10),
            ["d", "c", "late", "a"],
            "{}",
            f.name
        );
        assert_eq!(newest(s.audit.as_ref(), 1), ["d"]);
        assert!(
            newest(s.execution_log.as_ref(), 10).is_empty(),
            "two separate logs"
        );
        let many: Vec<(i64, Vec<u8>)> = (0..700).map(|i| (i, i.to_string().into_bytes())).collect();
        s.execution_log.append(&many).unwrap();
        let all = newest(s.execution_log.as_ref(), usize::MAX);
        assert_eq!(all.len(), 700);
        assert_eq!(all[0], "699");
        assert_eq!(all[699], "0");

        assert_eq!(s.map_runs.insert_map_run("r", b"1").unwrap(), None);
        assert_eq!(
            s.map_runs.insert_map_run("r", b"2").unwrap(),
            Some(b"1".to_vec())
        );
        s.map_runs.put_map_run("r", b"3").unwrap();
        assert_eq!(s.map_runs.map_run("r").unwrap(), Some(b"3".to_vec()));
        assert_eq!(s.map_runs.map_run("x").unwrap(), None);
    });
}

#[test]
fn the_token_secret_is_the_same_for_every_open() {
    each_backend(|f| {
        let a = f.sfn_stores().token_secret;
        let b = f.sfn_stores().token_secret;
        assert_eq!(a, b, "{}", f.name);
        assert_ne!(a, [0u8; 32]);
    });
}

/// Names with quotes and SQL round-trip as data; NUL bytes, over-long keys and over-sized
/// records are refused with the same message on both databases, and nothing is written.
#[test]
fn hostile_names_and_records_are_refused_identically() {
    let messages: Mutex<Vec<Vec<String>>> = Mutex::default();
    each_backend(|f| {
        let s = f.sfn_stores();
        let sly = "a'b\"c;DROP TABLE sfn_state_machines;--\\ é";
        assert_eq!(s.catalog.insert_state_machine(sly, b"{}").unwrap(), None);
        assert_eq!(s.catalog.state_machine(sly).unwrap(), Some(b"{}".to_vec()));
        s.catalog.put_alias(sly, "it's", b"{}").unwrap();
        assert_eq!(names(s.catalog.aliases(sly).unwrap()), ["it's"]);
        assert!(s.tokens.insert_token(sly, b"{}").unwrap());
        s.history.put_event(sly, 1, b"{\"id\":1}").unwrap();
        assert_eq!(s.history.last_event_id(sly).unwrap(), 1);
        // a record holding NULs and non-UTF-8 bytes is kept byte for byte
        s.map_runs.put_map_run(sly, b"\0\xff'\"").unwrap();
        assert_eq!(
            s.map_runs.map_run(sly).unwrap(),
            Some(b"\0\xff'\"".to_vec())
        );

        let long = "x".repeat(MAX_KEY_BYTES + 1);
        let huge = vec![b' '; MAX_RECORD_BYTES + 1];
        let errs: Vec<PersistenceError> = vec![
            s.catalog.insert_state_machine("a\0b", b"{}").unwrap_err(),
            s.catalog.state_machine("a\0b").unwrap_err(),
            s.catalog.put_alias("sm", "al\0ias", b"{}").unwrap_err(),
            s.catalog.insert_state_machine(&long, b"{}").unwrap_err(),
            s.catalog.insert_state_machine("big", &huge).unwrap_err(),
            s.catalog
                .update_state_machine(sly, &mut |_| Some(huge.clone()))
                .unwrap_err(),
            s.executions
                .put_execution(&exec_arn("sm", "n\0ul"), &exec("sm", "n\0ul", 1, "RUNNING"))
                .unwrap_err(),
            s.executions
                .put_execution(&exec_arn("sm", "e"), &exec("sm", &long, 1, "RUNNING"))
                .unwrap_err(),
            s.executions
                .put_execution(&exec_arn("sm", "e"), b"{}")
                .unwrap_err(),
            s.history.put_event("x\0y", 1, b"{}").unwrap_err(),
            s.history
                .write_batch(&HistoryBatch {
                    events: vec![ev("ok", 1), ev("bad\0", 2)],
                    ..Default::default()
                })
                .unwrap_err(),
            s.tokens.insert_token(&long, b"{}").unwrap_err(),
            s.activities.put_activity("act", &huge).unwrap_err(),
            s.audit.append(&[(1, huge.clone())]).unwrap_err(),
            s.map_runs.insert_map_run("r\0", b"{}").unwrap_err(),
        ];
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        for (e, m) in errs.iter().zip(&msgs) {
            assert!(
                matches!(
                    e,
                    PersistenceError::Invalid { .. } | PersistenceError::Corrupt { .. }
                ),
                "{}: {m}",
                f.name
            );
        }
        assert!(msgs[0].contains("NUL"), "{}", msgs[0]);
        assert!(msgs[3].contains(&MAX_KEY_BYTES.to_string()), "{}", msgs[3]);
        assert!(
            msgs[4].contains(&MAX_RECORD_BYTES.to_string()),
            "{}",
            msgs[4]
        );
        // nothing of a refused write was stored
        assert_eq!(s.catalog.state_machine(sly).unwrap(), Some(b"{}".to_vec()));
        assert_eq!(s.catalog.state_machine("big").unwrap(), None);
        assert_eq!(
            s.history.last_event_id("ok").unwrap(),
            0,
            "a batch is refused whole"
        );
        assert_eq!(s.executions.execution(&exec_arn("sm", "e")).unwrap(), None);
        messages.lock().unwrap().push(msgs);
    });
    let m = messages.lock().unwrap();
    if let [sled, pg] = &m[..] {
        assert_eq!(sled, pg, "both databases refuse with the same words");
    }
}
