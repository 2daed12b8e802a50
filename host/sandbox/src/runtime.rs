//! The sandbox runtime: one wasmtime `Engine` per process (pooling allocator, fuel, epoch
//! interruption), the component cache keyed by blake3 digest holding ready `InstancePre`s, and
//! invocation: a fresh `Store` per call with the grant's preopens, limits and captured stdio,
//! whose every failure is mapped to a named error ASL and Airflow can act on.

use crate::bindings::{sensor, task};
use crate::capture::CappedPipe;
use crate::error::SandboxError;
use crate::grant::{AuditRecord, Grant};
use crate::host::{HostState, LogLine, SecretSource};
use crate::limits::{Limiter, Limits};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// How often the epoch advances; deadlines are rounded up to this.
const EPOCH_TICK: Duration = Duration::from_millis(1);

/// The world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    Task,
    Sensor,
}

impl World {
    pub fn as_str(self) -> &'static str {
        match self {
            World::Task => "task",
            World::Sensor => "sensor",
        }
    }
}

/// A compiled-artifact cache (the store's precompiled tree in production).
pub trait ArtifactCache: Send + Sync {
    /// A previously saved artifact, already verified against its own digest.
    fn load(&self, digest: &blake3::Hash, fingerprint: &str) -> Option<Vec<u8>>;
    fn save(&self, digest: &blake3::Hash, fingerprint: &str, artifact: &[u8]);
}

/// A failure a task reports or the sandbox imposes: ASL's Error/Cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// Everything an invocation produced besides its result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The output JSON text, or the task error.
    pub result: Result<String, TaskError>,
    pub logs: Vec<LogLine>,
    pub stdout: String,
    pub stderr: String,
    pub audit: Vec<AuditRecord>,
    pub fuel_used: u64,
    /// The largest linear memory the guest had, in bytes.
    pub peak_memory_bytes: u64,
    pub duration: Duration,
}

/// A component ready to instantiate.
pub struct LoadedComponent {
    pub name: String,
    pub digest: blake3::Hash,
    pub world: World,
    task: Option<task::TaskPre<HostState>>,
    sensor: Option<sensor::SensorTaskPre<HostState>>,
    /// Whether this load compiled the component (false: memory or artifact cache hit).
    pub compiled: bool,
    /// Which engine it was compiled for (see [`Sandbox`]).
    flavor: Flavor,
}

/// Settings of the process-wide engine.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Concurrent instances the pooling allocator reserves.
    pub pool_instances: u32,
    /// Upper bound for any invocation's memory cap.
    pub max_memory_bytes: usize,
    pub pooling: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            pool_instances: 128,
            max_memory_bytes: 1 << 30,
            pooling: true,
        }
    }
}

/// Input of one invocation.
pub struct Invocation<'a> {
    pub input: &'a str,
    pub ctx: &'a str,
    pub grant: Arc<Grant>,
    pub limits: Limits,
    pub secrets: Arc<dyn SecretSource>,
    pub heartbeat: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Polled every few milliseconds while the guest runs: `true` interrupts it with
    /// `Sandbox.Cancelled` (StopExecution, shutdown).
    pub cancel: Option<Arc<dyn Fn() -> bool + Send + Sync>>,
}

/// How often (in epoch ticks) a cancellable invocation polls its cancel switch.
const CANCEL_POLL_TICKS: u64 = 10;

/// The error a cancelled guest is stopped with.
#[derive(Debug)]
struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the invocation was cancelled")
    }
}

impl std::error::Error for Cancelled {}

