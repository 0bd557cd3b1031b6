//! The plugin runtime: one wasmtime [`Engine`] per process, plugins compiled once
//! and cached on disk, one long-lived store per (plugin, policy).
//!
//! Plugins are untrusted. Each store has a memory cap and every call an epoch
//! deadline; a trap poisons only that store, which is dropped and rebuilt, and the
//! affected case is reported as needing attention.

mod bindings;
mod cache;
#[allow(dead_code)] // The component's direction of each conversion.
mod convert;
mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker, types::ComponentItem};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};
use wasmtime_wasi::WasiCtxBuilder;

use crate::plugin::PluginInfo;
pub use bindings::{CONTRACT_VERSION, PROCESS_INTERFACE};
use bindings::{PluginPre, PluginState};
pub use session::{OpenError, Session, StepFailure};

include!(concat!(env!("OUT_DIR"), "/gen.rs"));

/// How often the epoch advances; call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Limits and places for a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled plugins are kept between runs; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The most linear memory one plugin store may use, in bytes.
    pub memory_limit: usize,
    /// How long one call into a plugin may run.
    pub call_deadline: Duration,
    /// Extra time a batch call gets for each case in it.
    pub per_case_deadline: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: default_cache_dir(),
            memory_limit: 128 << 20,
            call_deadline: Duration::from_secs(2),
            per_case_deadline: Duration::from_micros(200),
        }
    }
}

/// `KLAR_CACHE_DIR`, else `$XDG_CACHE_HOME/klar`, else `~/.cache/klar`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("KLAR_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("klar")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("klar")))
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("failed to set up the wasmtime engine")]
    Engine(#[source] wasmtime::Error),
    #[error("failed to read plugin {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{label} is not a WebAssembly component")]
    NotAComponent {
        label: String,
        #[source]
        source: wasmtime::Error,
    },
    #[error(
        "{label} is not a klar plugin: it does not export `{PROCESS_INTERFACE}@{CONTRACT_VERSION}`"
    )]
    NotAPlugin { label: String },
    #[error(
        "{label} was built for contract klar:consent@{found}, but this klar supports klar:consent@{CONTRACT_VERSION}; rebuild the plugin against this klar's wit/"
    )]
    Incompatible { label: String, found: String },
    #[error("failed to link {label} against the host")]
    Link {
        label: String,
        #[source]
        source: wasmtime::Error,
    },
    #[error("failed to start {label}")]
    Start {
        label: String,
        #[source]
        source: wasmtime::Error,
    },
}

/// The process-wide plugin runtime.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PluginState>,
    config: RuntimeConfig,
}

/// Where a loaded plugin's machine code came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Compiled now (and written to the cache, if there is one).
    Compiled,
    /// Read from the cache: no compilation.
    Cache(PathBuf),
}

/// A plugin ready to instantiate: compiled, linked and checked.
pub struct LoadedPlugin {
    engine: Engine,
    pre: PluginPre<PluginState>,
    config: RuntimeConfig,
    info: PluginInfo,
    sha256: String,
    origin: Origin,
    label: String,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let mut wasm_config = Config::new();
        // Epochs, not fuel: measured +10% per call against +31% for fuel. rhai's
        // own operation limit catches runaway policies with a line and column;
        // the epoch deadline catches a plugin that loops outside rhai.
        wasm_config.epoch_interruption(true);
        wasm_config.wasm_component_model(true);
        let engine = Engine::new(&wasm_config).map_err(RuntimeError::Engine)?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(RuntimeError::Engine)?;
        bindings::Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)
            .map_err(RuntimeError::Engine)?;
        Ok(Runtime {
            engine,
            linker,
            config,
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Loads the standard plugin built into `klar`.
    pub fn load_default(&self) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        self.load(PLUGIN_COMPONENT, "the built-in plugin")
    }

    pub fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        let wasm = std::fs::read(path).map_err(|source| RuntimeError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(&wasm, &path.display().to_string())
    }

    /// Compiles a plugin, or reads its compiled form from the cache, then checks
    /// its contract version and links it.
    pub fn load(&self, wasm: &[u8], label: &str) -> Result<Arc<LoadedPlugin>, RuntimeError> {
        let label = label.to_owned();
        let sha256 = crate::sha256_hex(wasm);
        let cached = self
            .config
            .cache_dir
            .as_deref()
            .and_then(|dir| cache::load(&self.engine, dir, &sha256));
        let (component, origin) = match cached {
            Some((component, path)) => (component, Origin::Cache(path)),
            None => {
                let component = Component::from_binary(&self.engine, wasm).map_err(|source| {
                    RuntimeError::NotAComponent {
                        label: label.clone(),
                        source,
                    }
                })?;
                if let Some(dir) = &self.config.cache_dir {
                    cache::store(&self.engine, dir, &sha256, &component);
                }
                (component, Origin::Compiled)
            }
        };
        check_contract(&self.engine, &component, &label)?;
        let instance_pre =
            self.linker
                .instantiate_pre(&component)
                .map_err(|source| RuntimeError::Link {
                    label: label.clone(),
                    source,
                })?;
        let pre = PluginPre::new(instance_pre).map_err(|source| RuntimeError::Link {
            label: label.clone(),
            source,
        })?;
        let mut plugin = LoadedPlugin {
            engine: self.engine.clone(),
            pre,
            config: self.config.clone(),
            info: PluginInfo {
                name: String::new(),
                version: String::new(),
                hooks: Vec::new(),
            },
            sha256,
            origin,
            label,
        };
        plugin.info = plugin.describe()?;
        tracing::debug!(
            plugin = %plugin.info.name,
            version = %plugin.info.version,
            origin = ?plugin.origin,
            "loaded plugin"
        );
        Ok(Arc::new(plugin))
    }
}

