//! The use cases, one function each, that every face (the CLI, the API, the
//! response page, the cockpit) calls, so that each rule exists once. A use
//! case takes and returns domain types, owns its transaction, and knows
//! nothing of clap, HTTP or terminals (progress is reported through a
//! callback).

pub mod accounts;
pub mod activation;
pub mod actor;
pub mod campaign;
pub mod cockpit;
pub mod consent_texts;
pub mod contacts;
pub mod demo;
pub mod digest;
pub mod events;
pub mod evidence;
pub mod explain;
pub mod import;
pub mod keys;
pub mod personal;
pub mod respond;
pub mod settings;
pub mod simulate;
pub mod table_tests;
pub mod templates;
pub mod text;
pub mod webhook;