struct EpochTicker {
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Components up to this size get the engine that copies their initial memory (see
/// [`Sandbox`]); larger ones map it copy-on-write.
pub const COPY_INIT_MAX_BYTES: usize = 1 << 20;

/// How much of a copy-initialised memory is kept resident (and reset in place) when its slot is
/// freed.
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// How an engine initialises linear memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Copy-on-write mapping of the module's memory image: instantiation touches only the pages
    /// the guest writes, which suits big images (Python and JavaScript interpreters).
    Cow,
    /// Data segments copied into fresh memory: no copy-on-write faults, so no TLB shootdowns
    /// across threads on every instantiation; best for small images (Rust guests).
    Copy,
}

/// One engine and what is tied to it.
struct EngineSet {
    engine: Engine,
    linker: Linker<HostState>,
    fingerprint: String,
}

/// The process's wasm sandbox. It keeps two engines with the same limits: components of at
/// most [`COPY_INIT_MAX_BYTES`] run on one that copies their initial memory, bigger ones on
/// one that maps it copy-on-write (each component always lands on the same one, by size).
pub struct Sandbox {
    cow: EngineSet,
    copy: EngineSet,
    cache: Mutex<HashMap<[u8; 32], Arc<LoadedComponent>>>,
    max_memory_bytes: usize,
    /// Invocations in flight, capped at the pool's instance slots: callers beyond it wait for
    /// a slot (back-pressure) instead of failing with the allocator's limit.
    slots: Slots,
    _ticker: EpochTicker,
}

/// A counting semaphore over the pooling allocator's instance slots.
struct Slots {
    free: Mutex<usize>,
    cv: std::sync::Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn acquire(&self) -> SlotGuard<'_> {
        let mut f = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *f == 0 {
            f = self.cv.wait(f).unwrap_or_else(|e| e.into_inner());
        }
        *f -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.cv.notify_one();
    }
}

