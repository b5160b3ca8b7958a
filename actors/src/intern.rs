//! One shared copy of each method (or capability) list the fleet advertises. Every gateway of
//! a release sends the same hundred-odd names in its `hello-ok`; kept per link, 10,000
//! gateways held 10,000 copies (about 4 KB each), and every look for "which gateways offer
//! `logs.tail`" walked each of them. Interned, a release's list is one allocation, and a
//! question about it can be answered once per list ([`Arc::as_ptr`] names it).
//!
//! Bounded: at most [`MAX_LISTS`] distinct lists are kept (a fleet runs a handful of
//! releases); past that a list is simply not shared, so a gateway that invents a new list at
//! every handshake cannot grow the table.

use std::sync::{Arc, Mutex};

/// Distinct lists kept.
pub const MAX_LISTS: usize = 64;

/// A table of shared lists.
#[derive(Default)]
pub struct Interner {
    lists: Mutex<Vec<Arc<Vec<String>>>>,
}

impl Interner {
    pub const fn new() -> Self {
        Interner {
            lists: Mutex::new(Vec::new()),
        }
    }

    /// The shared copy of `names` (the first one seen with this content).
    pub fn names(&self, names: Vec<String>) -> Arc<Vec<String>> {
        let mut lists = self.lists.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = lists.iter().find(|l| ***l == names) {
            return known.clone();
        }
        let list = Arc::new(names);
        if lists.len() < MAX_LISTS {
            lists.push(list.clone());
        }
        list
    }
}

static LISTS: Interner = Interner::new();

/// The process's shared copy of `names`.
pub fn names(names: Vec<String>) -> Arc<Vec<String>> {
    LISTS.names(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn equal_lists_share_one_copy_and_different_ones_do_not() {
        let t = Interner::new();
        let a = t.names(list(&["health", "sessions.list"]));
        let b = t.names(list(&["health", "sessions.list"]));
        let c = t.names(list(&["health"]));
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(*c, list(&["health"]));
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Interner::new();
        for i in 0..(MAX_LISTS * 2) {
            let l = t.names(list(&[&format!("m{i}")]));
            assert_eq!(l.len(), 1);
        }
        assert_eq!(t.lists.lock().unwrap().len(), MAX_LISTS);
        // Past the bound a list is still given back, whole, just not shared.
        let x = t.names(list(&["past"]));
        let y = t.names(list(&["past"]));
        assert_eq!(*x, list(&["past"]));
        assert!(!Arc::ptr_eq(&x, &y));
    }
}
