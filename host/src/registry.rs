//! A client's workspaces (W1): the default one, and the others by app id; when the
//! client's last handle goes, every workspace is closed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use crate::error::{Error, StartError};

/// What a registry needs of a workspace handle.
pub trait Named: Clone {
    /// The workspace's app id.
    fn app_id(&self) -> &str;
    /// Starts closing the workspace without waiting (its client's last handle went).
    fn close_soon(&self);
}

/// The default workspace and the others, by app id.
///
/// ```
/// use authsync_host::{Named, Workspaces, StartError};
/// #[derive(Clone)]
/// struct Handle(&'static str);
/// impl Named for Handle {
///     fn app_id(&self) -> &str { self.0 }
///     fn close_soon(&self) {}
/// }
/// let workspaces = Workspaces::new(Handle("app-a"));
/// assert!(workspaces.add("app-b", || Ok(Handle("app-b"))).is_ok());
/// assert!(matches!(workspaces.add("app-b", || Ok(Handle("app-b"))), Err(StartError::DuplicateWorkspace(_))));
/// assert_eq!(workspaces.all().len(), 2);
/// ```
pub struct Workspaces<W: Named> {
    default: W,
    others: RwLock<BTreeMap<String, W>>,
}

impl<W: Named> fmt::Debug for Workspaces<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspaces")
            .field("default", &self.default.app_id())
            .field("others", &self.read().keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<W: Named> Drop for Workspaces<W> {
    fn drop(&mut self) {
        for workspace in self.all() {
            workspace.close_soon();
        }
    }
}

impl<W: Named> Workspaces<W> {
    /// A registry with its default workspace.
    pub fn new(default: W) -> Self {
        Self {
            default,
            others: RwLock::new(BTreeMap::new()),
        }
    }

    /// The default workspace.
    pub fn default_workspace(&self) -> &W {
        &self.default
    }

    /// Starts a workspace with `start` and registers it under `app_id`.
    ///
    /// # Errors
    /// [`StartError::DuplicateWorkspace`] when one with that app id is registered
    /// (checked before starting, and again after, for a race with another thread), or
    /// `start`'s error.
    pub fn add(
        &self,
        app_id: &str,
        start: impl FnOnce() -> Result<W, StartError>,
    ) -> Result<W, StartError> {
        let duplicate = || StartError::DuplicateWorkspace(app_id.to_owned());
        if app_id == self.default.app_id() || self.read().contains_key(app_id) {
            return Err(duplicate());
        }
        let workspace = start()?;
        let mut others = self.others.write().unwrap_or_else(PoisonError::into_inner);
        if others.contains_key(app_id) {
            workspace.close_soon();
            return Err(duplicate());
        }
        others.insert(app_id.to_owned(), workspace.clone());
        Ok(workspace)
    }

    /// The workspace with this app id.
    ///
    /// # Errors
    /// [`Error::UnknownWorkspace`].
    pub fn get(&self, app_id: &str) -> Result<W, Error> {
        if app_id == self.default.app_id() {
            return Ok(self.default.clone());
        }
        self.read()
            .get(app_id)
            .cloned()
            .ok_or_else(|| Error::UnknownWorkspace(app_id.to_owned()))
    }

    /// Every workspace, the default one first.
    pub fn all(&self) -> Vec<W> {
        let mut all = vec![self.default.clone()];
        all.extend(self.read().values().cloned());
        all
    }

    /// Every workspace's app id, the default one first.
    pub fn ids(&self) -> Vec<String> {
        self.all().iter().map(|w| w.app_id().to_owned()).collect()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, W>> {
        self.others.read().unwrap_or_else(PoisonError::into_inner)
    }
}
