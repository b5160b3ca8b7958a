//! Open event streams bounded, per API key and in all: every SSE stream (`/api/events`,
//! `/api/logs?follow=true`) and WebSocket (`/api/ws`) holds a [`Slot`] for as long as it is
//! open, and one more than `server.streams_per_key` for its key, or than `server.streams_max`
//! in all, is refused 429 before anything is subscribed.
//!
//! Why: one key held 3,000 idle streams, and with them 3,045 of the process's 20,000 open
//! files and 44 MB (40 → 84 MB RSS, ~15 KB a stream): a buggy dashboard reconnecting in a loop,
//! or a stolen viewer key, could take every file the daemon has for its gateways' sockets.
//! The defaults (64 a key, 2,000 in all) leave a 100-gateway fleet's daemon 18,000 files.
//!
//! Cost: a mutex around a small map, taken twice a stream (open and close), never per frame.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The key holds `server.streams_per_key` streams already.
    Key(usize),
    /// The daemon holds `server.streams_max` streams already.
    Total(usize),
}

impl Full {
    /// Said in the 429.
    pub fn what(self) -> &'static str {
        match self {
            Full::Key(_) => "open event streams for this API key (server.streams_per_key)",
            Full::Total(_) => "open event streams in all (server.streams_max)",
        }
    }
}

/// The open streams, counted by the key that opened each.
pub struct StreamSlots {
    per_key: usize,
    max: usize,
    open: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Key id → its open streams (a request let in without a key counts as key 0).
    by_key: HashMap<i64, usize>,
}

impl StreamSlots {
    pub fn new(per_key: usize, max: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            per_key,
            max,
            open: Mutex::default(),
        })
    }

    /// A slot for a stream of key `key_id`, held until it is dropped; or why not.
    pub fn take(self: &Arc<Self>, key_id: i64) -> Result<Slot, Full> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.total >= self.max {
            return Err(Full::Total(self.max));
        }
        let mine = open.by_key.entry(key_id).or_default();
        if *mine >= self.per_key {
            return Err(Full::Key(self.per_key));
        }
        *mine += 1;
        open.total += 1;
        Ok(Slot {
            slots: self.clone(),
            key_id,
        })
    }

    /// Streams open now, in all.
    pub fn open(&self) -> usize {
        self.open.lock().map_or(0, |o| o.total)
    }
}

/// One open stream's place; given back when dropped (the stream's task ended).
pub struct Slot {
    slots: Arc<StreamSlots>,
    key_id: i64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|p| p.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_key.get_mut(&self.key_id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.by_key.remove(&self.key_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_share_and_the_daemon_its_total_and_a_closed_stream_gives_its_place_back() {
        let slots = StreamSlots::new(2, 3);
        let a1 = slots.take(1).unwrap();
        let _a2 = slots.take(1).unwrap();
        assert_eq!(slots.take(1).err(), Some(Full::Key(2)));
        let _b1 = slots.take(2).unwrap();
        assert_eq!(slots.take(3).err(), Some(Full::Total(3)));
        drop(a1);
        assert_eq!(slots.open(), 2);
        let _a3 = slots.take(1).unwrap();
        assert_eq!(slots.open(), 3);
    }
}