impl LoadedPlugin {
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// The SHA-256 of the plugin's `.wasm` bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// Compiles a policy inside a fresh store of this plugin.
    pub fn open(self: &Arc<Self>, name: &str, source: &str) -> Result<Session, OpenError> {
        Session::open(Arc::clone(self), name, source)
    }

    /// A fresh store with the sandbox's limits and an empty WASI context.
    fn new_store(&self) -> Store<PluginState> {
        let wasi = WasiCtxBuilder::new()
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .insecure_random_seed(0)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.config.memory_limit)
            .trap_on_grow_failure(true)
            .instances(16)
            .memories(4)
            .tables(16)
            .build();
        let mut store = Store::new(
            &self.engine,
            PluginState {
                wasi,
                table: Default::default(),
                limits,
                plugin: self.info.name.clone(),
            },
        );
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store
    }

    fn set_deadline(&self, store: &mut Store<PluginState>, cases: usize) {
        let budget = self.config.call_deadline
            + self.config.per_case_deadline * u32::try_from(cases).unwrap_or(u32::MAX);
        let ticks = budget.as_micros() / EPOCH_TICK.as_micros();
        store.set_epoch_deadline(u64::try_from(ticks).unwrap_or(u64::MAX).max(1));
    }

    fn describe(&self) -> Result<PluginInfo, RuntimeError> {
        let start = |source| RuntimeError::Start {
            label: self.label.clone(),
            source,
        };
        let mut store = self.new_store();
        self.set_deadline(&mut store, 0);
        let bindings = self.pre.instantiate(&mut store).map_err(start)?;
        let info = bindings
            .klar_consent_process()
            .call_describe(&mut store)
            .map_err(start)?;
        Ok(PluginInfo {
            name: info.name,
            version: info.version,
            hooks: info.hooks,
        })
    }
}

/// Finds the plugin's `klar:consent/process@VERSION` export and checks VERSION.
fn check_contract(engine: &Engine, component: &Component, label: &str) -> Result<(), RuntimeError> {
    let ty = component.component_type();
    let mut found = None;
    for (name, item) in ty.exports(engine) {
        let Some(version) = name
            .strip_prefix(PROCESS_INTERFACE)
            .and_then(|rest| rest.strip_prefix('@'))
        else {
            continue;
        };
        if version == CONTRACT_VERSION && matches!(item.ty, ComponentItem::ComponentInstance(_)) {
            return Ok(());
        }
        found = Some(version.to_owned());
    }
    Err(match found {
        Some(found) => RuntimeError::Incompatible {
            label: label.to_owned(),
            found,
        },
        None => RuntimeError::NotAPlugin {
            label: label.to_owned(),
        },
    })
}

/// Advances the engine's epoch until the engine is gone. It holds only a weak
/// reference, so it never keeps an engine alive.
fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("klar-epoch".to_owned())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(err) = spawned {
        // Without the ticker no deadline ever passes; say so loudly.
        tracing::error!("failed to start the epoch ticker, plugin deadlines are off: {err}");
    }
}

/// A clock that always reads zero: plugins get time only as an argument.
struct FixedClock;

impl wasmtime_wasi::HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl wasmtime_wasi::HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}
