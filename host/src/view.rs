//! What an object holds, kept beside the instance: the driver writes it
//! as each command completes and each loss arrives; the object's accessors
//! (`is_held`, `grant`, ...) read it without waiting for the driver.

use std::sync::{Mutex, MutexGuard};

use crate::builder::LostCallback;
use crate::{Grant, LeaseLost};

/// A mutex that a panic elsewhere cannot make unusable: every write is
/// one assignment, so the state behind it is whole.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One object's grants as of its last completion or loss (a lock's or
/// semaphore's one, a lock set's one per member), and who to tell of a
/// loss. Shared by the object and the driver.
pub(crate) struct Watch {
    /// The key of each grant: the object's key, or the set's members in
    /// the order they are taken.
    keys: Vec<String>,
    /// Empty, or one grant per key.
    grants: Mutex<Vec<Grant>>,
    pub(crate) on_lost: Option<LostCallback>,
}

impl Watch {
    pub(crate) fn new(keys: Vec<String>, on_lost: Option<LostCallback>) -> Self {
        Watch {
            keys,
            grants: Mutex::new(Vec::new()),
            on_lost,
        }
    }

    /// After a command that ends with `grant` held (or nothing).
    pub(crate) fn set(&self, grant: Option<Grant>) {
        self.set_all(grant.into_iter().collect());
    }

    /// After a command that ends with every one of `grants` held (or none).
    pub(crate) fn set_all(&self, grants: Vec<Grant>) {
        *locked(&self.grants) = grants;
    }

    /// The current grant, while held and not known lost (a set's first).
    pub(crate) fn grant(&self) -> Option<Grant> {
        locked(&self.grants).first().cloned()
    }

    /// Every grant held, with its key.
    pub(crate) fn held(&self) -> Vec<(String, Grant)> {
        let grants = locked(&self.grants);
        self.keys
            .iter()
            .cloned()
            .zip(grants.iter().cloned())
            .collect()
    }

    /// Whether `lost` names one of this object's grants; if so, forgets
    /// them all (a set is lost with any member).
    pub(crate) fn lose(&self, lost: &LeaseLost) -> bool {
        let mut grants = locked(&self.grants);
        let ours = self
            .keys
            .iter()
            .zip(grants.iter())
            .any(|(key, g)| *key == lost.key && g.fence == lost.fence);
        if ours {
            grants.clear();
        }
        ours
    }
}
