//! Service and region names as small numbers, so that counting a query
//! hashes and compares two integers instead of two strings. A name gets its
//! number when a configuration naming it is loaded, and keeps it for the life
//! of the process (so a reload that keeps a name keeps its series); the
//! table grows only with names ever configured.

use rustc_hash::FxHashMap;
use std::sync::{Arc, LazyLock, Mutex};

/// An interned service or region name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Label(u32);

#[derive(Default)]
struct Names {
    ids: FxHashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

static NAMES: LazyLock<Mutex<Names>> = LazyLock::new(Mutex::default);

fn names() -> std::sync::MutexGuard<'static, Names> {
    NAMES.lock().unwrap_or_else(|e| e.into_inner())
}

impl Label {
    /// The label of `name` (configuration load time, not the query path).
    pub fn of(name: &str) -> Label {
        let mut n = names();
        if let Some(&id) = n.ids.get(name) {
            return Label(id);
        }
        let id = u32::try_from(n.names.len()).expect("fewer than 2^32 names");
        let name: Arc<str> = name.into();
        n.names.push(Arc::clone(&name));
        n.ids.insert(name, id);
        Label(id)
    }

    /// The name again (when a thread first counts a label, and in tests).
    pub fn name(self) -> Arc<str> {
        Arc::clone(&names().names[self.0 as usize])
    }

    pub(super) fn id(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Label;

    #[test]
    fn one_name_one_label() {
        let a = Label::of("labels-test-a.example.");
        let b = Label::of("labels-test-b.example.");
        assert_ne!(a, b);
        assert_eq!(Label::of("labels-test-a.example."), a);
        assert_eq!(&*a.name(), "labels-test-a.example.");
    }
}