impl Sandbox {
    pub fn new(cfg: &SandboxConfig) -> Result<Self, SandboxError> {
        let cow = Self::engine_set(cfg, true)?;
        let copy = Self::engine_set(cfg, false)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = [cow.engine.weak(), copy.engine.weak()];
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("weft-epoch".into())
            .spawn(move || {
                while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    for w in &weak {
                        match w.upgrade() {
                            Some(e) => e.increment_epoch(),
                            None => return,
                        }
                    }
                }
            })
            .map_err(|e| SandboxError::Engine(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            cow,
            copy,
            cache: Mutex::new(HashMap::new()),
            max_memory_bytes: cfg.max_memory_bytes,
            slots: Slots {
                free: Mutex::new(cfg.pool_instances.max(1) as usize),
                cv: std::sync::Condvar::new(),
            },
            _ticker: EpochTicker { stop },
        })
    }

    fn engine_set(cfg: &SandboxConfig, cow: bool) -> Result<EngineSet, SandboxError> {
        let engine = match Self::build_engine(cfg, cfg.pooling, cow) {
            Ok(e) => e,
            Err(e) if cfg.pooling => {
                tracing::warn!("pooling allocator unavailable ({e}); using on-demand allocation");
                Self::build_engine(cfg, false, cow)?
            }
            Err(e) => return Err(e),
        };
        let mut linker: Linker<HostState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        crate::symlinks::guard_symlink_at(&mut linker)
            .map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        task::weft::operator::host::add_to_linker::<
            HostState,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |s| s)
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
        task::weft::operator::http::add_to_linker::<
            HostState,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |s| s)
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
        task::weft::operator::types::add_to_linker::<
            HostState,
            wasmtime::component::HasSelf<HostState>,
        >(&mut linker, |s| s)
        .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let fingerprint = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut h);
            cow.hash(&mut h);
            format!("wasmtime-{}-{:016x}", env!("CARGO_PKG_VERSION"), h.finish())
        };
        Ok(EngineSet {
            engine,
            linker,
            fingerprint,
        })
    }

    fn build_engine(cfg: &SandboxConfig, pooling: bool, cow: bool) -> Result<Engine, SandboxError> {
        let mut c = Config::new();
        c.wasm_component_model(true);
        c.memory_init_cow(cow);
        c.consume_fuel(true);
        c.epoch_interruption(true);
        c.max_wasm_stack(1 << 20);
        if pooling {
            let mut p = PoolingAllocationConfig::default();
            p.total_component_instances(cfg.pool_instances);
            p.total_core_instances(cfg.pool_instances * 8);
            p.total_memories(cfg.pool_instances * 4);
            p.total_tables(cfg.pool_instances * 8);
            p.max_memory_size(cfg.max_memory_bytes);
            p.max_component_instance_size(1 << 20);
            p.max_core_instance_size(1 << 20);
            p.max_memories_per_component(16);
            p.max_tables_per_component(64);
            p.max_core_instances_per_component(64);
            // Batch the madvise calls that reset slots: the mm-wide lock they take serialises
            // concurrent invocations, and each one costs a TLB shootdown on every core (64:
            // 2-thread warm invokes 76k -> 94k/s).
            p.decommit_batch_size(64);
            if !cow {
                // Small copy-initialised memories stay resident between instances: the
                // PAGEMAP_SCAN ioctl finds the pages a guest touched and only those are reset
                // (no madvise, no page faults on the next instantiation).
                p.linear_memory_keep_resident(KEEP_RESIDENT_BYTES);
                p.table_keep_resident(64 * 1024);
                p.pagemap_scan(wasmtime::Enabled::Auto);
            }
            c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
        }
        Engine::new(&c).map_err(|e| SandboxError::Engine(format!("{e:#}")))
    }

    fn set(&self, f: Flavor) -> &EngineSet {
        match f {
            Flavor::Cow => &self.cow,
            Flavor::Copy => &self.copy,
        }
    }

    fn flavor_for(bytes: usize) -> Flavor {
        if bytes <= COPY_INIT_MAX_BYTES {
            Flavor::Copy
        } else {
            Flavor::Cow
        }
    }

    /// The key under which precompiled artifacts of `c`'s engine are cached.
    pub fn fingerprint_of(&self, c: &LoadedComponent) -> &str {
        &self.set(c.flavor).fingerprint
    }

    /// The engine a component of `bytes` bytes is compiled for.
    pub fn engine_for(&self, bytes: usize) -> &Engine {
        &self.set(Self::flavor_for(bytes)).engine
    }

    /// Returns the ready component for `digest`, from memory, the artifact cache, or by compiling
    /// `bytes()` (and saving the artifact). `bytes` must be the verified content of `digest`.
    pub fn load(
        &self,
        name: &str,
        digest: blake3::Hash,
        bytes: impl FnOnce() -> Result<Vec<u8>, String>,
        cache: Option<&dyn ArtifactCache>,
    ) -> Result<Arc<LoadedComponent>, SandboxError> {
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest.as_bytes())
        {
            return Ok(c.clone());
        }
        let compile_err = |reason: String| SandboxError::Compile {
            plugin: name.to_string(),
            digest: digest.to_hex().to_string(),
            reason,
        };
        let mut compiled = false;
        let mut component = None;
        // an artifact exists for the engine the component was first compiled for
        for flavor in [Flavor::Copy, Flavor::Cow] {
            let set = self.set(flavor);
            let Some(art) = cache.and_then(|c| c.load(&digest, &set.fingerprint)) else {
                continue;
            };
            // SAFETY: the artifact was produced by `precompile_component` of an engine with the
            // same compatibility fingerprint and verified against its blake3 digest by the cache.
            match unsafe { Component::deserialize(&set.engine, &art) } {
                Ok(c) => {
                    component = Some((c, flavor));
                    break;
                }
                Err(e) => {
                    tracing::warn!(plugin = name, "ignoring unusable precompiled artifact: {e}")
                }
            }
        }
        let (component, flavor) = match component {
            Some(c) => c,
            None => {
                let wasm = bytes().map_err(compile_err)?;
                compiled = true;
                let flavor = Self::flavor_for(wasm.len());
                let set = self.set(flavor);
                let art = set
                    .engine
                    .precompile_component(&wasm)
                    .map_err(|e| compile_err(format!("{e:#}")))?;
                if let Some(c) = cache {
                    c.save(&digest, &set.fingerprint, &art);
                }
                // SAFETY: `art` was just produced by this engine.
                let c = unsafe { Component::deserialize(&set.engine, &art) }
                    .map_err(|e| compile_err(format!("{e:#}")))?;
                (c, flavor)
            }
        };
        let loaded = self.prepare(name, digest, &component, compiled, flavor)?;
        let loaded = Arc::new(loaded);
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*digest.as_bytes(), loaded.clone());
        Ok(loaded)
    }

    fn prepare(
        &self,
        name: &str,
        digest: blake3::Hash,
        component: &Component,
        compiled: bool,
        flavor: Flavor,
    ) -> Result<LoadedComponent, SandboxError> {
        let pre = self
            .set(flavor)
            .linker
            .instantiate_pre(component)
            .map_err(|e| SandboxError::Link {
                plugin: name.to_string(),
                digest: digest.to_hex().to_string(),
                reason: format!("{e:#}"),
            })?;
        if let Ok(t) = task::TaskPre::new(pre.clone()) {
            return Ok(LoadedComponent {
                name: name.to_string(),
                digest,
                world: World::Task,
                task: Some(t),
                sensor: None,
                compiled,
                flavor,
            });
        }
        if let Ok(s) = sensor::SensorTaskPre::new(pre) {
            return Ok(LoadedComponent {
                name: name.to_string(),
                digest,
                world: World::Sensor,
                task: None,
                sensor: Some(s),
                compiled,
                flavor,
            });
        }
        Err(SandboxError::NotAnOperator {
            plugin: name.to_string(),
            digest: digest.to_hex().to_string(),
        })
    }

    /// Drops a component from the in-memory cache.
    pub fn evict(&self, digest: &blake3::Hash) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(digest.as_bytes());
    }

    fn store(
        &self,
        c: &LoadedComponent,
        inv: &Invocation<'_>,
    ) -> Result<Store<HostState>, SandboxError> {
        let setup = |reason: String| SandboxError::Setup {
            plugin: c.name.clone(),
            reason,
        };
        let stdout = CappedPipe::new(inv.limits.max_stdio_bytes);
        let stderr = CappedPipe::new(inv.limits.max_stdio_bytes);
        let mut b = WasiCtxBuilder::new();
        b.stdout(stdout.clone()).stderr(stderr.clone());
        for p in inv.grant.preopens() {
            let perms = if p.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            // the directory opened (no symlink followed) when the grant was compiled, not
            // whatever its path names now
            b.preopened_dir(p.open_path(), &p.guest, perms)
                .map_err(|e| {
                    setup(format!(
                        "cannot preopen {} at {}: {e}",
                        p.host.display(),
                        p.guest
                    ))
                })?;
        }
        let mut limits = inv.limits;
        limits.memory_bytes = limits.memory_bytes.min(self.max_memory_bytes);
        let now = Instant::now();
        let state = HostState {
            wasi: b.build(),
            table: wasmtime::component::ResourceTable::new(),
            limiter: Limiter::new(&limits),
            grant: inv.grant.clone(),
            secrets: inv.secrets.clone(),
            heartbeat: inv.heartbeat.clone(),
            logs: Vec::new(),
            logs_dropped: 0,
            audit: inv.grant.audit().to_vec(),
            started: now,
            deadline: now + limits.timeout,
            http_body_cap: limits.max_http_body_bytes,
            stdout,
            stderr,
            plugin: c.name.clone(),
        };
        let mut store = Store::new(&self.set(c.flavor).engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(limits.fuel)
            .map_err(|e| setup(e.to_string()))?;
        let ticks = limits.timeout.as_micros().div_ceil(EPOCH_TICK.as_micros()) as u64 + 1;
        match &inv.cancel {
            None => {
                store.set_epoch_deadline(ticks);
                store.epoch_deadline_trap();
            }
            Some(cancel) => {
                // poll the switch every few ticks; the timeout still ends the guest
                let cancel = cancel.clone();
                let deadline = now + limits.timeout;
                store.set_epoch_deadline(CANCEL_POLL_TICKS.min(ticks));
                store.epoch_deadline_callback(move |_| {
                    if cancel() {
                        return Err(wasmtime::Error::new(Cancelled));
                    }
                    if Instant::now() >= deadline {
                        return Err(wasmtime::Error::from(Trap::Interrupt));
                    }
                    Ok(wasmtime::UpdateDeadline::Continue(CANCEL_POLL_TICKS))
                });
            }
        }
        Ok(store)
    }

    /// Runs a task operator's `run(input, ctx)`.
    pub fn invoke(
        &self,
        c: &LoadedComponent,
        inv: Invocation<'_>,
    ) -> Result<Outcome, SandboxError> {
        let Some(pre) = &c.task else {
            return Err(SandboxError::WrongWorld {
                plugin: c.name.clone(),
                expected: "task",
                actual: c.world.as_str(),
            });
        };
        let _slot = self.slots.acquire();
        let mut store = self.store(c, &inv)?;
        let started = Instant::now();
        let raw = pre.instantiate(&mut store).and_then(|t| {
            t.weft_operator_operator()
                .call_run(&mut store, inv.input, inv.ctx)
        });
        let result = match raw {
            Ok(Ok(out)) => check_output(out, &inv.limits),
            Ok(Err(e)) => Err(TaskError::new(e.error, e.cause)),
            Err(trap) => Err(map_trap(&trap, &store, c, &inv.limits)),
        };
        Ok(finish(store, result, started, &inv.limits))
    }

    /// Runs a sensor's `poke(ctx)`; the result text is `true` or `false`.
    pub fn poke(&self, c: &LoadedComponent, inv: Invocation<'_>) -> Result<Outcome, SandboxError> {
        let Some(pre) = &c.sensor else {
            return Err(SandboxError::WrongWorld {
                plugin: c.name.clone(),
                expected: "sensor",
                actual: c.world.as_str(),
            });
        };
        let _slot = self.slots.acquire();
        let mut store = self.store(c, &inv)?;
        let started = Instant::now();
        let raw = pre
            .instantiate(&mut store)
            .and_then(|s| s.weft_operator_sensor().call_poke(&mut store, inv.ctx));
        let result = match raw {
            Ok(Ok(b)) => Ok(b.to_string()),
            Ok(Err(e)) => Err(TaskError::new(e.error, e.cause)),
            Err(trap) => Err(map_trap(&trap, &store, c, &inv.limits)),
        };
        Ok(finish(store, result, started, &inv.limits))
    }
}

