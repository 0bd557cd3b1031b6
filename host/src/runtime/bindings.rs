//! The host side of the WIT contract: generated bindings, and the state each
//! plugin store carries (an empty WASI context, a resource table, memory limits).

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

wasmtime::component::bindgen!({
    world: "plugin",
    path: "../wit",
});

pub use self::klar::consent::types;

/// The contract version this host speaks. A plugin must export
/// `klar:consent/process@` this version.
pub const CONTRACT_VERSION: &str = "0.6.0";
pub const PROCESS_INTERFACE: &str = "klar:consent/process";

/// Everything a plugin's store holds.
pub struct PluginState {
    /// Empty: no directories, no environment, no arguments, no sockets, no
    /// inherited stdio, a fixed clock. The Rust guest imports WASI interfaces it
    /// never uses; this context satisfies them and grants nothing.
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    /// The plugin's name, for its log lines.
    pub plugin: String,
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for PluginState {}

impl self::klar::consent::log::Host for PluginState {
    fn log(&mut self, level: self::klar::consent::log::Level, message: String) {
        use self::klar::consent::log::Level;
        let plugin = self.plugin.as_str();
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}
