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

/// One object's grant as of its last completion or loss, and who to tell
/// of a loss. Shared by the object and the driver.
pub(crate) struct Watch {
    grant: Mutex<Option<Grant>>,
    pub(crate) on_lost: Option<LostCallback>,
}

impl Watch {
    pub(crate) fn new(on_lost: Option<LostCallback>) -> Self {
        Watch {
            grant: Mutex::new(None),
            on_lost,
        }
    }

    /// After a command that ends with `grant` held (or nothing).
    pub(crate) fn set(&self, grant: Option<Grant>) {
        *locked(&self.grant) = grant;
    }

    /// The current grant, while held and not known lost.
    pub(crate) fn grant(&self) -> Option<Grant> {
        locked(&self.grant).clone()
    }

    /// Whether `lost` names this object's grant; if so, forgets it.
    pub(crate) fn lose(&self, lost: &LeaseLost) -> bool {
        let mut grant = locked(&self.grant);
        let ours = grant.as_ref().is_some_and(|g| g.fence == lost.fence);
        if ours {
            *grant = None;
        }
        ours
    }
}
