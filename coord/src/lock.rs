//! The group's reboot slots: Consul's semaphore pattern.
//!
//! Each contender holds a session (TTL only, renewed in the background) and a
//! contender key `<prefix>/<session>` acquired with it. `<prefix>/.lock` holds
//! `{"Limit": N, "Holders": {"<node>": "<session>"}}`, changed only with
//! check-and-set. A holder is pruned when its session is gone, unless its node
//! has a per-node reboot marker: a node that is down for its reboot keeps its
//! slot without a live session, and frees it after its post-boot phase.

use crate::consul::{Consul, ConsulError};
use crate::protocol::{listing, semaphore_key, Keys};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the renewer renews a session of `ttl`: well inside TTL/3, and
/// at least every 30 s, so a lost session is noticed during a long wait, not
/// only at the commitment (which checks it in Consul itself, see
/// `Semaphore::commit`).
pub fn renew_every(ttl: Duration) -> Duration {
    (ttl.max(Duration::from_secs(10)) / 4)
        .min(Duration::from_secs(30))
        .max(Duration::from_secs(1))
}

/// A Consul session renewed by a background thread until dropped (which
/// destroys it, deleting its contender key).
pub struct Session {
    consul: Consul,
    pub id: String,
    lost: Arc<AtomicBool>,
    quit: Arc<(Mutex<bool>, std::sync::Condvar)>,
    renewer: Option<JoinHandle<()>>,
}

impl Session {
    pub fn create(c: &Consul, name: &str, ttl: Duration) -> Result<Session, ConsulError> {
        let id = c.session_create(name, ttl)?;
        let lost = Arc::new(AtomicBool::new(false));
        let quit = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let (c2, id2, lost2, quit2) = (c.clone(), id.clone(), lost.clone(), quit.clone());
        let every = renew_every(ttl);
        let renewer = std::thread::spawn(move || loop {
            let (m, cv) = &*quit2;
            let guard = m.lock().unwrap_or_else(|p| p.into_inner());
            // The predicate form: a quit signalled before this thread got
            // here must not be missed (that would block drop() for `every`).
            let (guard, _) = cv
                .wait_timeout_while(guard, every, |quit| !*quit)
                .unwrap_or_else(|p| p.into_inner());
            if *guard {
                return;
            }
            drop(guard);
            match c2.session_renew(&id2) {
                Ok(true) => {}
                Ok(false) => {
                    log::error!("Consul session {id2} expired");
                    lost2.store(true, Ordering::SeqCst);
                    return;
                }
                // Transient errors: the TTL leaves room for the next attempt.
                Err(e) => log::warn!("renewing Consul session: {e}"),
            }
        });
        Ok(Session {
            consul: c.clone(),
            id,
            lost,
            quit,
            renewer: Some(renewer),
        })
    }

    /// Renews now; `false` (and lost from then on) when Consul no longer
    /// knows the session.
    pub fn renew_now(&self) -> Result<bool, ConsulError> {
        if self.is_lost() {
            return Ok(false);
        }
        let alive = self.consul.session_renew(&self.id)?;
        if !alive {
            log::error!("Consul session {} expired", self.id);
            self.lost.store(true, Ordering::SeqCst);
        }
        Ok(alive)
    }

    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Stops renewing without destroying: the session expires after its TTL
    /// (used by tests to simulate a killed holder).
    pub fn abandon(mut self) {
        self.stop_renewer();
        self.id.clear();
    }

