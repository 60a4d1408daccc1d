//! Opening a workspace's install: a new one, or the one its state directory holds.
//!
//! Both drivers start the same way: open the state directory (if any), restore the
//! client from it, or create a new install with the required seed or one drawn from
//! the operating system (U1); a state directory holding another seed than the one
//! required is refused. Blocking file I/O: the async driver calls this off its
//! executor.

use authsync_core::{Client as Core, Config, Now};

use crate::error::StartError;
use crate::store::{StateDir, StoreOptions};

/// Where the install lives and which seed it must have.
#[derive(Clone, Debug)]
pub struct InstallPlace<'a> {
    /// The state directory; `None`: in memory.
    pub state_dir: Option<&'a std::path::Path>,
    /// Its store options.
    pub store: StoreOptions,
    /// The seed required; `None`: a new install's is drawn from the OS.
    pub seed: Option<u64>,
}

/// The opened store (if any) and the client, restored or new; a session is started
/// when `session_on_launch` says so.
///
/// # Errors
/// [`StartError`] for an invalid configuration, a state directory that cannot be
/// opened or restored, a seed mismatch, or no randomness for a new seed.
pub fn open(
    config: &Config,
    place: &InstallPlace<'_>,
    now: Now,
) -> Result<(Option<StateDir>, Core), StartError> {
    config.validate()?;
    let new_seed = || match place.seed {
        Some(seed) => Ok(seed),
        None => crate::os_seed().map_err(|e| StartError::Seed(e.to_string())),
    };
    let Some(dir) = place.state_dir else {
        return Ok((None, Core::new(config.clone().with_seed(new_seed()?), now)?));
    };
    let (store, recovered) = StateDir::open(dir, place.store)?;
    if recovered.is_empty() {
        return Ok((
            Some(store),
            Core::new(config.clone().with_seed(new_seed()?), now)?,
        ));
    }
    let core = Core::restore(
        config.clone(),
        now,
        recovered.snapshot.as_ref(),
        recovered.records,
    )?;
    if let Some(requested) = place.seed.filter(|&seed| seed != core.seed()) {
        return Err(StartError::SeedMismatch {
            persisted: core.seed(),
            requested,
        });
    }
    Ok((Some(store), core))
}
