//! The AWS stores against moto's server on 127.0.0.1 with the real SDKs:
//! sessions in DynamoDB (no turn lost to concurrent replicas, owners,
//! expiry, an outage waited out) and settings from SSM Parameter Store.

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use mangaassist_service::config::resolve_layers;
use mangaassist_service::dynamo_sessions::{DynamoSessions, create_table};
use mangaassist_service::ssm_config;
use mangaassist_service::store_metrics::StoreMetrics;
use mangaassist_test_stores::MotoServer;

fn dynamodb(moto: &MotoServer) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(mangaassist_bedrock::invoker::https_client(4))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

fn ssm(moto: &MotoServer) -> aws_sdk_ssm::Client {
    let config = aws_sdk_ssm::Config::builder()
        .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
        .http_client(mangaassist_bedrock::invoker::https_client(4))
        .region(aws_sdk_ssm::config::Region::new("us-east-1"))
        .endpoint_url(moto.url())
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .build();
    aws_sdk_ssm::Client::from_conf(config)
}

fn sessions(moto: &MotoServer, ttl: Duration) -> DynamoSessions {
    DynamoSessions::new(
        dynamodb(moto),
        "sessions",
        ttl,
        Duration::from_millis(2_000),
        StoreMetrics::default(),
    )
}

/// The stored version of a session: one more per exchange written.
async fn version(client: &aws_sdk_dynamodb::Client, id: &str) -> u64 {
    let item = client
        .get_item()
        .table_name("sessions")
        .key("sessionId", AttributeValue::S(id.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    item.item().unwrap()["version"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_appending_to_one_session_lose_no_turn() {
    let moto = MotoServer::start();
    assert!(create_table(&dynamodb(&moto), "sessions").await.unwrap());
    assert!(
        !create_table(&dynamodb(&moto), "sessions").await.unwrap(),
        "a second run finds the table"
    );
    // Three replicas, each its own client, ten exchanges each, all at once.
    let replicas: Vec<Arc<DynamoSessions>> = (0..3)
        .map(|_| Arc::new(sessions(&moto, Duration::from_secs(1800))))
        .collect();
    let first = replicas[0].clone();
    assert!(
        first
            .append(
                "s1",
                "key:alice",
                [&turn("user", "start"), &turn("assistant", "ok")],
                true
            )
            .await
            .unwrap()
    );
    let mut tasks = Vec::new();
    for (r, replica) in replicas.iter().enumerate() {
        for i in 0..10 {
            let replica = Arc::clone(replica);
            tasks.push(tokio::spawn(async move {
                let q = format!("q{r}-{i}");
                let a = format!("a{r}-{i}");
                replica
                    .append(
                        "s1",
                        "key:alice",
                        [&turn("user", &q), &turn("assistant", &a)],
                        false,
                    )
                    .await
            }));
        }
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap(), "every append kept");
    }
    assert_eq!(
        version(&dynamodb(&moto), "s1").await,
        31,
        "31 exchanges written, none overwritten"
    );
    let turns = first.history("s1", "key:alice").await.unwrap().unwrap();
    assert_eq!(turns.len(), 10, "the last ten turns");
    for pair in turns.chunks(2) {
        assert_eq!(pair[0].role, "user");
        assert_eq!(pair[1].role, "assistant");
        assert_eq!(
            pair[0].content[1..],
            pair[1].content[1..],
            "each question with its answer"
        );
    }
}

fn turn(role: &str, content: &str) -> mangaassist_core::body::Turn {
    mangaassist_core::body::Turn::new(role, content)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_its_owner_s_and_expires() {
    let moto = MotoServer::start();
    create_table(&dynamodb(&moto), "sessions").await.unwrap();
    // TTL 2 s in whole seconds: the first steps have at least a second.
    let s = sessions(&moto, Duration::from_secs(2));
    let exchange = [&turn("user", "q"), &turn("assistant", "r")];
    assert!(s.append("a", "key:alice", exchange, true).await.unwrap());
    assert!(s.history("a", "key:mallory").await.unwrap().is_none());
    assert!(!s.append("a", "key:mallory", exchange, true).await.unwrap());
    assert!(!s.clear("a", "key:mallory").await.unwrap());
    assert_eq!(s.history("a", "key:alice").await.unwrap().unwrap().len(), 2);
    assert!(
        !s.append("unknown", "key:alice", exchange, false)
            .await
            .unwrap(),
        "without create, an id that was never issued starts nothing"
    );
    assert!(s.history("unknown", "key:alice").await.unwrap().is_none());
    // Idle past its TTL (DynamoDB deletes late; reads check the time).
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert!(s.history("a", "key:alice").await.unwrap().is_none());
    assert!(!s.clear("a", "key:alice").await.unwrap());
    assert!(s.append("b", "key:alice", exchange, true).await.unwrap());
    assert!(s.clear("b", "key:alice").await.unwrap());
    assert!(!s.clear("b", "key:alice").await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_answered_during_an_outage_are_written_when_it_ends() {
    let moto = MotoServer::start();
    let port = moto.port;
    create_table(&dynamodb(&moto), "sessions").await.unwrap();
    let metrics = StoreMetrics::default();
    let s = DynamoSessions::new(
        dynamodb(&moto),
        "sessions",
        Duration::from_secs(1800),
        Duration::from_millis(300),
        metrics.clone(),
    );
    drop(moto);
    // Down: reads fail fast and say so; writes wait, in order.
    let started = std::time::Instant::now();
    assert!(s.history("n", "key:alice").await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(s.keep("n", "key:alice", "q1", "r1", true).await);
    assert!(s.keep("n", "key:alice", "q2", "r2", false).await);
    assert_eq!(s.waiting_count(), 2);
    assert_eq!(metrics.waiting(), 2, "on /metrics");
    assert_eq!(s.retry_waiting().await, 0, "still down: nothing written");
    // Back (moto restarts empty: the table is made again, as an operator
    // restoring DynamoDB would find it).
    let moto = MotoServer::start_on(port);
    create_table(&dynamodb(&moto), "sessions").await.unwrap();
    // Not written yet, but already the session's history on this replica.
    let pending = s.history("n", "key:alice").await.unwrap().unwrap();
    assert_eq!(pending.len(), 4, "{pending:?}");
    assert!(s.history("n", "key:mallory").await.unwrap().is_none());
    assert_eq!(s.retry_waiting().await, 2);
    assert_eq!(s.waiting_count(), 0);
    assert_eq!(metrics.waiting(), 0);
    let turns = s.history("n", "key:alice").await.unwrap().unwrap();
    let texts: Vec<&str> = turns.iter().map(|t| t.content.as_str()).collect();
    assert_eq!(texts, ["q1", "r1", "q2", "r2"], "in the order answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_come_from_ssm_between_the_file_and_the_environment() {
    let moto = MotoServer::start();
    let client = ssm(&moto);
    let put = |name: &str, value: &str, kind: aws_sdk_ssm::types::ParameterType| {
        client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(kind)
            .overwrite(true)
            .send()
    };
    use aws_sdk_ssm::types::ParameterType::{SecureString, String as Text, StringList};
    let secret = "an-hs256-secret-of-at-least-32-bytes!";
    put(
        "/manga-assist/prod/user_token_secrets",
        &format!("[\"{secret}\"]"),
        SecureString,
    )
    .await
    .unwrap();
    put("/manga-assist/prod/rate_per_second", "250", Text)
        .await
        .unwrap();
    put("/manga-assist/prod/client_rate_per_second", "30", Text)
        .await
        .unwrap();
    put(
        "/manga-assist/prod/regions",
        "ap-northeast-1,us-west-2",
        StringList,
    )
    .await
    .unwrap();
    put("/manga-assist/prod/limits/nested", "1", Text)
        .await
        .unwrap();
    // Another environment's parameters are not read.
    put("/manga-assist/staging/rate_per_second", "1", Text)
        .await
        .unwrap();

    let path = ssm_config::path("prod");
    let mut parameters = ssm_config::fetch(&client, &path).await.unwrap();
    assert_eq!(parameters.len(), 5, "{parameters:?}");
    let e = ssm_config::layer(&path, &parameters).unwrap_err();
    assert!(
        e.contains("/manga-assist/prod/limits/nested") && e.contains("unknown field"),
        "{e}"
    );
    parameters.retain(|p| !p.name.ends_with("/nested"));
    let layer = ssm_config::layer(&path, &parameters).unwrap();

    let file = "rate_per_second = 10\nclient_rate_per_second = 5\nmax_body_bytes = 4096\nssm_parameters = true";
    let env = [(
        "MANGAASSIST_CLIENT_RATE_PER_SECOND".to_string(),
        "7".to_string(),
    )];
    let resolved = resolve_layers("prod", Some(file), Some(&layer), &env).unwrap();
    let c = resolved.service;
    assert_eq!(c.max_body_bytes, 4096, "from the file");
    assert_eq!(c.rate_per_second, 250, "SSM over the file");
    assert_eq!(c.client_rate_per_second, 7, "the environment over SSM");
    assert_eq!(c.user_token_secrets, [secret], "SecureString, decrypted");
    assert_eq!(c.regions, ["ap-northeast-1", "us-west-2"], "StringList");
    assert!(c.auth_required, "prod");
    // Without SSM the same file and environment cannot start in prod.
    let e = resolve_layers("prod", Some(file), None, &env).unwrap_err();
    assert!(e.contains("auth_required"), "{e}");
}
