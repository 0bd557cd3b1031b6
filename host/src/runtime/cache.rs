//! The on-disk cache of compiled plugins.
//!
//! Compiling the standard plugin with Cranelift takes seconds; reading it back
//! takes about a millisecond. An entry is keyed by the SHA-256 of the `.wasm`
//! bytes and by the engine's compatibility hash (wasmtime version and settings),
//! because compiled code is only valid for exactly the engine that made it.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Feeds `Hash` output into SHA-256, so the key is stable across runs (the
/// standard library's hasher is randomly seeded).
struct ShaHasher(Sha256);

impl Hasher for ShaHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    fn finish(&self) -> u64 {
        0
    }
}

fn path_for(engine: &Engine, dir: &Path, wasm_sha256: &str) -> PathBuf {
    let mut hasher = ShaHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let engine_hash = crate::hex(&hasher.0.finalize());
    let wasm = wasm_sha256.get(..32).unwrap_or(wasm_sha256);
    dir.join(format!("plugin-{wasm}-{}.cwasm", &engine_hash[..16]))
}

/// The cached compiled plugin, if there is a usable one.
pub fn load(engine: &Engine, dir: &Path, wasm_sha256: &str) -> Option<(Component, PathBuf)> {
    let path = path_for(engine, dir, wasm_sha256);
    if !path.exists() {
        return None;
    }
    // SAFETY: deserialising trusts the file to be wasmtime's own output. klar
    // writes it itself, into a directory only the user can write (see `store`),
    // and wasmtime still checks the header's version and engine settings.
    match unsafe { Component::deserialize_file(engine, &path) } {
        Ok(component) => Some((component, path)),
        Err(err) => {
            tracing::warn!(path = %path.display(), "ignoring a broken plugin cache entry: {err:#}");
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

/// Writes a compiled plugin to the cache. A failure only costs the next start
/// a compilation, so it is logged, not returned.
pub fn store(engine: &Engine, dir: &Path, wasm_sha256: &str, component: &Component) {
    let path = path_for(engine, dir, wasm_sha256);
    let result = (|| -> Result<(), String> {
        create_private_dir(dir).map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
        let bytes = component
            .serialize()
            .map_err(|e| format!("failed to serialise: {e:#}"))?;
        // Write then rename, so a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)
            .map_err(|e| format!("failed to write {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| format!("failed to rename to {}: {e}", path.display()))
    })();
    match result {
        Ok(()) => tracing::debug!(path = %path.display(), "cached the compiled plugin"),
        Err(err) => tracing::warn!("failed to cache the compiled plugin: {err}"),
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