fn check_output(out: String, limits: &Limits) -> Result<String, TaskError> {
    if out.len() > limits.max_output_bytes {
        return Err(TaskError::new(
            "Sandbox.OutputTooLarge",
            format!(
                "the operator returned {} bytes; the limit is {} bytes",
                out.len(),
                limits.max_output_bytes
            ),
        ));
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&out) {
        let shown = crate::host::truncate(&out, 80);
        return Err(TaskError::new(
            "States.TaskFailed",
            format!("the operator's output is not JSON ({e}): {shown}"),
        ));
    }
    Ok(out)
}

fn map_trap(
    err: &wasmtime::Error,
    store: &Store<HostState>,
    c: &LoadedComponent,
    limits: &Limits,
) -> TaskError {
    let who = format!("plugin {} (#{})", c.name, &c.digest.to_hex()[..12]);
    let st = store.data();
    if let Some((current, desired)) = st.limiter.memory_hit {
        return TaskError::new(
            "Sandbox.MemoryLimit",
            format!(
                "{who} tried to grow its memory from {current} to {desired} bytes; the limit is {} bytes",
                limits.memory_bytes
            ),
        );
    }
    if err.downcast_ref::<Cancelled>().is_some() {
        return TaskError::new(
            "Sandbox.Cancelled",
            format!("{who} was interrupted: its execution was stopped"),
        );
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => TaskError::new(
            "Sandbox.FuelExhausted",
            format!("{who} used all {} units of fuel", limits.fuel),
        ),
        Some(Trap::Interrupt) => TaskError::new(
            "States.Timeout",
            format!("{who} did not finish within {:?}", limits.timeout),
        ),
        Some(Trap::StackOverflow) => TaskError::new(
            "Sandbox.StackOverflow",
            format!("{who} exhausted its call stack"),
        ),
        Some(Trap::MemoryOutOfBounds) if shadow_stack_overflow(err) => TaskError::new(
            "Sandbox.StackOverflow",
            format!(
                "{who} overflowed its shadow stack in linear memory (the stack pointer went below address 0){}",
                fault_text(err).map(|t| format!(": {t}")).unwrap_or_default()
            ),
        ),
        other => {
            let (stderr, _) = st.stderr.contents();
            let msg = panic_message(&stderr).unwrap_or_else(|| match other {
                Some(t) => format!("{who} trapped: {t}"),
                None => format!("{who} failed: {err:#}"),
            });
            if st.limiter.table_hit {
                return TaskError::new(
                    "Sandbox.MemoryLimit",
                    format!("{who} exceeded its table limit: {msg}"),
                );
            }
            TaskError::new("States.TaskFailed", msg)
        }
    }
}

