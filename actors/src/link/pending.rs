//! A link's requests in flight: their ids, who waits for each answer, and what an answer
//! means. Ids are `r1`, `r2`, … per link; an answer under any other id is nobody's.
//!
//! A link calls a few methods a minute and waits for none between them — a handful at once
//! at most — so the table is a vector searched end to end: 24 bytes in the link's task (a hash
//! map's were 48) and no allocation while no waiter is left (a hash map kept its 148 bytes a
//! link at steady state, heaptrack at 10,000 gateways; a B-tree keeps its emptied root node,
//! 368 bytes).

use serde_json::Value;
use tokio::sync::oneshot;

use crate::link::messages::CallError;
use crate::protocol::frames::ErrorShape;

pub type Answer = Result<Value, CallError>;

#[derive(Default)]
pub struct Pending {
    next: u64,
    waiting: Vec<(String, oneshot::Sender<Answer>)>,
}

impl Pending {
    /// A new request: its id and where its answer will arrive.
    pub fn open(&mut self) -> (String, oneshot::Receiver<Answer>) {
        self.next += 1;
        let id = format!("r{}", self.next);
        let (tx, rx) = oneshot::channel();
        self.waiting.push((id.clone(), tx));
        (id, rx)
    }

    /// A response: hands it to whoever waits for `id`; `false` when nobody does (an unknown
    /// or expired id).
    pub fn answer(
        &mut self,
        id: &str,
        ok: bool,
        payload: Option<Value>,
        error: Option<ErrorShape>,
    ) -> bool {
        let Some(tx) = self.take(id) else {
            return false;
        };
        let answer = if ok {
            Ok(payload.unwrap_or(Value::Null))
        } else {
            Err(CallError::Gateway(error.unwrap_or_else(|| {
                ErrorShape::unknown("error response without an error")
            })))
        };
        let _ = tx.send(answer);
        true
    }

    /// `id`'s deadline passed: `true` when it was still waiting (never answered).
    pub fn expire(&mut self, id: &str) -> bool {
        self.take(id).is_some()
    }

    /// `id`'s waiter, out of the table; the table's allocation goes with the last one.
    fn take(&mut self, id: &str) -> Option<oneshot::Sender<Answer>> {
        let at = self.waiting.iter().position(|(waiting, _)| waiting == id)?;
        let (_, tx) = self.waiting.swap_remove(at);
        if self.waiting.is_empty() {
            self.waiting = Vec::new();
        }
        Some(tx)
    }

    /// Whether the table holds an allocation (it does only while a request waits).
    #[cfg(test)]
    fn holds_memory(&self) -> bool {
        self.waiting.capacity() > 0
    }

    /// The connection is gone: every waiter hears "not connected".
    pub fn fail_all(&mut self) {
        for (_, tx) in std::mem::take(&mut self.waiting) {
            let _ = tx.send(Err(CallError::NotConnected));
        }
    }
}

/// The `outcome` label of `gateway_rpc_calls_total`.
pub fn outcome(answer: &Answer) -> &'static str {
    match answer {
        Ok(_) => "ok",
        Err(CallError::NotConnected) => "not_connected",
        Err(CallError::Timeout(_)) => "timeout",
        Err(CallError::Gateway(_)) => "error",
        Err(CallError::AnotherProcess { .. }) => "another_process",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_reaches_its_waiter_once() {
        let mut p = Pending::default();
        let (id, mut rx) = p.open();
        assert_eq!(id, "r1");
        assert!(p.answer(&id, true, Some(json!({"n": 1})), None));
        assert_eq!(rx.try_recv().unwrap().unwrap(), json!({"n": 1}));
        assert!(
            !p.answer(&id, true, None, None),
            "a second answer is nobody's"
        );
    }

    #[test]
    fn a_refusal_without_an_error_is_unknown() {
        let mut p = Pending::default();
        let (id, mut rx) = p.open();
        p.answer(&id, false, None, None);
        match rx.try_recv().unwrap() {
            Err(CallError::Gateway(e)) => assert_eq!(e.code, "UNKNOWN"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_expired_request_no_longer_takes_an_answer() {
        let mut p = Pending::default();
        let (id, _rx) = p.open();
        assert!(p.expire(&id));
        assert!(!p.expire(&id));
        assert!(!p.answer(&id, true, None, None));
    }

    #[test]
    fn a_lost_connection_answers_every_waiter_not_connected() {
        let mut p = Pending::default();
        let (_, mut a) = p.open();
        let (_, mut b) = p.open();
        p.fail_all();
        for rx in [&mut a, &mut b] {
            assert!(matches!(
                rx.try_recv().unwrap(),
                Err(CallError::NotConnected)
            ));
        }
    }

    #[test]
    fn the_table_holds_memory_only_while_a_request_waits() {
        let mut p = Pending::default();
        assert!(!p.holds_memory());
        let (a, _ra) = p.open();
        let (b, _rb) = p.open();
        assert!(p.answer(&a, true, None, None));
        assert!(p.holds_memory(), "b still waits");
        assert!(p.expire(&b));
        assert!(!p.holds_memory(), "answered and expired: nothing kept");
        let (c, _rc) = p.open();
        assert_eq!(c, "r3", "ids go on");
        p.fail_all();
        assert!(!p.holds_memory(), "nor after the connection is lost");
    }
}
