//! The DAG scheduler's store ([`weft_engine::persistence::DagStore`]): one test body per
//! behaviour, run on sled and on PostgreSQL (see `common`).

mod backends;

use backends::{each_backend, run, stored_ti};
use serde_json::json;
use weft_dag::TiState;
use weft_engine::scheduler::SchedulerError;

#[test]
fn runs_list_in_logical_date_order_and_are_unique() {
    each_backend(|f| {
        let s = f.sched_store();
        for (id, day) in [("c", 20), ("a", 3), ("b", 11)] {
            s.insert_run(&run("d", id, day)).unwrap();
        }
        s.insert_run(&run("d2", "z", 1)).unwrap();
        let ids: Vec<String> = s
            .runs_of("d")
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(s.insert_run(&run("d", "x", 3)).is_err());
        assert!(s.insert_run(&run("d", "a", 4)).is_err());
        assert_eq!(s.get_run("d", "b").unwrap().unwrap().run_id, "b");
        assert_eq!(
            s.last_run("d", &["scheduled"]).unwrap().unwrap().run_id,
            "c"
        );
    });
}

#[test]
fn task_instances_and_logs_round_trip() {
    each_backend(|f| {
        let s = f.sched_store();
        let ti = stored_ti;
        s.write_tis(
            "d",
            "r",
            &[],
            &[ti("m", -1, TiState::None), ti("a", -1, TiState::Success)],
        )
        .unwrap();
        s.write_tis(
            "d",
            "r",
            &["m".into()],
            &[ti("m", 1, TiState::None), ti("m", 0, TiState::Running)],
        )
        .unwrap();
        let got: Vec<(String, i64)> = s
            .tis_of("d", "r")
            .unwrap()
            .into_iter()
            .map(|t| (t.ti.task_id, t.ti.map_index))
            .collect();
        assert_eq!(got, [("a".into(), -1), ("m".into(), 0), ("m".into(), 1)]);
        s.append_log("d", "r", "m", 1, 2, serde_json::json!("x"))
            .unwrap();
        s.append_log("d", "r", "m", 1, 2, serde_json::json!("y"))
            .unwrap();
        s.append_log("d", "r", "m", 0, 1, serde_json::json!("z"))
            .unwrap();
        let logs = s.logs_of("d", "r", "m").unwrap();
        assert_eq!(logs.len(), 2);
        assert_eq!(
            logs[1],
            (1, 2, vec![serde_json::json!("x"), serde_json::json!("y")])
        );
        assert!(!s.see_file("d", "/a", 1.0).unwrap());
        assert!(s.see_file("d", "/a", 1.0).unwrap());
        assert!(!s.see_file("d", "/a", 2.0).unwrap());
    });
}

#[test]
fn run_states_sla_misses_and_reopening() {
    each_backend(|f| {
        let s = f.sched_store();
        let mut a = run("d", "a", 1);
        s.insert_run(&a).unwrap();
        s.insert_run(&run("d", "b", 2)).unwrap();
        s.insert_run(&run("c", "z", 9)).unwrap();
        a.state = "success".into();
        s.put_run(&a).unwrap();
        s.flush().unwrap();
        // a second handle (a restarted process) sees everything
        let s2 = f.sched_store();
        let unfinished: Vec<(String, String)> = s2
            .unfinished_runs()
            .unwrap()
            .into_iter()
            .map(|r| (r.dag_id, r.run_id))
            .collect();
        assert_eq!(
            unfinished,
            [("c".into(), "z".into()), ("d".into(), "b".into())],
            "{}",
            f.name
        );
        assert_eq!(s2.get_run("d", "a").unwrap().unwrap().state, "success");
        assert!(s2.get_run("d", "nope").unwrap().is_none());
        assert!(s2.last_run("d", &["manual"]).unwrap().is_none());
        assert!(s2
            .record_sla_miss("d", "b", "t2", &json!({"task": "t2"}))
            .unwrap());
        assert!(s2
            .record_sla_miss("d", "a", "t1", &json!({"task": "t1"}))
            .unwrap());
        assert!(!s2
            .record_sla_miss("d", "a", "t1", &json!({"task": "again"}))
            .unwrap());
        assert_eq!(
            s2.sla_misses("d").unwrap(),
            [json!({"task": "t1"}), json!({"task": "t2"})]
        );
        assert!(s2.sla_misses("c").unwrap().is_empty());
        s2.append_log("d", "b", "t", -1, 1, json!("x")).unwrap();
        assert!(!s2.see_file("d", "/f", 1.0).unwrap());
        assert_eq!(s2.delete_dag("d").unwrap(), 2, "{}", f.name);
        assert!(s2.runs_of("d").unwrap().is_empty());
        assert!(s2.get_run("d", "b").unwrap().is_none());
        assert!(s2.sla_misses("d").unwrap().is_empty());
        assert!(s2.logs_of("d", "b", "t").unwrap().is_empty());
        assert!(
            !s2.see_file("d", "/f", 1.0).unwrap(),
            "seen files are forgotten"
        );
        // a deleted DAG's dates and run ids are free again; other DAGs are untouched
        s2.insert_run(&run("d", "a", 1)).unwrap();
        assert_eq!(s2.runs_of("c").unwrap().len(), 1);
    });
}

