//! API keys: the same rules for the CLI and the API. A key's name is shown
//! in lists and audit rows, so it has 1 to 100 characters and no control
//! characters (an escape sequence in a name would otherwise reach a
//! terminal).

use crate::store::apikeys::{self, ApiKey, Scope};
use crate::store::{self, Store};

pub const MAX_NAME: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key's name has 1 to {MAX_NAME} characters and no control characters")]
    BadName,
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Creates a key; returns its secret (shown once) and its row.
pub fn create(
    store: &mut Store,
    tenant: &str,
    name: &str,
    scope: Scope,
    now: i64,
) -> Result<(String, ApiKey), KeyError> {
    let name = name.trim();
    if super::text::one_line("name", name, MAX_NAME).is_err() {
        return Err(KeyError::BadName);
    }
    Ok(store.transaction(|tx| apikeys::create(tx, tenant, (name, scope), now))?)
}
