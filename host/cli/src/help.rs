//! The `Examples:` block of every subcommand's `--help`, the finished clap command that
//! carries them, and `weft completions SHELL` (clap_complete's script for that command). The examples are kept here, one table keyed by the subcommand's path, rather
//! than spread over `args.rs`: one place to keep them consistent with the README, and a test
//! that parses every example with the real grammar (so none names a flag that does not exist)
//! and fails when a subcommand has none.

use clap::{Command, CommandFactory};

/// `(subcommand path, example lines)`: each line is a complete command, with a `#` comment
/// where it helps. Paths name the subcommands as typed (`dag backfill`).
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "run",
        &[
            "weft run examples/csv-map.asl.json --input '{}'",
            "weft run examples/order-processing.asl.json --input @examples/order-processing.input.json --history",
            "weft run order.asl.json --mock-config mocks.json --test-case RetryPath --fast-forward",
        ],
    ),
    (
        "validate",
        &[
            "weft validate examples/intrinsics.asl.json",
            "weft validate examples/dags/etl_daily.dag.yaml",
            "weft validate --allow-unmapped order.asl.json   # unmapped AWS integrations only warn",
        ],
    ),
    (
        "plugin",
        &[
            "weft plugin install target/plugins/echo.wasm",
            "weft plugin list",
        ],
    ),
    (
        "plugin pack",
        &["weft plugin pack target/plugins -o plugins.zip   # a sealed bundle to share"],
    ),
    (
        "plugin install",
        &[
            "weft plugin install target/plugins/echo.wasm",
            "weft plugin install plugins.zip",
        ],
    ),
    (
        "plugin list",
        &["weft plugin list", "weft plugin list --json"],
    ),
    (
        "plugin inspect",
        &["weft plugin inspect csv-to-json   # world, imports, digest, requested grant"],
    ),
    ("plugin verify", &["weft plugin verify"]),
    (
        "plugin build",
        &[
            "weft plugin build my-check                 # installs componentize-py/-js under $WEFT_HOME on first use",
            "weft plugin build my-check --out target/plugins",
        ],
    ),
    (
        "plugin new",
        &[
            "weft plugin new --lang python my-check     # or rust | js; scaffolds an operator with a test",
        ],
    ),
    (
        "invoke",
        &[
            "weft invoke echo --input '{\"hello\":\"world\"}'",
            "weft invoke csv-to-json --policy examples/roles/read-data.json --input '{\"path\":\"/examples/data/orders.csv\"}' --logs",
        ],
    ),
    (
        "server",
        &[
            "weft server                                # API and UI on 127.0.0.1:8470",
            "weft server --listen 127.0.0.1:9000 --no-auth",
            "weft server --listen 0.0.0.0:8470 --no-local-tasks   # tasks run on `weft worker`s only",
        ],
    ),
    (
        "worker",
        &[
            "weft worker --server http://10.0.0.5:8470                  # queue `default`",
            "weft worker --server http://10.0.0.5:8470 --queue gpu --queue default --min-slots 1 --max-slots 8",
            "weft worker --server http://node:8470 --profile worker   # a key of AWS_SHARED_CREDENTIALS_FILE or $WEFT_HOME/credentials",
        ],
    ),
    (
        "bench",
        &[
            "weft bench invoke --plugin echo",
            "weft bench standard --json",
            "weft bench dag --plugin none",
            "weft bench remote --iterations 2000   # node vs 1 and 2 workers over loopback",
        ],
    ),
    (
        "dag",
        &[
            "weft dag list --dags examples/dags",
            "weft dag test daily_orders 2024-03-05 --dags examples/dags --json",
        ],
    ),
    (
        "dag list",
        &["weft dag list --dags examples/dags", "weft dag list --json"],
    ),
    (
        "dag test",
        &["weft dag test daily_orders 2024-03-05 --dags examples/dags --json"],
    ),
    (
        "dag validate",
        &[
            "weft dag validate examples/dags/etl_daily.dag.yaml   # cycles, upstreams, cron, operators (file:line)",
            "weft dag validate examples/dags   # every DAG file of a folder; other YAML files skipped with a note",
        ],
    ),
    (
        "dag trigger",
        &["weft dag trigger mapped --dags examples/dags --conf '{\"x\": 1}' --json"],
    ),
    (
        "dag backfill",
        &["weft dag backfill branching --from 2024-03-01 --to 2024-03-07 --dags examples/dags"],
    ),
    (
        "dag clear",
        &["weft dag clear retries load --dags examples/dags   # resets load + downstream, re-runs"],
    ),
    (
        "dag pause",
        &["weft dag pause daily_orders   # no new runs; its queued runs wait"],
    ),
    (
        "dag unpause",
        &["weft dag unpause daily_orders"],
    ),
    (
        "dag state",
        &["weft dag state daily_orders 2024-03-05   # success, or `success, {CONF}`"],
    ),
    (
        "dag tasks-state",
        &["weft dag tasks-state daily_orders 2024-03-05 --json"],
    ),
    (
        "dag mark",
        &[
            "weft dag mark daily_orders 2024-03-05 load --state success --downstream",
            "weft dag mark daily_orders 2024-03-05 --state failed   # the whole run",
        ],
    ),
    (
        "dag deps",
        &[
            "weft dag deps --dags dags   # requirements.txt's pure-Python wheels, pinned in requirements.lock.json",
            "weft dag deps --dags dags --wheelhouse wheels --offline --json",
        ],
    ),
    (
        "dag delete",
        &["weft dag delete daily_orders -y   # its runs, task instances and logs; the file stays"],
    ),
    (
        "dag logs",
        &["weft dag logs retries load --try 2   # guest logs, stdout/stderr, audit, callbacks"],
    ),
    (
        "dag runs",
        &["weft dag runs retries --json   # runs in logical-date order"],
    ),
    (
        "dag scheduler",
        &[
            "weft dag scheduler --dags examples/dags --max-workers 8   # Ctrl-C stops it",
            "weft dag scheduler --dags examples/dags --exit-when-idle",
        ],
    ),
    (
        "sm",
        &[
            "weft sm create orders examples/order-processing.asl.json",
            "weft sm start orders --input @examples/order-processing.input.json --wait",
        ],
    ),
    (
        "sm create",
        &[
            "weft sm create orders examples/order-processing.asl.json",
            "weft sm create orders examples/order-processing.asl.json --update --publish",
        ],
    ),
    ("sm list", &["weft sm list"]),
    (
        "sm start",
        &["weft sm start orders --input @examples/order-processing.input.json --wait"],
    ),
    (
        "sm describe",
        &["weft sm describe arn:aws:states:us-east-1:000000000000:execution:orders:NAME"],
    ),
    (
        "sm executions",
        &["weft sm executions orders --status FAILED"],
    ),
    (
        "sm history",
        &["weft sm history arn:aws:states:us-east-1:000000000000:execution:orders:NAME"],
    ),
    (
        "sm stop",
        &["weft sm stop arn:aws:states:us-east-1:000000000000:execution:orders:NAME --error Operator.Stopped"],
    ),
    (
        "sm redrive",
        &["weft sm redrive arn:aws:states:us-east-1:000000000000:execution:orders:NAME"],
    ),
    (
        "sm send-success",
        &["weft sm send-success TOKEN --output '{\"approved\": true}'"],
    ),
    (
        "sm resource-map",
        &[
            "weft sm resource-map orders --set orders.resource-map.yaml   # the state machine's own map",
            "weft sm resource-map orders",
            "weft sm resource-map orders --delete",
        ],
    ),
    (
        "sm send-failure",
        &["weft sm send-failure TOKEN --error Approval.Rejected --cause 'not this week'"],
    ),
    (
        "audit",
        &[
            "weft audit --filter StartExecution   # who called what, with what result",
            "weft audit --limit 200 --json",
        ],
    ),
    (
        "variables",
        &[
            "weft variables set region eu-west-1",
            "weft variables list",
        ],
    ),
    (
        "variables set",
        &[
            "weft variables set region eu-west-1",
            "weft variables set limits '{\"max\": 5}'",
        ],
    ),
    ("variables get", &["weft variables get region"]),
    ("variables list", &["weft variables list   # names only"]),
    ("variables delete", &["weft variables delete region"]),
    (
        "connections",
        &[
            "weft connections set warehouse 'postgres://etl:secret@db.internal:5432/sales'",
            "weft connections list",
        ],
    ),
    (
        "connections set",
        &["weft connections set warehouse 'postgres://etl:secret@db.internal:5432/sales'"],
    ),
    ("connections get", &["weft connections get warehouse"]),
    ("connections list", &["weft connections list --json"]),
    ("connections delete", &["weft connections delete warehouse"]),
    (
        "completions",
        &[
            "weft completions bash > ~/.local/share/bash-completion/completions/weft",
            "weft completions zsh > ~/.zfunc/_weft   # with fpath+=~/.zfunc before compinit",
            "weft completions fish > ~/.config/fish/completions/weft.fish",
        ],
    ),
];