#[test]
fn racing_schedulers_create_a_logical_date_once() {
    each_backend(|f| {
        let stores: Vec<_> = (0..4).map(|_| f.sched_store()).collect();
        let won: usize = std::thread::scope(|sc| {
            let hs: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(n, s)| {
                    sc.spawn(
                        move || match s.insert_run(&run("race", &format!("r{n}"), 7)) {
                            Ok(()) => 1,
                            Err(SchedulerError::RunExists { .. }) => 0,
                            Err(e) => panic!("{e}"),
                        },
                    )
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(won, 1, "exactly one scheduler creates the run ({})", f.name);
        assert_eq!(stores[0].runs_of("race").unwrap().len(), 1, "{}", f.name);
    });
}

#[test]
fn one_run_is_deleted_with_its_task_instances_and_logs() {
    each_backend(|f| {
        let s = f.sched_store();
        s.insert_run(&run("del", "r", 1)).unwrap();
        s.insert_run(&run("del", "r1", 2)).unwrap();
        let ti = |run_id: &str| {
            s.write_tis("del", run_id, &[], &[stored_ti("t", -1, TiState::Success)])
                .unwrap();
            s.append_log("del", run_id, "t", -1, 1, json!("line"))
                .unwrap();
        };
        ti("r");
        ti("r1");
        assert!(s.delete_run("del", "r").unwrap(), "{}", f.name);
        assert!(!s.delete_run("del", "r").unwrap(), "{}", f.name);
        assert!(s.get_run("del", "r").unwrap().is_none());
        assert!(s.tis_of("del", "r").unwrap().is_empty());
        assert!(s.logs_of("del", "r", "t").unwrap().is_empty());
        // a run whose id starts with the deleted one's is untouched
        assert_eq!(s.tis_of("del", "r1").unwrap().len(), 1, "{}", f.name);
        assert_eq!(s.logs_of("del", "r1", "t").unwrap().len(), 1);
        // the id and the logical date are free again
        s.insert_run(&run("del", "r", 1)).unwrap();
    });
}

#[test]
fn paused_flags_are_kept_per_dag_and_go_with_the_dag() {
    each_backend(|f| {
        let s = f.sched_store();
        assert_eq!(s.dag_paused("p").unwrap(), None, "{}", f.name);
        s.set_dag_paused("p", true).unwrap();
        s.set_dag_paused("q", false).unwrap();
        assert_eq!(s.dag_paused("p").unwrap(), Some(true));
        assert_eq!(s.dag_paused("q").unwrap(), Some(false));
        s.set_dag_paused("p", false).unwrap();
        assert_eq!(s.dag_paused("p").unwrap(), Some(false));
        // a reopened store sees the flag
        assert_eq!(f.sched_store().dag_paused("p").unwrap(), Some(false));
        s.delete_dag("p").unwrap();
        assert_eq!(s.dag_paused("p").unwrap(), None, "{}", f.name);
        assert_eq!(s.dag_paused("q").unwrap(), Some(false));
    });
}

#[test]
fn recent_runs_are_the_newest_in_logical_date_order() {
    each_backend(|f| {
        let s = f.sched_store();
        for day in [9, 2, 14, 5, 11, 7] {
            s.insert_run(&run("d", &format!("r{day}"), day)).unwrap();
        }
        // a DAG whose id extends this one's keeps its runs to itself
        s.insert_run(&run("d.v2", "other", 20)).unwrap();
        s.insert_run(&run("d2", "other", 21)).unwrap();
        let ids = |n| -> Vec<String> {
            s.recent_runs("d", n)
                .unwrap()
                .into_iter()
                .map(|r| r.run_id)
                .collect()
        };
        assert_eq!(ids(3), ["r9", "r11", "r14"], "{}", f.name);
        assert_eq!(
            ids(100),
            ["r2", "r5", "r7", "r9", "r11", "r14"],
            "{}",
            f.name
        );
        assert!(ids(0).is_empty(), "{}", f.name);
        assert!(
            s.recent_runs("nothing", 5).unwrap().is_empty(),
            "{}",
            f.name
        );
    });
}
