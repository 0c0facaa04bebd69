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

use mangaassist_queue::{Outgoing, QueuePolicy, SqsQueue};
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
