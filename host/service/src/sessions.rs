//! Conversation sessions (SPEC 10): the last 10 turns per `sessionId`, each
//! owned by the identity that created it, forgotten after a time without
//! use, bounded in count and in bytes; in this process by default, in
//! DynamoDB when replicas share them (`sessions_table`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mangaassist_core::body::{HISTORY_WINDOW, Turn};

use mangaassist_bedrock::clock::Clock;

pub use crate::dynamo_sessions::Unavailable;

/// Where sessions live: this process's memory (the embedded default), or
/// a DynamoDB table every replica shares. A session another identity owns
/// looks exactly like one that does not exist.
pub enum Sessions {
    /// In this process.
    Memory(MemorySessions),
    /// In DynamoDB.
    Dynamo(std::sync::Arc<crate::dynamo_sessions::DynamoSessions>),
}

impl Sessions {
    /// The session's turns, oldest first; `None` when it is unknown,
    /// expired or not `owner`'s.
    pub async fn history(
        &self,
        session_id: &str,
        owner: &str,
    ) -> Result<Option<Vec<Turn>>, Unavailable> {
        match self {
            Sessions::Memory(m) => Ok(m.history(session_id, owner)),
            Sessions::Dynamo(d) => d.history(session_id, owner).await,
        }
    }

    /// Keeps one exchange. With `create` the session may be new (an id
    /// this request issued); without, only an existing session of
    /// `owner`'s is extended. False when the id is another identity's. A
    /// shared store that is down keeps the exchange to write when it
    /// returns (see [`crate::dynamo_sessions::DynamoSessions::keep`]).
    pub async fn append(
        &self,
        session_id: &str,
        owner: &str,
        user: &str,
        assistant: &str,
        create: bool,
    ) -> bool {
        match self {
            Sessions::Memory(m) => m.append(session_id, owner, user, assistant, create),
            Sessions::Dynamo(d) => d.keep(session_id, owner, user, assistant, create).await,
        }
    }

    /// Forgets the session; true when it existed and was `owner`'s.
    pub async fn clear(&self, session_id: &str, owner: &str) -> Result<bool, Unavailable> {
        match self {
            Sessions::Memory(m) => Ok(m.clear(session_id, owner)),
            Sessions::Dynamo(d) => d.clear(session_id, owner).await,
        }
    }
}

struct Entry {
    owner: Box<str>,
    turns: Vec<Turn>,
    last_used: Duration,
    bytes: usize,
}

impl Entry {
    fn measure(&mut self, id: &str) {
        self.bytes =
            id.len() + self.owner.len() + self.turns.iter().map(|t| t.content.len()).sum::<usize>();
    }
}

struct Map {
    entries: HashMap<String, Entry>,
    bytes: usize,
}

/// Sessions in this process's memory, with an idle TTL, a count cap and a
/// byte cap.
pub struct MemorySessions {
    map: Mutex<Map>,
    ttl: Duration,
    max_sessions: usize,
    max_bytes: usize,
    clock: Arc<dyn Clock>,
}

