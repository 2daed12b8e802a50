//! The command-line grammar (clap). DESIGN.md's CLI contract is relied on by checks outside the
//! project: keep names and shapes exact.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "weft",
    version,
    about = "Pipelines of sandboxed WebAssembly operators: ASL state machines and Airflow-style DAGs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Export traces (a trace per execution and per DAG run) to this OpenTelemetry collector
    /// over OTLP/HTTP, e.g. http://127.0.0.1:4318 (Jaeger, Grafana Tempo, the OpenTelemetry
    /// Collector); also $OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, global = true, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// How log lines are written to stderr: `text`, or `json` (one object per line, with the
    /// execution or DAG run and trace ids of the work it is about). $WEFT_LOG sets the level.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The shape of log lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the fields of the spans it happened in.
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run an ASL state machine in-process (Express-style) and print its output.
    Run(RunArgs),
    /// Check an ASL definition or a DAG file (every problem, with its location).
    Validate(ValidateArgs),
    /// Manage plugins: pack, install, list, inspect, verify.
    #[command(subcommand)]
    Plugin(PluginCmd),
    /// Run one operator plugin and print its output JSON.
    Invoke(InvokeArgs),
    /// Serve the Step Functions API (AWS JSON 1.0, `X-Amz-Target`) over HTTP.
    Server(ServerArgs),
    /// Run a node's sandboxed tasks on this host: long-polls `weft server` for tasks of its
    /// queues, fetches plugins by digest, heartbeats and reports.
    Worker(WorkerArgs),
    /// Measure weft's hot paths.
    Bench(BenchArgs),
    /// Airflow-style DAGs: list, validate, test, trigger, backfill, clear, logs, scheduler.
    #[command(subcommand)]
    Dag(DagCmd),
    /// A client of a running `weft server` (Step Functions API, SigV4-signed with
    /// $WEFT_HOME/credentials): create, start, describe, history, send-success, ...
    Sm(SmArgs),
    /// The server's API audit log (who called what, on which resource, with what result).
    Audit(AuditArgs),
    /// Airflow Variables in weft's secrets store (`{{ var.value.NAME }}`).
    #[command(subcommand)]
    Variables(SecretCmd),
    /// Airflow Connections in weft's secrets store (`{{ conn.NAME.host }}`).
    #[command(subcommand)]
    Connections(SecretCmd),
    /// Print the shell completion script for bash, zsh or fish.
    Completions { shell: clap_complete::Shell },
}

#[derive(Args)]
pub struct ClientArgs {
    /// The server's URL.
    #[arg(long, default_value = "http://127.0.0.1:8470")]
    pub endpoint: String,
    /// Credentials profile in $WEFT_HOME/credentials.
    #[arg(long, default_value = "default")]
    pub profile: String,
}

#[derive(Args)]
pub struct SmArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(subcommand)]
    pub cmd: SmCmd,
}

#[derive(Subcommand)]
pub enum SmCmd {
    /// Create (or update, with --update) a state machine from an ASL file.
    Create {
        name: String,
        file: PathBuf,
        /// Execution role (`weft:role:NAME` or an IAM role ARN whose NAME has a role file).
        #[arg(long)]
        role: Option<String>,
        /// STANDARD or EXPRESS.
        #[arg(long, default_value = "STANDARD")]
        r#type: String,
        /// Update the existing state machine instead.
        #[arg(long)]
        update: bool,
        /// Also publish a version.
        #[arg(long)]
        publish: bool,
    },
    /// List state machines.
    List,
    /// Start an execution (NAME, ARN, version ARN or alias ARN); prints its ARN, or with
    /// --wait its final description.
    Start {
        state_machine: String,
        #[arg(long, default_value = "{}")]
        input: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        wait: bool,
    },
    /// Describe an execution.
    Describe { execution_arn: String },
    /// List the executions of a state machine.
    Executions {
        state_machine: String,
        #[arg(long)]
        status: Option<String>,
    },
    /// Print an execution's history events.
    History { execution_arn: String },
    /// Stop an execution.
    Stop {
        execution_arn: String,
        #[arg(long)]
        error: Option<String>,
        #[arg(long)]
        cause: Option<String>,
    },
    /// Redrive a failed execution.
    Redrive { execution_arn: String },
    /// Answer a waiting task token with success.
    SendSuccess {
        token: String,
        #[arg(long, default_value = "{}")]
        output: String,
    },
    /// Show a state machine's own resource map, or set it from a YAML/JSON file (checked
    /// here first), or delete it.
    ResourceMap {
        state_machine: String,
        /// The map file to set.
        #[arg(long, conflicts_with = "delete")]
        set: Option<PathBuf>,
        /// Remove the state machine's own map.
        #[arg(long)]
        delete: bool,
    },
    /// Answer a waiting task token with failure.
    SendFailure {
        token: String,
        #[arg(long)]
        error: Option<String>,
        #[arg(long)]
        cause: Option<String>,
    },
}

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// How many records (newest last).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Only records whose principal, action, resource or outcome contains this.
    #[arg(long)]
    pub filter: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum SecretCmd {
    /// Set NAME to VALUE (a connection is a JSON object or a URI like postgres://u:p@host:5432/db).
    Set { name: String, value: String },
    /// Print a value.
    Get { name: String },
    /// List names (never values).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete NAME.
    Delete { name: String },
}