/// wasmtime's description of a memory fault (`memory fault at wasm address 0x.. in linear
/// memory of size 0x..`), found in the error's context chain.
fn fault_text(err: &wasmtime::Error) -> Option<String> {
    err.chain()
        .map(|c| c.to_string())
        .find(|t| t.starts_with("memory fault at wasm address "))
}

/// Parses the address and memory size out of [`fault_text`].
fn fault_of(err: &wasmtime::Error) -> Option<(u64, u64)> {
    let t = fault_text(err)?;
    let rest = t.strip_prefix("memory fault at wasm address 0x")?;
    let (addr, rest) = rest.split_once(' ')?;
    let size = rest.strip_prefix("in linear memory of size 0x")?;
    let size = size.split_whitespace().next()?;
    Some((
        u64::from_str_radix(addr, 16).ok()?,
        u64::from_str_radix(size, 16).ok()?,
    ))
}

/// A fault in the upper half of the 32-bit address space, far beyond a memory that is itself
/// below 2 GiB, is a stack pointer that wrapped below 0: the shadow stack (which LLVM places
/// first in linear memory, growing down) overflowed.
/// When wasmtime checked the bounds explicitly there is no fault address; then the backtrace
/// decides: an out-of-bounds access at the bottom of a deep recursion (one function repeated
/// many times) is the same overflow.
fn shadow_stack_overflow(err: &wasmtime::Error) -> bool {
    const HALF: u64 = 1 << 31;
    if let Some((addr, size)) = fault_of(err) {
        return (HALF..(1 << 32) + (1 << 20)).contains(&addr) && size <= HALF;
    }
    let Some(bt) = err.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return false;
    };
    let mut counts: HashMap<(Option<String>, u32), usize> = HashMap::new();
    for f in bt.frames() {
        *counts
            .entry((f.module().name().map(str::to_string), f.func_index()))
            .or_default() += 1;
    }
    counts.values().any(|&n| n >= RECURSION_FRAMES)
}