/// The examples of the subcommand at `path` (`dag backfill`), if it has any.
fn examples_of(path: &str) -> Option<&'static [&'static str]> {
    EXAMPLES.iter().find(|(p, _)| *p == path).map(|(_, e)| *e)
}

fn block(lines: &[&str]) -> String {
    let mut s = String::from("Examples:\n");
    for l in lines {
        s.push_str("  ");
        s.push_str(l);
        s.push('\n');
    }
    s.pop();
    s
}

fn attach(mut cmd: Command, path: &str) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for name in names {
        let sub_path = if path.is_empty() {
            name.clone()
        } else {
            format!("{path} {name}")
        };
        cmd = cmd.mut_subcommand(&name, |sub| {
            let sub = match examples_of(&sub_path) {
                Some(lines) => sub.after_help(block(lines)),
                None => sub,
            };
            attach(sub, &sub_path)
        });
    }
    cmd
}

/// The `weft` command: the grammar of [`crate::args::Cli`] with every subcommand's examples.
pub fn command() -> Command {
    attach(crate::args::Cli::command(), "")
}

/// `weft completions bash|zsh|fish`: prints the completion script of [`command`] on stdout.
/// A reader that stops early (`| head`) is not an error.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<std::process::ExitCode> {
    use std::io::Write as _;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "weft", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(std::process::ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits an example into arguments: whitespace separates, `'...'` quotes, `#` starts a
    /// comment and `>` a redirection (as a shell reads these lines).
    fn split(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let (mut quoted, mut any) = (false, false);
        for c in line.chars() {
            match c {
                '\'' => {
                    quoted = !quoted;
                    any = true;
                }
                '#' | '>' if !quoted && cur.is_empty() => break,
                c if c.is_whitespace() && !quoted => {
                    if any {
                        out.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                c => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        assert!(!quoted, "unbalanced quote in example `{line}`");
        if any {
            out.push(cur);
        }
        out
    }

    /// Every subcommand (the tree's inner nodes and leaves; not clap's own `help`), by path.
    fn paths(cmd: &Command, prefix: &str, out: &mut Vec<(String, bool)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let p = if prefix.is_empty() {
                sub.get_name().to_string()
            } else {
                format!("{prefix} {}", sub.get_name())
            };
            out.push((p.clone(), sub.has_subcommands()));
            paths(sub, &p, out);
        }
    }

    fn find<'a>(cmd: &'a Command, path: &str) -> &'a Command {
        path.split(' ').fold(cmd, |c, n| {
            c.find_subcommand(n)
                .unwrap_or_else(|| panic!("no subcommand `{path}`"))
        })
    }

    #[test]
    fn every_subcommand_has_examples_in_its_help() {
        let mut cmd = command();
        cmd.build();
        let mut all = Vec::new();
        paths(&cmd, "", &mut all);
        assert!(all.len() > 30, "the walk found the tree: {all:?}");
        let missing: Vec<&str> = all
            .iter()
            .filter(|(p, _)| {
                find(&cmd, p)
                    .get_after_help()
                    .is_none_or(|h| !h.to_string().starts_with("Examples:\n  weft "))
            })
            .map(|(p, _)| p.as_str())
            .collect();
        assert!(
            missing.is_empty(),
            "subcommands without an `Examples:` block in their --help (add them to EXAMPLES in help.rs): {missing:?}"
        );
        // the rendered help shows it
        let help = find(&cmd, "dag backfill").clone().render_help().to_string();
        assert!(
            help.contains("Examples:\n  weft dag backfill branching --from 2024-03-01"),
            "{help}"
        );
    }

    #[test]
    fn every_example_parses_and_runs_its_own_subcommand() {
        let cmd = command();
        for (path, lines) in EXAMPLES {
            assert!(!lines.is_empty(), "`{path}` has an empty list of examples");
            let _ = find(&cmd, path);
            for line in *lines {
                let args = split(line);
                assert_eq!(args[0], "weft", "`{line}`");
                // a group's examples run one of its subcommands; a leaf's run the leaf
                let words: Vec<&str> = path.split(' ').collect();
                assert_eq!(
                    &args[1..=words.len()],
                    &words[..],
                    "`{line}` does not run `weft {path}`"
                );
                if let Err(e) = command().try_get_matches_from(&args) {
                    panic!("example `{line}` of `weft {path}` does not parse:\n{e}");
                }
            }
        }
    }

    #[test]
    fn no_example_is_listed_for_a_subcommand_that_does_not_exist() {
        let cmd = command();
        let mut all = Vec::new();
        paths(&cmd, "", &mut all);
        for (path, _) in EXAMPLES {
            assert!(
                all.iter().any(|(p, _)| p == path),
                "EXAMPLES names `{path}`, which is not a subcommand"
            );
        }
    }

    #[test]
    fn examples_are_split_as_a_shell_would() {
        assert_eq!(
            split("weft invoke echo --input '{\"a\": 1}'   # note"),
            vec!["weft", "invoke", "echo", "--input", "{\"a\": 1}"]
        );
        assert_eq!(split("weft x '' y"), vec!["weft", "x", "", "y"]);
        assert_eq!(
            split("weft completions bash > f"),
            vec!["weft", "completions", "bash"]
        );
    }
}
