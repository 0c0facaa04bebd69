//! The embedded queue on a real SQLite file: delivery, visibility,
//! dead letters and redrive, FIFO groups, durability across a reopen, and
//! two processes' worth of receivers never sharing a message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use mangaassist_queue::{EmbeddedQueue, Outgoing, QueuePolicy};

fn file(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mangaassist-queue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.sqlite"));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

fn msg(body: &str) -> Outgoing {
    Outgoing {
        body: body.into(),
        group: None,
        dedup_id: None,
    }
}

fn in_group(body: &str, group: &str) -> Outgoing {
    Outgoing {
        body: body.into(),
        group: Some(group.into()),
        dedup_id: Some(body.into()),
    }
}

const LONG: Duration = Duration::from_secs(60);

#[test]
fn messages_are_delivered_hidden_deleted_and_deduplicated() {
    let q = EmbeddedQueue::open(&file("basic"), QueuePolicy::default()).unwrap();
    let dedup = |b: &str| Outgoing {
        dedup_id: Some(format!("id-{b}")),
        ..msg(b)
    };
    assert_eq!(
        q.send("jobs", &[dedup("a"), dedup("b"), dedup("a")])
            .unwrap(),
        2
    );
    assert_eq!(q.send("other", &[msg("x")]).unwrap(), 1);
    let got = q.receive("jobs", 10, LONG).unwrap();
    assert_eq!(
        got.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(got.iter().all(|m| m.receive_count == 1));
    assert!(
        q.receive("jobs", 10, LONG).unwrap().is_empty(),
        "hidden while in flight"
    );
    let depth = q.depth("jobs").unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 2, 0));
    assert!(q.delete(&got[0].receipt).unwrap());
    assert!(!q.delete(&got[0].receipt).unwrap(), "deleted once");
    assert_eq!(q.depth("jobs").unwrap().in_flight, 1);
    assert_eq!(q.receive("other", 10, LONG).unwrap()[0].body, "x");
}

#[test]
fn a_message_not_deleted_in_time_is_delivered_again_and_the_old_receipt_is_stale() {
    let q = EmbeddedQueue::open(&file("visibility"), QueuePolicy::default()).unwrap();
    q.send("jobs", &[msg("a")]).unwrap();
    let first = q.receive("jobs", 1, Duration::from_millis(100)).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let second = q.receive("jobs", 1, LONG).unwrap();
    assert_eq!(second[0].receive_count, 2);
    assert!(
        !q.delete(&first[0].receipt).unwrap(),
        "the first receiver lost it"
    );
    assert!(!q.change_visibility(&first[0].receipt, LONG).unwrap());
    assert!(
        q.change_visibility(&second[0].receipt, Duration::from_millis(0))
            .unwrap()
    );
    assert_eq!(q.receive("jobs", 1, LONG).unwrap()[0].receive_count, 3);
}

#[test]
fn too_many_receives_move_a_message_to_the_dead_letters_and_redrive_brings_it_back() {
    let q = EmbeddedQueue::open(&file("dead"), QueuePolicy { max_receives: 2 }).unwrap();
    q.send("jobs", &[msg("bad"), msg("good")]).unwrap();
    for attempt in 1..=2 {
        let got = q.receive("jobs", 10, LONG).unwrap();
        assert_eq!(got.len(), 2, "attempt {attempt}");
        for m in got {
            if m.body == "bad" {
                assert!(
                    q.release(&m.receipt, Duration::ZERO, &format!("throttled #{attempt}"))
                        .unwrap()
                );
            } else if attempt == 2 {
                assert!(q.delete(&m.receipt).unwrap());
            } else {
                assert!(q.release(&m.receipt, Duration::ZERO, "slow").unwrap());
            }
        }
    }
    assert!(
        q.receive("jobs", 10, LONG).unwrap().is_empty(),
        "moved, not delivered"
    );
    let dead = q.dead_letters("jobs").unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].body.as_str(), dead[0].receive_count), ("bad", 2));
    assert_eq!(dead[0].last_error.as_deref(), Some("throttled #2"));
    assert_eq!(q.depth("jobs").unwrap().dead, 1);
    assert_eq!(q.redrive("jobs").unwrap(), 1);
    let again = q.receive("jobs", 10, LONG).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 1, "a fresh start");
    assert_eq!(again[0].last_error.as_deref(), Some("throttled #2"));
}

#[test]
fn a_fifo_group_is_delivered_one_at_a_time_in_order() {
    let q = EmbeddedQueue::open(&file("fifo"), QueuePolicy::default()).unwrap();
    q.send(
        "enrich.fifo",
        &[
            in_group("a1", "a"),
            in_group("b1", "b"),
            in_group("a2", "a"),
            in_group("a3", "a"),
        ],
    )
    .unwrap();
    let bodies = |got: &[mangaassist_queue::Received]| {
        got.iter().map(|m| m.body.clone()).collect::<Vec<_>>()
    };
    let first = q.receive("enrich.fifo", 10, LONG).unwrap();
    assert_eq!(bodies(&first), ["a1", "b1"]);
    assert!(
        q.receive("enrich.fifo", 10, LONG).unwrap().is_empty(),
        "a2 waits for a1"
    );
    // a1 fails and comes back later: a2 still waits (order is kept).
    q.release(&first[0].receipt, Duration::from_millis(1_500), "retry")
        .unwrap();
    assert!(q.receive("enrich.fifo", 10, LONG).unwrap().is_empty());
    std::thread::sleep(Duration::from_millis(1_700));
    let retry = q.receive("enrich.fifo", 10, LONG).unwrap();
    assert_eq!(bodies(&retry), ["a1"]);
    assert!(q.delete(&retry[0].receipt).unwrap());
    let next = q.receive("enrich.fifo", 10, LONG).unwrap();
    assert_eq!(bodies(&next), ["a2"]);
}

#[test]
fn messages_outlive_the_process_that_sent_them() {
    let path = file("durable");
    {
        let q = EmbeddedQueue::open(&path, QueuePolicy::default()).unwrap();
        q.send("jobs", &[msg("kept"), msg("in flight")]).unwrap();
        let got = q.receive("jobs", 1, Duration::from_millis(2_000)).unwrap();
        assert_eq!(got[0].body, "kept");
        // The process "dies" here without deleting it.
    }
    let q = EmbeddedQueue::open(&path, QueuePolicy::default()).unwrap();
    assert_eq!(q.receive("jobs", 10, LONG).unwrap()[0].body, "in flight");
    std::thread::sleep(Duration::from_millis(2_200));
    let back = q.receive("jobs", 10, LONG).unwrap();
    assert_eq!(back[0].body, "kept", "visible again after its timeout");
    assert_eq!(back[0].receive_count, 2);
}

#[test]
fn two_receivers_on_one_file_never_share_a_message() {
    let path = file("shared");
    let q = EmbeddedQueue::open(&path, QueuePolicy::default()).unwrap();
    let sent: Vec<Outgoing> = (0..300).map(|i| msg(&i.to_string())).collect();
    q.send("jobs", &sent).unwrap();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let q = EmbeddedQueue::open(&path, QueuePolicy::default()).unwrap();
                let mut got = Vec::new();
                loop {
                    let batch = q.receive("jobs", 10, LONG).unwrap();
                    if batch.is_empty() {
                        break got;
                    }
                    for m in batch {
                        assert!(q.delete(&m.receipt).unwrap());
                        got.push(m.body);
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(all.len(), 300, "each message once");
    assert_eq!(unique.len(), 300);
}