impl MemorySessions {
    /// Sessions idle longer than `ttl` are forgotten; past `max_sessions`
    /// or `max_bytes` of text the least recently used ones make room.
    pub fn new(
        ttl: Duration,
        max_sessions: usize,
        max_bytes: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        MemorySessions {
            map: Mutex::new(Map {
                entries: HashMap::new(),
                bytes: 0,
            }),
            ttl,
            max_sessions: max_sessions.max(1),
            max_bytes,
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Map> {
        // Each update replaces whole entries: a poisoned map is still valid.
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn expired(&self, entry: &Entry, now: Duration) -> bool {
        now.saturating_sub(entry.last_used) > self.ttl
    }

    /// Drops expired sessions, then least recently used ones, until there
    /// is room for one more session of `incoming` bytes.
    fn make_room(&self, map: &mut Map, now: Duration, incoming: usize) {
        let full =
            |m: &Map| m.entries.len() >= self.max_sessions || m.bytes + incoming > self.max_bytes;
        if !full(map) {
            return;
        }
        map.entries
            .retain(|_, e| now.saturating_sub(e.last_used) <= self.ttl);
        map.bytes = map.entries.values().map(|e| e.bytes).sum();
        while full(map) && !map.entries.is_empty() {
            // Room for an eighth of the sessions at once, least recently
            // used first: one O(n) pass per n/8 new sessions, not per one.
            let room = (map.entries.len() / 8).max(1);
            let mut ages: Vec<Duration> = map.entries.values().map(|e| e.last_used).collect();
            let cutoff = *ages.select_nth_unstable(room - 1).1;
            let mut removed = 0;
            map.entries.retain(|_, e| {
                let evict = removed < room && e.last_used <= cutoff;
                removed += usize::from(evict);
                !evict
            });
            map.bytes = map.entries.values().map(|e| e.bytes).sum();
        }
    }
}

impl MemorySessions {
    /// The session's turns, oldest first; `None` when it is unknown,
    /// expired or not `owner`'s.
    pub fn history(&self, session_id: &str, owner: &str) -> Option<Vec<Turn>> {
        let now = self.clock.now();
        let mut map = self.lock();
        let entry = map.entries.get(session_id)?;
        if self.expired(entry, now) {
            let bytes = entry.bytes;
            map.entries.remove(session_id);
            map.bytes -= bytes;
            return None;
        }
        (*entry.owner == *owner).then(|| entry.turns.clone())
    }

    /// Appends one exchange; keeps the last [`HISTORY_WINDOW`] turns. With
    /// `create` a session that does not exist (or expired) is started for
    /// `owner`; without, only a live one of `owner`'s is extended. False
    /// when the exchange was not kept (another identity's id, or gone).
    pub fn append(
        &self,
        session_id: &str,
        owner: &str,
        user: &str,
        assistant: &str,
        create: bool,
    ) -> bool {
        let now = self.clock.now();
        let mut map = self.lock();
        let map = &mut *map;
        let live = map
            .entries
            .get(session_id)
            .is_some_and(|e| !self.expired(e, now));
        if !create && !live {
            return false;
        }
        if !map.entries.contains_key(session_id) {
            let incoming = session_id.len() + owner.len() + user.len() + assistant.len();
            self.make_room(map, now, incoming);
        }
        let entry = map
            .entries
            .entry(session_id.to_string())
            .or_insert_with(|| Entry {
                owner: owner.into(),
                turns: Vec::new(),
                last_used: now,
                bytes: 0,
            });
        if *entry.owner != *owner {
            return false;
        }
        let before = entry.bytes;
        if self.expired(entry, now) {
            entry.turns.clear();
        }
        entry.turns.push(Turn::new("user", user));
        entry.turns.push(Turn::new("assistant", assistant));
        let excess = entry.turns.len().saturating_sub(HISTORY_WINDOW);
        entry.turns.drain(..excess);
        entry.last_used = now;
        entry.measure(session_id);
        map.bytes = map.bytes - before + entry.bytes;
        true
    }

    /// Forgets the session; true when it existed and was `owner`'s.
    pub fn clear(&self, session_id: &str, owner: &str) -> bool {
        let now = self.clock.now();
        let mut map = self.lock();
        let ours = map
            .entries
            .get(session_id)
            .is_some_and(|e| *e.owner == *owner && !self.expired(e, now));
        if ours && let Some(e) = map.entries.remove(session_id) {
            map.bytes -= e.bytes;
        }
        ours
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mangaassist_bedrock::clock::ManualClock;

    fn store(clock: &Arc<ManualClock>) -> MemorySessions {
        MemorySessions::new(Duration::from_secs(1800), 3, 1 << 20, clock.clone())
    }

    #[test]
    fn keeps_the_last_ten_turns_in_order() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        for i in 0..8 {
            assert!(s.append("a", "o", &format!("q{i}"), &format!("r{i}"), true));
        }
        let turns = s.history("a", "o").unwrap();
        assert_eq!(turns.len(), HISTORY_WINDOW);
        assert_eq!(turns[0], Turn::new("user", "q3"));
        assert_eq!(turns[9], Turn::new("assistant", "r7"));
    }

    #[test]
    fn idle_sessions_expire_and_clear_forgets() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        s.append("a", "o", "q", "r", true);
        clock.advance(Duration::from_secs(1800));
        assert_eq!(
            s.history("a", "o").unwrap().len(),
            2,
            "exactly the TTL: still kept"
        );
        clock.advance(Duration::from_secs(1801));
        assert!(s.history("a", "o").is_none());
        s.append("b", "o", "q", "r", true);
        assert!(!s.clear("b", "thief"));
        assert!(s.clear("b", "o"));
        assert!(!s.clear("b", "o"));
        assert!(s.history("b", "o").is_none());
    }

    #[test]
    fn the_least_recently_used_session_makes_room() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        for id in ["a", "b", "c"] {
            s.append(id, "o", "q", "r", true);
            clock.advance(Duration::from_secs(1));
        }
        s.append("a", "o", "q2", "r2", true);
        s.append("d", "o", "q", "r", true);
        assert!(s.history("b", "o").is_none(), "b was least recently used");
        assert_eq!(s.history("a", "o").unwrap().len(), 4);
        assert_eq!(s.history("d", "o").unwrap().len(), 2);
    }

    #[test]
    fn a_session_is_its_owner_s_alone() {
        let clock = Arc::new(ManualClock::default());
        let s = store(&clock);
        assert!(s.append("a", "key:alice", "q", "r", true));
        assert!(s.history("a", "key:mallory").is_none());
        assert!(!s.append("a", "key:mallory", "q", "r", true));
        assert!(
            !s.append("never-issued", "key:alice", "q", "r", false),
            "without create, an unknown id starts nothing"
        );
        assert!(s.history("never-issued", "key:alice").is_none());
        assert!(!s.clear("a", "key:mallory"));
        assert_eq!(s.history("a", "key:alice").unwrap().len(), 2);
    }

    #[test]
    fn bytes_are_bounded_too() {
        let clock = Arc::new(ManualClock::default());
        let s = MemorySessions::new(Duration::from_secs(1800), 1000, 10_000, clock.clone());
        let big = "x".repeat(1_000);
        for i in 0..100 {
            s.append(&format!("s{i}"), "o", &big, &big, true);
            clock.advance(Duration::from_millis(1));
        }
        let map = s.lock();
        assert!(map.bytes <= 10_000, "{}", map.bytes);
        assert_eq!(
            map.bytes,
            map.entries.values().map(|e| e.bytes).sum::<usize>()
        );
        assert!(map.entries.contains_key("s99"), "the newest is kept");
    }
}
