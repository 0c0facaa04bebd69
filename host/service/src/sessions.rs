//! Conversation sessions (SPEC 10): the last 10 turns per `sessionId`,
//! forgotten after a time without use. Behind a small trait so a shared store
//! (Redis, DynamoDB) can replace the in-process one without touching the
//! request path.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mangaassist_core::body::{HISTORY_WINDOW, Turn};

use mangaassist_bedrock::clock::Clock;

/// Where sessions live.
pub trait SessionStore: Send + Sync {
    /// The session's turns, oldest first (empty when unknown or expired).
    fn history(&self, session_id: &str) -> Vec<Turn>;
    /// Appends one exchange; keeps the last [`HISTORY_WINDOW`] turns.
    fn append(&self, session_id: &str, user: &str, assistant: &str);
    /// Forgets the session; true when it existed.
    fn clear(&self, session_id: &str) -> bool;
}

struct Entry {
    turns: Vec<Turn>,
    last_used: Duration,
}

/// Sessions in this process's memory, with an idle TTL and a size cap.
pub struct MemorySessions {
    entries: Mutex<HashMap<String, Entry>>,
    ttl: Duration,
    max_sessions: usize,
    clock: Arc<dyn Clock>,
}

impl MemorySessions {
    /// Sessions idle longer than `ttl` are forgotten; at `max_sessions` the
    /// least recently used one makes room.
    pub fn new(ttl: Duration, max_sessions: usize, clock: Arc<dyn Clock>) -> Self {
        MemorySessions {
            entries: Mutex::new(HashMap::new()),
            ttl,
            max_sessions: max_sessions.max(1),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // Each update replaces whole entries: a poisoned map is still valid.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn expired(&self, entry: &Entry, now: Duration) -> bool {
        now.saturating_sub(entry.last_used) > self.ttl
    }
}

impl SessionStore for MemorySessions {
    fn history(&self, session_id: &str) -> Vec<Turn> {
        let now = self.clock.now();
        let mut entries = self.lock();
        match entries.get(session_id) {
            Some(entry) if self.expired(entry, now) => {
                entries.remove(session_id);
                Vec::new()
            }
            Some(entry) => entry.turns.clone(),
            None => Vec::new(),
        }
    }

    fn append(&self, session_id: &str, user: &str, assistant: &str) {
        let now = self.clock.now();
        let mut entries = self.lock();
        if !entries.contains_key(session_id) && entries.len() >= self.max_sessions {
            entries.retain(|_, e| now.saturating_sub(e.last_used) <= self.ttl);
            if entries.len() >= self.max_sessions {
                // Make room for an eighth of the cap at once, least recently
                // used first: one O(n) pass per n/8 new sessions, not per one.
                let room = (self.max_sessions / 8).max(1);
                let mut ages: Vec<Duration> = entries.values().map(|e| e.last_used).collect();
                let cutoff = *ages.select_nth_unstable(room - 1).1;
                let mut removed = 0;
                entries.retain(|_, e| {
                    let evict = removed < room && e.last_used <= cutoff;
                    removed += usize::from(evict);
                    !evict
                });
            }
        }
        let entry = entries.entry(session_id.to_string()).or_insert(Entry {
            turns: Vec::new(),
            last_used: now,
        });
        if self.expired(entry, now) {
            entry.turns.clear();
        }
        entry.turns.push(Turn::new("user", user));
        entry.turns.push(Turn::new("assistant", assistant));
        let excess = entry.turns.len().saturating_sub(HISTORY_WINDOW);
        entry.turns.drain(..excess);
        entry.last_used = now;
    }

    fn clear(&self, session_id: &str) -> bool {
        self.lock().remove(session_id).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mangaassist_bedrock::clock::ManualClock;

    fn store(clock: &Arc<ManualClock>) -> MemorySessions {
        MemorySessions::new(Duration::from_secs(1800), 3, clock.clone())
    }

    #[test]
    fn keeps_the_last_ten_turns_in_order() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        for i in 0..8 {
            s.append("a", &format!("q{i}"), &format!("r{i}"));
        }
        let turns = s.history("a");
        assert_eq!(turns.len(), HISTORY_WINDOW);
        assert_eq!(turns[0], Turn::new("user", "q3"));
        assert_eq!(turns[9], Turn::new("assistant", "r7"));
    }

    #[test]
    fn idle_sessions_expire_and_clear_forgets() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        s.append("a", "q", "r");
        clock.advance(Duration::from_secs(1800));
        assert_eq!(s.history("a").len(), 2, "exactly the TTL: still kept");
        clock.advance(Duration::from_secs(1801));
        assert!(s.history("a").is_empty());
        s.append("b", "q", "r");
        assert!(s.clear("b"));
        assert!(!s.clear("b"));
        assert!(s.history("b").is_empty());
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        for id in ["a", "b", "c"] {
            s.append(id, "q", "r");
            clock.advance(Duration::from_secs(1));
        }
        s.append("a", "q2", "r2");
        s.append("d", "q", "r");
        assert!(s.history("b").is_empty(), "b was least recently used");
        assert_eq!(s.history("a").len(), 4);
        assert_eq!(s.history("d").len(), 2);
    }
}
