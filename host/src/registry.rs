//! A client's workspaces (W1): the default one, and the others by app id.

use std::collections::BTreeMap;
use std::sync::{PoisonError, RwLock};

use crate::error::{Error, StartError};

/// What a registry needs of a workspace handle.
pub trait Named: Clone {
    /// The workspace's app id.
    fn app_id(&self) -> &str;
}

/// The default workspace and the others, by app id.
#[derive(Debug)]
pub struct Workspaces<W> {
    default: W,
    others: RwLock<BTreeMap<String, W>>,
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

    /// Whether a workspace with this app id is registered.
    pub fn contains(&self, app_id: &str) -> bool {
        app_id == self.default.app_id() || self.read().contains_key(app_id)
    }

    /// Registers `workspace`.
    ///
    /// # Errors
    /// [`StartError::DuplicateWorkspace`] when one with its app id is registered.
    pub fn insert(&self, workspace: W) -> Result<(), StartError> {
        let app_id = workspace.app_id().to_owned();
        let mut others = self.others.write().unwrap_or_else(PoisonError::into_inner);
        if app_id == self.default.app_id() || others.contains_key(&app_id) {
            return Err(StartError::DuplicateWorkspace(app_id));
        }
        others.insert(app_id, workspace);
        Ok(())
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

    /// The workspace named by `app_id`, or the default one for `None`: the original SDK's
    /// optional `workspaceId`.
    ///
    /// # Errors
    /// [`Error::UnknownWorkspace`].
    pub fn resolve(&self, app_id: Option<&str>) -> Result<W, Error> {
        app_id.map_or_else(|| Ok(self.default.clone()), |app_id| self.get(app_id))
    }

    /// Every workspace, the default one first.
    pub fn all(&self) -> Vec<W> {
        let mut all = vec![self.default.clone()];
        all.extend(self.read().values().cloned());
        all
    }

    /// The app ids of the others.
    pub fn other_ids(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, W>> {
        self.others.read().unwrap_or_else(PoisonError::into_inner)
    }
}
