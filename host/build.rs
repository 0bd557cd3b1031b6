//! Builds the standard consent plugin for `wasm32-wasip2` and embeds it in
//! `klar` as the default plugin (see `build/wasm.rs`).

#[path = "build/wasm.rs"]
mod wasm;

use std::path::PathBuf;

fn main() {
    let plugin = wasm::build_component("klar-plugin");
    // The misbehaving plugin of the sandbox tests (tests/rogue-plugin). It is
    // small and shares the nested target directory, and a build script cannot
    // tell a test build from any other; only its path is recorded, nothing of it
    // is embedded.
    let rogue = wasm::build_component("klar-rogue-plugin");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let gen_rs = format!(
        "/// The standard plugin, built from `plugin/` by the build script.\n\
         pub const PLUGIN_COMPONENT: &[u8] = include_bytes!({:?});\n\
         /// The misbehaving test plugin (tests only).\n\
         #[doc(hidden)]\n\
         pub const ROGUE_PLUGIN_PATH: &str = {:?};\n",
        plugin.display().to_string(),
        rogue.display().to_string()
    );
    std::fs::write(out_dir.join("gen.rs"), gen_rs).expect("failed to write gen.rs");
    println!("cargo:rerun-if-changed=build/wasm.rs");
}
