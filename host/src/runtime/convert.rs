//! Conversions between the plugin model (what the host stores and prints) and
//! the wasmtime-generated WIT types (what crosses into the component). The
//! conversions themselves are shared with the component glue: see
//! `plugin/src/wire.rs`.

use super::bindings::types as w;
use crate::plugin as m;

include!("../../../plugin/src/wire.rs");
