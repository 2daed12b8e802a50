//! [`Cancellation`]: the switch a Parallel state or a fail-fast Map throws when one of its
//! branches or iterations fails, so that the others stop at once (as in Step Functions)
//! instead of running to their own end. Switches nest: a branch inside a cancelled branch is
//! cancelled too. The interpreter polls the switch as states are entered, during Wait states
//! and retry back-offs, and hands it to the task runner with each task so that a running task
//! can be interrupted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A cancellation switch and every switch above it (cheap to clone; `Default`: never cancelled).
#[derive(Clone, Default)]
pub struct Cancellation(Option<Arc<Node>>);

struct Node {
    flag: AtomicBool,
    parent: Cancellation,
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cancellation({})", self.is_cancelled())
    }
}

impl Cancellation {
    /// A switch that is never thrown.
    pub const fn none() -> Self {
        Cancellation(None)
    }

    /// A new switch under this one: thrown when it is, or on its own.
    pub fn child(&self) -> Self {
        Cancellation(Some(Arc::new(Node {
            flag: AtomicBool::new(false),
            parent: self.clone(),
        })))
    }

    /// Throws this switch (not its parents). No effect on [`Cancellation::none`].
    pub fn cancel(&self) {
        if let Some(n) = &self.0 {
            n.flag.store(true, Ordering::SeqCst);
        }
    }

    /// True when this switch or one above it was thrown.
    pub fn is_cancelled(&self) -> bool {
        let mut cur = self;
        while let Some(n) = &cur.0 {
            if n.flag.load(Ordering::Relaxed) {
                return true;
            }
            cur = &n.parent;
        }
        false
    }

    /// True when this can ever be thrown (it is not [`Cancellation::none`]).
    pub fn is_armed(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thrown_parent_cancels_its_children_but_not_its_siblings_parents() {
        let root = Cancellation::none();
        let a = root.child();
        let a1 = a.child();
        let b = root.child();
        assert!(!a1.is_cancelled());
        a.cancel();
        assert!(a.is_cancelled() && a1.is_cancelled());
        assert!(!b.is_cancelled() && !root.is_cancelled());
        a1.clone().cancel();
        root.cancel(); // no effect on `none`
        assert!(!root.is_cancelled() && !b.is_cancelled());
    }
}
