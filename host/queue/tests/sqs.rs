//! The SQS backend against moto's server on 127.0.0.1 with the real SDK:
//! queues with dead-letter queues, batches, visibility, FIFO order, the
//! redrive policy, explicit dead letters with their error, and redrive.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use std::time::Duration;

use mangaassist_queue::{EmbeddedQueue, JobQueue, Outgoing, QueuePolicy, SqsQueue};
use mangaassist_test_stores::MotoServer;

fn queue(moto: &MotoServer, max_receives: u32) -> SqsQueue {
    let config = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .http_client(mangaassist_bedrock::invoker::https_client(4))
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    SqsQueue::new(
        aws_sdk_sqs::Client::from_conf(config),
        QueuePolicy { max_receives },
    )
}

fn msg(body: &str) -> Outgoing {
    Outgoing {
        body: body.into(),
        group: None,
        dedup_id: None,
    }
}

const LONG: Duration = Duration::from_secs(60);
const NO_WAIT: Duration = Duration::ZERO;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_visibility_and_the_redrive_policy() {
    let moto = MotoServer::start();
    let q = queue(&moto, 2);
    q.create("synopsis").await.unwrap();
    let sent: Vec<Outgoing> = (0..25).map(|i| msg(&format!("item-{i}"))).collect();
    assert_eq!(
        q.send("synopsis", &sent).await.unwrap(),
        25,
        "three batches"
    );
    let mut got = Vec::new();
    loop {
        let batch = q.receive("synopsis", 10, LONG, NO_WAIT).await.unwrap();
        assert!(batch.len() <= 10);
        if batch.is_empty() {
            break;
        }
        got.extend(batch);
    }
    assert_eq!(got.len(), 25);
    let depth = q.depth("synopsis").await.unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 25));
    for m in &got[1..] {
        q.delete("synopsis", &m.receipt).await.unwrap();
    }
    // The one left keeps failing: visible again at once, twice, then the
    // redrive policy (maxReceiveCount 2) moves it.
    q.change_visibility("synopsis", &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();
    let again = q
        .receive("synopsis", 10, Duration::ZERO, NO_WAIT)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, 2);
    assert!(
        q.receive("synopsis", 10, LONG, NO_WAIT)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(q.depth("synopsis").await.unwrap().dead, 1);
    let dead = q.dead_letters("synopsis").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, got[0].body);
    assert_eq!(q.redrive("synopsis").await.unwrap(), 1);
    let back = q.receive("synopsis", 10, LONG, NO_WAIT).await.unwrap();
    assert_eq!(back[0].body, got[0].body);
    assert_eq!(q.depth("synopsis").await.unwrap().dead, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_keep_order_and_dead_letters_keep_their_error() {
    let moto = MotoServer::start();
    let q = queue(&moto, 5);
    q.create("enrich.fifo").await.unwrap();
    let in_group = |body: &str, group: &str| Outgoing {
        body: body.into(),
        group: Some(group.into()),
        dedup_id: Some(body.into()),
    };
    let sent = [
        in_group("a1", "a"),
        in_group("a2", "a"),
        in_group("a3", "a"),
        in_group("a1", "a"),
    ];
    q.send("enrich.fifo", &sent).await.unwrap();
    let mut order = Vec::new();
    loop {
        let batch = q.receive("enrich.fifo", 1, LONG, NO_WAIT).await.unwrap();
        let Some(m) = batch.into_iter().next() else {
            break;
        };
        order.push(m.body.clone());
        if m.body == "a3" {
            q.dead_letter("enrich.fifo", &m, "bedrock_rejected: too long", Some("a"))
                .await
                .unwrap();
        } else {
            q.delete("enrich.fifo", &m.receipt).await.unwrap();
        }
    }
    assert_eq!(order, ["a1", "a2", "a3"], "in order, the duplicate dropped");
    let dead = q.dead_letters("enrich.fifo").await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "a3");
    assert_eq!(
        dead[0].last_error.as_deref(),
        Some("bedrock_rejected: too long")
    );
}

/// One scenario through [`JobQueue`], the same on both backends.
async fn one_interface(q: &JobQueue, name: &str) {
    let sent: Vec<Outgoing> = ["ok-1", "ok-2", "flaky", "hopeless"]
        .iter()
        .map(|b| msg(b))
        .collect();
    assert_eq!(q.send(name, sent).await.unwrap(), 4);
    let got = q
        .receive(name, 10, LONG, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 4, "{name}");
    for m in &got {
        match m.body.as_str() {
            "flaky" => q
                .retry_later(name, m, Duration::ZERO, "ThrottlingException")
                .await
                .unwrap(),
            "hopeless" => q.give_up(name, m, "bedrock_rejected").await.unwrap(),
            _ => q.delete(name, m).await.unwrap(),
        }
    }
    let again = q
        .receive(name, 10, LONG, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        ("flaky", 2)
    );
    q.delete(name, &again[0]).await.unwrap();
    let dead = q.dead_letters(name).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "hopeless");
    assert_eq!(dead[0].last_error.as_deref(), Some("bedrock_rejected"));
    // An empty queue: the receive waits out its wait, then answers empty.
    let started = std::time::Instant::now();
    assert!(
        q.receive(name, 10, LONG, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{name}: {:?}",
        started.elapsed()
    );
    assert_eq!(q.redrive(name).await.unwrap(), 1);
    let back = q
        .receive(name, 10, LONG, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(back[0].body, "hopeless");
    q.delete(name, &back[0]).await.unwrap();
    let depth = q.depth(name).await.unwrap();
    assert_eq!(
        (depth.visible, depth.in_flight, depth.dead),
        (0, 0, 0),
        "{name}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_interface_two_backends() {
    let dir = std::env::temp_dir().join(format!("mangaassist-jobqueue-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("queue.sqlite");
    let _ = std::fs::remove_file(&file);
    let embedded = JobQueue::Embedded(std::sync::Arc::new(
        EmbeddedQueue::open(&file, QueuePolicy::default()).unwrap(),
    ));
    one_interface(&embedded, "synopsis").await;

    let moto = MotoServer::start();
    let sqs = queue(&moto, 5);
    sqs.create("synopsis").await.unwrap();
    one_interface(&JobQueue::Sqs(std::sync::Arc::new(sqs)), "synopsis").await;
    let _ = std::fs::remove_dir_all(&dir);
}