/// Options shared by the commands that run the scheduler.
#[derive(Args, Clone)]
pub struct SchedArgs {
    /// DAG folder (default $WEFT_DAGS, else $WEFT_HOME/dags).
    #[arg(long)]
    pub dags: Option<PathBuf>,
    /// Workers kept alive when idle.
    #[arg(long, default_value_t = 1)]
    pub min_workers: usize,
    /// Most workers at once (default: 2 per CPU, at least 4).
    #[arg(long)]
    pub max_workers: Option<usize>,
    /// Most task instances queued or running at once.
    #[arg(long, default_value_t = 32)]
    pub parallelism: usize,
}

#[derive(Subcommand)]
pub enum DagCmd {
    /// List the DAGs in the DAG folder (and report files that do not load).
    List {
        /// DAG folder (default $WEFT_DAGS, else $WEFT_HOME/dags).
        #[arg(long)]
        dags: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Run one DAG run in-process and report every task instance.
    Test {
        dag_id: String,
        /// Logical date (YYYY-MM-DD or RFC 3339); default now.
        date: Option<String>,
        /// Print the run as JSON.
        #[arg(long)]
        json: bool,
        /// DAG folder (default $WEFT_DAGS, else $WEFT_HOME/dags).
        #[arg(long)]
        dags: Option<PathBuf>,
        /// Really wait out retry delays (default: retry at once, as a test run).
        #[arg(long)]
        wait_retries: bool,
    },
    /// Install the DAG folder's requirements.txt (pure-Python wheels from the wheelhouse, else
    /// from the package index) for its Python DAG files, and pin them in requirements.lock.json.
    Deps {
        /// DAG folder (default $WEFT_DAGS, else $WEFT_HOME/dags); requirements.txt is in it or
        /// beside it.
        #[arg(long)]
        dags: Option<PathBuf>,
        /// A folder of wheels to install from (repeatable; also $WEFT_WHEELHOUSE and the
        /// `wheelhouse/` folder beside requirements.txt).
        #[arg(long)]
        wheelhouse: Vec<PathBuf>,
        /// Never reach the package index (only wheelhouse folders and the download cache).
        #[arg(long)]
        offline: bool,
        /// Print what was installed as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a DAG file or a whole DAG folder: cycles, unknown upstreams, bad cron, unknown
    /// operators (file:line); files that are not DAG files are skipped with a note.
    Validate {
        file: PathBuf,
        /// Print the DAGs, warnings, skipped files and errors as JSON (exit code unchanged).
        #[arg(long)]
        json: bool,
    },
    /// Create a run and execute it to completion with the persistent scheduler.
    Trigger {
        dag_id: String,
        /// Run conf JSON (overrides params, as `dag_run.conf`), or @FILE.
        #[arg(long)]
        conf: Option<String>,
        /// Logical date (YYYY-MM-DD or RFC 3339); default now.
        #[arg(long)]
        date: Option<String>,
        /// Print the run as JSON (the `dag test --json` shape).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sched: SchedArgs,
    },
    /// Run every data interval whose logical date is in [--from, --to].
    Backfill {
        dag_id: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sched: SchedArgs,
    },
    /// Reset a task instance and everything downstream, then run them again.
    Clear {
        dag_id: String,
        task: String,
        /// Run id (default: the DAG's latest run).
        #[arg(long)]
        run: Option<String>,
        /// Clear only this task, not its downstream.
        #[arg(long)]
        no_downstream: bool,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        sched: SchedArgs,
    },
    /// Print a task's logs, per try.
    Logs {
        dag_id: String,
        task: String,
        /// Run id (default: the DAG's latest run).
        #[arg(long)]
        run: Option<String>,
        /// Only this try.
        #[arg(long = "try")]
        try_number: Option<u32>,
        /// Only this map index.
        #[arg(long)]
        map_index: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// Pause a DAG: its timetable and file trigger create no runs, its queued runs wait and
    /// its running runs start no new task (in `weft server` and `weft dag scheduler`).
    Pause { dag_id: String },
    /// Unpause a DAG: its timetable and file trigger create runs again.
    Unpause { dag_id: String },
    /// Delete a DAG's records (runs, task instances, logs, SLA misses, paused flag) as
    /// `airflow dags delete` does; the DAG file stays. Refused while a run is queued or running.
    Delete {
        dag_id: String,
        /// Do not ask for confirmation.
        #[arg(short = 'y', long)]
        yes: bool,
    },
    /// Print a run's state (and its conf when it has one), as `airflow dags state` does.
    State {
        dag_id: String,
        /// Run id, or the run's logical date (YYYY-MM-DD or RFC 3339).
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Print the state of every task instance of a run, as `airflow tasks
    /// states-for-dag-run` does.
    TasksState {
        dag_id: String,
        /// Run id, or the run's logical date (YYYY-MM-DD or RFC 3339).
        run: String,
        #[arg(long)]
        json: bool,
    },
    /// Mark a task instance (with --upstream, --downstream, --past, --future) or, without a
    /// task, a whole run success or failed, as the Airflow UI's "Mark success / Mark failed".
    Mark(MarkArgs),
    /// List a DAG's runs (logical-date order) with their task states.
    Runs {
        dag_id: String,
        #[arg(long)]
        json: bool,
    },
    /// The scheduler loop: creates runs per data interval and file triggers, runs them;
    /// Ctrl-C stops it (running tries finish first).
    Scheduler {
        #[command(flatten)]
        sched: SchedArgs,
        /// Return when nothing is running, queued or due.
        #[arg(long)]
        exit_when_idle: bool,
        /// Whether DAGs never paused or unpaused start paused (Airflow's
        /// dags_are_paused_at_creation; default true, or $WEFT_DAGS_ARE_PAUSED_AT_CREATION).
        #[arg(long, value_name = "BOOL")]
        dags_paused_at_creation: Option<bool>,
    },
}

#[derive(Subcommand)]
pub enum PluginCmd {
    /// Pack every *.wasm in DIR (with NAME.plugin.json sidecars) into a bundle.
    Pack {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Install a bundle (.zip) or a component (.wasm).
    Install {
        path: PathBuf,
        /// Replace an installed NAME@VERSION whose digest differs.
        #[arg(long)]
        force: bool,
    },
    /// List installed plugins.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show a plugin's world, exports, imports, digest and requested grant.
    Inspect { name: String },
    /// Re-hash every installed plugin and check it is still a weft operator.
    Verify,
    /// Build the operator in DIR (Rust, Python or JavaScript) into a component.
    Build {
        dir: PathBuf,
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Scaffold a working operator with a test: --lang rust|python|js NAME.
    New {
        #[arg(long)]
        lang: String,
        name: String,
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Args)]
pub struct InvokeArgs {
    /// NAME, NAME@VERSION or NAME#DIGEST.
    pub plugin: String,
    /// Input JSON, or @FILE.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Context JSON passed to the operator (task name, params...), or @FILE.
    #[arg(long)]
    pub ctx: Option<String>,
    /// IAM-shaped grant policy file (default: no capabilities).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Fuel units.
    #[arg(long)]
    pub fuel: Option<u64>,
    /// Deadline, e.g. 500ms, 5s, 2m.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Memory cap, e.g. 64MiB.
    #[arg(long)]
    pub memory: Option<String>,
    /// Print the task log, captured stdio and audit records to stderr.
    #[arg(long)]
    pub logs: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    /// What to measure: invoke (warm/cold plugin invocation, store put/get), chain (a 100-task
    /// plugin chain through the ASL interpreter), standard (durable transitions: --iterations
    /// executions of 10 plugin tasks), idle (--iterations executions parked in a Wait: memory,
    /// then restart time), summary (the state machines' landing page over --iterations
    /// executions) or dag (the scheduler: 10,000-task wide and deep DAGs, dispatch
    /// latency, 3-year daily catchup; every task runs `--plugin` in the sandbox, `--plugin none`
    /// runs no-ops in-process) or traces (the cost per state of recording spans: a Pass chain
    /// and a `--plugin` task chain, traced and untraced; with `--otlp-endpoint` through the
    /// real exporter), http (the built-in HTTP Task against a loopback server, beside a bare
    /// exchange and the sandbox's granted request) or remote (`--iterations` one-task
    /// executions on the node, then on 1 and 2 `weft worker` processes over loopback: tasks/s,
    /// round trip, node CPU per task) or python (Python DAG files: the parser component's
    /// first compile, uncached and cached parses of a 100-task file, a `@task` try; needs
    /// `weft-airflow-py` installed; `--iterations` is capped at 1000).
    #[arg(default_value = "invoke")]
    pub what: String,
    /// Plugin to invoke.
    #[arg(long, default_value = "echo")]
    pub plugin: String,
    /// Invocations per measurement.
    #[arg(long, default_value_t = 20_000)]
    pub iterations: u32,
    /// Worker threads for the throughput measurement.
    #[arg(long, default_value_t = 2)]
    pub threads: u32,
    /// `bench dag`: do not flush sled after each scheduler pass (shows the commit's share).
    #[arg(long)]
    pub no_flush: bool,
    /// `bench dag` and `bench standard`: keep the scheduler's (or the executions') state in
    /// this PostgreSQL database (`postgres://USER@HOST:PORT/DB`, also `WEFT_DB`) instead of a
    /// fresh sled store.
    #[arg(long)]
    pub db: Option<String>,
    /// `bench standard --db`: this many nodes (one process, each its own connections and
    /// lease) share the database; executions are started round-robin through them.
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RunArgs {
    /// The ASL definition (JSON).
    pub file: PathBuf,
    /// Execution input JSON, or @FILE.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Print the execution history (Step Functions events) as JSON on stderr.
    #[arg(long)]
    pub history: bool,
    /// Print each task's log, captured stdio and audit records on stderr.
    #[arg(long)]
    pub logs: bool,
    /// Execution role: NAME of roles/NAME.json ($WEFT_HOME/roles or beside the definition).
    #[arg(long)]
    pub role: Option<String>,
    /// Execution name ($$.Execution.Name).
    #[arg(long)]
    pub name: Option<String>,
    /// A mock configuration in Step Functions Local's format (needs --test-case).
    #[arg(long, value_name = "MOCKS.json", requires = "test_case")]
    pub mock_config: Option<PathBuf>,
    /// The test case of --mock-config whose Task states answer from their mocked responses.
    #[arg(long, value_name = "NAME", requires = "mock_config")]
    pub test_case: Option<String>,
    /// The mock configuration's state machine entry (default: the file's stem, else its only
    /// entry); also the run's $$.StateMachine.Name.
    #[arg(long, value_name = "NAME")]
    pub state_machine_name: Option<String>,
    /// Wait states and retry back-offs take no wall time; the clock (history timestamps,
    /// $$.State.EnteredTime, TimeoutSeconds) advances by what they would have waited.
    #[arg(long)]
    pub fast_forward: bool,
    /// The state machine's type: STANDARD, or EXPRESS (`$$.Execution.Id` is then
    /// `arn:aws:states:REGION:ACCOUNT:express:MACHINE:NAME:UUID`, as Step Functions makes it).
    #[arg(long = "type", value_name = "STANDARD|EXPRESS", default_value = "STANDARD", value_parser = ["STANDARD", "EXPRESS"], ignore_case = true)]
    pub machine_type: String,
}

#[derive(Args)]
pub struct ValidateArgs {
    /// An ASL definition (.json), a DAG file (.yaml) or a DAG folder.
    pub file: PathBuf,
    /// Report AWS service integrations no resource map serves as warnings instead of errors
    /// (for definitions run with `--mock-config`).
    #[arg(long)]
    pub allow_unmapped: bool,
    /// For DAG files and folders: print the DAGs, their warnings (fields accepted and not acted
    /// on, with their line), skipped files and errors as one JSON document (exit code unchanged).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ServerArgs {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: String,
    /// Accept requests without a token (only allowed on a loopback address).
    #[arg(long)]
    pub no_auth: bool,
    /// A mock configuration in Step Functions Local's format: StartExecution on
    /// STATE_MACHINE_ARN#TestCase runs with that test case's mocks (also $SFN_MOCK_CONFIG).
    #[arg(long, value_name = "MOCKS.json")]
    pub mock_config: Option<PathBuf>,
    /// Run no plugin task of a Standard execution on this node: every one waits on its queue
    /// for a `weft worker`.
    #[arg(long)]
    pub no_local_tasks: bool,
    /// Whether DAGs never paused or unpaused start paused (Airflow's
    /// dags_are_paused_at_creation; default true, or $WEFT_DAGS_ARE_PAUSED_AT_CREATION).
    #[arg(long, value_name = "BOOL")]
    pub dags_paused_at_creation: Option<bool>,
    /// Keep the Step Functions state and the DAG scheduler's in this PostgreSQL database
    /// (`postgres://USER@HOST:PORT/DB`, also `WEFT_DB`; weft creates and migrates its schema)
    /// instead of the sled store of $WEFT_HOME.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

#[derive(Args)]
pub struct WorkerArgs {
    /// The node to take tasks from: http://HOST:PORT or https://HOST[:PORT] (repeatable: one
    /// per node of a cluster).
    #[arg(long, value_name = "URL", required = true)]
    pub server: Vec<String>,
    /// PEM file of the certificate authorities an https:// node's certificate must chain to,
    /// instead of the public (Mozilla) roots; also `AWS_CA_BUNDLE`.
    #[arg(long, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
    /// A queue to take tasks from (repeatable; default `default`).
    #[arg(long, value_name = "NAME")]
    pub queue: Vec<String>,
    /// Concurrent sandboxes kept ready however short the queue (default 1).
    #[arg(long, value_name = "N")]
    pub min_slots: Option<u32>,
    /// Concurrent sandboxes at most, reached while tasks wait on the queue (default: cores).
    #[arg(long, value_name = "N")]
    pub max_slots: Option<u32>,
    /// The credentials profile requests are signed with (AWS_SHARED_CREDENTIALS_FILE, else
    /// $WEFT_HOME/credentials).
    #[arg(long, default_value = "default")]
    pub profile: String,
    /// This worker's id (default: generated); task logs name it with the host.
    #[arg(long)]
    pub id: Option<String>,
}

/// What `weft dag mark` marks, and how far.
#[derive(Debug, clap::Args)]
pub struct MarkArgs {
    pub dag_id: String,
    /// Run id, or the run's logical date (YYYY-MM-DD or RFC 3339).
    pub run: String,
    /// The task to mark (default: the whole run).
    pub task: Option<String>,
    /// success, failed (or, for a task instance, skipped).
    #[arg(long)]
    pub state: String,
    /// Only this map index of a mapped task.
    #[arg(long)]
    pub map_index: Option<i64>,
    /// Also the task's upstream tasks.
    #[arg(long)]
    pub upstream: bool,
    /// Also the task's downstream tasks.
    #[arg(long)]
    pub downstream: bool,
    /// Also the task in the DAG's earlier runs.
    #[arg(long)]
    pub past: bool,
    /// Also the task in the DAG's later runs.
    #[arg(long)]
    pub future: bool,
    /// Only print what would change.
    #[arg(long)]
    pub dry_run: bool,
    /// DAG folder (default $WEFT_DAGS, else $WEFT_HOME/dags).
    #[arg(long)]
    pub dags: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}