/// How many frames of one function make a trapping call stack a runaway recursion.
const RECURSION_FRAMES: usize = 16;

/// Extracts a Rust panic message (`thread '..' panicked at FILE:LINE:COL:\nMSG`) from stderr;
/// other guests' last stderr lines are used as-is.
fn panic_message(stderr: &str) -> Option<String> {
    let s = stderr.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(i) = s.rfind("panicked at ") {
        let rest = &s[i + "panicked at ".len()..];
        let msg = rest.split_once('\n').map(|(_, m)| m).unwrap_or(rest);
        let msg = msg
            .lines()
            .take_while(|l| !l.starts_with("note: "))
            .collect::<Vec<_>>()
            .join("\n");
        return Some(crate::host::truncate(msg.trim(), 4096).to_string());
    }
    let tail: Vec<&str> = s.lines().rev().take(5).collect();
    Some(tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
}

fn finish(
    mut store: Store<HostState>,
    result: Result<String, TaskError>,
    started: Instant,
    limits: &Limits,
) -> Outcome {
    let fuel_left = store.get_fuel().unwrap_or(0);
    let duration = started.elapsed();
    let st = store.data_mut();
    let (stdout, dropped_out) = st.stdout.contents();
    let (stderr, dropped_err) = st.stderr.contents();
    let mut logs = std::mem::take(&mut st.logs);
    for (stream, dropped) in [("stdout", dropped_out), ("stderr", dropped_err)] {
        if dropped > 0 {
            logs.push(LogLine {
                level: "warn",
                message: format!(
                    "{stream}: {dropped} bytes dropped past the {} byte cap",
                    limits.max_stdio_bytes
                ),
                at_ms: duration.as_millis() as u64,
            });
        }
    }
    if st.logs_dropped > 0 {
        logs.push(LogLine {
            level: "warn",
            message: format!(
                "{} log lines dropped past the {} line cap",
                st.logs_dropped,
                crate::host::MAX_LOG_LINES
            ),
            at_ms: duration.as_millis() as u64,
        });
    }
    Outcome {
        result,
        logs,
        stdout,
        stderr,
        audit: std::mem::take(&mut st.audit),
        fuel_used: limits.fuel.saturating_sub(fuel_left),
        peak_memory_bytes: st.limiter.peak_memory as u64,
        duration,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_stack_pointer_faults_are_stack_overflows() {
        let fault = |addr: u64, size: u64| {
            wasmtime::Error::from(Trap::MemoryOutOfBounds).context(format!(
                "memory fault at wasm address 0x{addr:x} in linear memory of size 0x{size:x}"
            ))
        };
        assert!(shadow_stack_overflow(&fault(0xffff_c000, 0x11_0000)));
        assert!(shadow_stack_overflow(&fault(0x1_0000_0010, 0x11_0000)));
        assert!(!shadow_stack_overflow(&fault(0x20_0000, 0x11_0000)));
        assert!(!shadow_stack_overflow(&wasmtime::Error::from(
            Trap::MemoryOutOfBounds
        )));
        assert_eq!(
            fault_of(&fault(0xffff_c000, 0x11_0000)),
            Some((0xffff_c000, 0x11_0000))
        );
    }

    #[test]
    fn panic_messages_are_extracted() {
        let s = "thread '<unnamed>' panicked at src/lib.rs:5:5:\nboom: bad row 3\nnote: run with `RUST_BACKTRACE=1`\n";
        assert_eq!(panic_message(s).unwrap(), "boom: bad row 3");
        assert_eq!(panic_message("a\nb\n").unwrap(), "a\nb");
        assert!(panic_message("  ").is_none());
    }
}