    fn stop_renewer(&mut self) {
        let (m, cv) = &*self.quit;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
        if let Some(h) = self.renewer.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop_renewer();
        if !self.id.is_empty() {
            if let Err(e) = self.consul.session_destroy(&self.id) {
                log::warn!("destroying Consul session {}: {e}", self.id);
            }
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockState {
    pub limit: u32,
    /// node -> session
    pub holders: BTreeMap<String, String>,
}

impl LockState {
    pub fn parse(text: &str) -> LockState {
        let v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let limit = v.get("Limit").and_then(Value::as_u64).unwrap_or(0) as u32;
        let holders = match v.get("Holders") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, s)| (k.clone(), s.as_str().unwrap_or_default().to_string()))
                .collect(),
            // Consul's documented semaphore format (other tools): a list of
            // sessions. They count while their session lives.
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(|s| (format!("session:{s}"), s.to_string()))
                .collect(),
            _ => BTreeMap::new(),
        };
        LockState { limit, holders }
    }
    /// [`parse`](Self::parse), refusing a value that is neither format: a
    /// `.lock` written by something else must not be overwritten (and its
    /// holders forgotten) without a word.
    pub fn parse_strict(text: &str) -> Result<LockState, String> {
        if text.trim().is_empty() {
            return Ok(LockState::default());
        }
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        let Value::Object(m) = &v else {
            return Err("not a JSON object".into());
        };
        match m.get("Limit") {
            None | Some(Value::Null) => {}
            Some(l) if l.as_u64().is_some_and(|n| n <= u32::MAX as u64) => {}
            Some(l) => return Err(format!("\"Limit\" is {l}, not a count")),
        }
        match m.get("Holders") {
            None | Some(Value::Null) => {}
            Some(Value::Object(h)) if h.values().all(Value::is_string) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(h) => {
                return Err(format!(
                    "\"Holders\" is {h}, neither {{\"<node>\": \"<session>\"}} nor [\"<session>\"]"
                ))
            }
        }
        Ok(LockState::parse(text))
    }
    /// The `.lock` key's value as rebootmgr writes it.
    pub fn to_json(&self) -> String {
        json!({"Limit": self.limit, "Holders": self.holders}).to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquire {
    Acquired,
    Busy { holders: Vec<String>, limit: u32 },
}

pub struct Semaphore {
    pub prefix: String,
    pub limit: u32,
}

const CAS_ATTEMPTS: usize = 50;

impl Semaphore {
    pub fn for_keys(keys: &Keys, limit: u32) -> Semaphore {
        Semaphore {
            prefix: keys.lock_prefix(),
            limit: limit.max(1),
        }
    }

    pub fn lock_key(&self) -> String {
        semaphore_key(&self.prefix)
    }

    /// Current state (holders as recorded, not pruned) and its modify index.
    pub fn read(&self, c: &Consul) -> Result<(LockState, u64, Option<String>), ConsulError> {
        Ok(match c.kv_get(&self.lock_key())? {
            // Held as a plain mutex (the Python tool): its value is not ours.
            Some(e) if e.session.is_some() => {
                (LockState::parse(&e.value_str()), e.modify_index, e.session)
            }
            Some(e) => match LockState::parse_strict(&e.value_str()) {
                Ok(st) => (st, e.modify_index, None),
                Err(why) => {
                    return Err(ConsulError::Decode {
                        what: format!("key {}", self.lock_key()),
                        err: format!(
                            "{why}: it is not a rebootmgr semaphore ({{\"Limit\":N,\"Holders\":{{\"<node>\":\"<session>\"}}}}) and is left as it is; \
                             if no reboot of this group is in progress, delete it (`consul kv delete {}`)",
                            self.lock_key()
                        ),
                    })
                }
            },
            None => (LockState::default(), 0, None),
        })
    }

    /// Sessions that still hold a contender key under the prefix.
    fn live_sessions(&self, c: &Consul) -> Result<BTreeSet<String>, ConsulError> {
        Ok(c.kv_list(&format!("{}/", self.prefix))?
            .into_iter()
            .filter(|e| !listing::is_semaphore(&e.key))
            .filter_map(|e| e.session)
            .collect())
    }

    fn prune(&self, c: &Consul, st: &mut LockState) -> Result<(), ConsulError> {
        let live = self.live_sessions(c)?;
        let mut dead = Vec::new();
        for (node, session) in &st.holders {
            if !live.contains(session) && c.kv_get(&Keys::new(node, None).marker())?.is_none() {
                dead.push(node.clone());
            }
        }
        for n in dead {
            log::info!("slot of {n} freed: its session is gone and it is not rebooting");
            st.holders.remove(&n);
        }
        Ok(())
    }

    /// Takes a slot for `node` with `session` (re-entrant for the same node).
    pub fn try_acquire(
        &self,
        c: &Consul,
        node: &str,
        session: &str,
    ) -> Result<Acquire, ConsulError> {
        let contender = format!("{}/{}", self.prefix, session);
        if !c.kv_acquire(&contender, node, session)? {
            return Err(ConsulError::Decode {
                what: format!("acquire {contender}"),
                err: "session could not acquire its own contender key".into(),
            });
        }
        for _ in 0..CAS_ATTEMPTS {
            let (mut st, index, mutex_session) = self.read(c)?;
            if let Some(s) = mutex_session {
                // The Python tool holds `.lock` as a plain mutex.
                return Ok(Acquire::Busy {
                    holders: vec![format!("(mutex held by session {s})")],
                    limit: 1,
                });
            }
            // Every contender must agree on N; while they do not, the
            // smaller one is what is safe.
            let limit = if st.limit == 0 {
                self.limit
            } else {
                st.limit.min(self.limit)
            };
            self.prune(c, &mut st)?;
            if !st.holders.contains_key(node) && st.holders.len() >= limit as usize {
                return Ok(Acquire::Busy {
                    holders: st.holders.keys().cloned().collect(),
                    limit,
                });
            }
            st.holders.insert(node.to_string(), session.to_string());
            st.limit = self.limit;
            if c.kv_cas(&self.lock_key(), &st.to_json(), index)? {
                return Ok(Acquire::Acquired);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(ConsulError::Decode {
            what: format!("acquire {}", self.lock_key()),
            err: "too much contention (check-and-set kept failing)".into(),
        })
    }

    /// Whether `node` holds a slot with `session`.
    pub fn holds(&self, c: &Consul, node: &str, session: &str) -> Result<bool, ConsulError> {
        let (st, _, _) = self.read(c)?;
        Ok(st.holders.get(node).is_some_and(|s| s == session))
    }

    /// The moment of commitment: writes `value` to `key` (the in-progress
    /// marker) in one Consul transaction with a check that `.lock` is
    /// unchanged since it was read with `node` holding a slot with `session`,
    /// and that the contender key is still locked by `session` (a destroyed or
    /// expired session has deleted it). `false`: the slot is not ours, nothing
    /// was written. Two holders can never both commit to one slot: pruning
    /// this node changes `.lock`'s index, losing the session fails the
    /// session check.
    pub fn commit(
        &self,
        c: &Consul,
        node: &str,
        session: &str,
        key: &str,
        value: &str,
    ) -> Result<bool, ConsulError> {
        let contender = format!("{}/{}", self.prefix, session);
        for _ in 0..CAS_ATTEMPTS {
            let (st, index, _) = self.read(c)?;
            if index == 0 || st.holders.get(node).is_none_or(|s| s != session) {
                return Ok(false);
            }
            let ops = [
                json!({"KV": {"Verb": "check-index", "Key": self.lock_key(), "Index": index}}),
                json!({"KV": {"Verb": "check-session", "Key": contender, "Session": session}}),
                json!({"KV": {"Verb": "set", "Key": key,
                    "Value": crate::consul::base64_encode(value.as_bytes())}}),
            ];
            if c.txn(&ops)? {
                return Ok(true);
            }
            // Another contender changed `.lock` (took or gave back a slot)
            // or the session is gone: read again and decide again.
            if !c.session_exists(session)? {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(ConsulError::Decode {
            what: format!("commit {key}"),
            err: "too much contention (check-and-set kept failing)".into(),
        })
    }

    /// Gives `node`'s slot back (no-op when it holds none).
    pub fn release(&self, c: &Consul, node: &str) -> Result<(), ConsulError> {
        for _ in 0..CAS_ATTEMPTS {
            let (mut st, index, _) = self.read(c)?;
            if st.holders.remove(node).is_none() {
                return Ok(());
            }
            if st.limit == 0 {
                st.limit = self.limit;
            }
            if c.kv_cas(&self.lock_key(), &st.to_json(), index)? {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(ConsulError::Decode {
            what: format!("release {}", self.lock_key()),
            err: "too much contention (check-and-set kept failing)".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_interval_as_documented() {
        // docs/rebootmgr.md, --session-ttl: every TTL/4, at most every 30 s.
        assert_eq!(
            renew_every(Duration::from_secs(600)),
            Duration::from_secs(30)
        );
        assert_eq!(
            renew_every(Duration::from_secs(60)),
            Duration::from_secs(15)
        );
        assert_eq!(
            renew_every(Duration::from_secs(1)),
            Duration::from_millis(2500)
        );
    }

    #[test]
    fn lock_state_reads_both_holder_formats() {
        let st = LockState::parse(r#"{"Limit":2,"Holders":{"n1":"s1"}}"#);
        assert_eq!(st.limit, 2);
        assert_eq!(st.holders.get("n1").map(String::as_str), Some("s1"));
        let st = LockState::parse(r#"{"Limit":1,"Holders":["s9"]}"#);
        assert_eq!(st.holders.get("session:s9").map(String::as_str), Some("s9"));
        assert_eq!(LockState::parse("garbage"), LockState::default());
        let again = LockState::parse(&st.to_json());
        assert_eq!(again, st);
        for ok in [
            "",
            r#"{"Limit":1,"Holders":{"n1":"s1"}}"#,
            r#"{"Holders":["s"]}"#,
            "{}",
        ] {
            assert!(LockState::parse_strict(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("garbage", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"Limit":"x"}"#, "\"Limit\" is \"x\""),
            (r#"{"Holders":{"n1":5}}"#, "\"Holders\" is {\"n1\":5}"),
        ] {
            let e = LockState::parse_strict(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
