//! The jobs API over real HTTP: a job accepted, worked by the service's
//! own workers against its embedded emulator, its state and results; jobs
//! kept from other identities; every refusal of a bad job; the body limit.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mangaassist_service::identity::hash_key;
use serde_json::{Value, json};

use crate::http::{Response, exchange, raw_request};
use crate::serve::serve;

fn guarded(extra: &str) -> crate::serve::Running {
    serve(&format!(
        "auth_required = true\n\
         api_keys = [{{ id = \"alice\", sha256 = \"{}\" }}, {{ id = \"mallory\", sha256 = \"{}\" }}]\n{extra}",
        hash_key("alice-key"),
        hash_key("mallory-key"),
    ))
}

const ALICE: &str = "X-Api-Key: alice-key";
const MALLORY: &str = "X-Api-Key: mallory-key";

fn post_job(addr: SocketAddr, who: &str, body: &[u8]) -> Response {
    exchange(
        addr,
        &raw_request(
            "POST",
            "/v1/jobs",
            &["Content-Type: application/json", who],
            body,
        ),
    )
}

fn get_as(addr: SocketAddr, who: &str, path: &str) -> Response {
    exchange(addr, &raw_request("GET", path, &[who], b""))
}

fn catalog(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("isbn-{i:03}"), "title": format!("第{i}巻"), "author": "尾田栄一郎"}))
        .collect();
    json!({"task": "synopsis", "language": "en", "items": items})
}

#[test]
fn a_job_is_accepted_worked_and_its_results_read_by_its_owner_only() {
    let running = guarded("");
    let addr = running.addr();
    let r = post_job(addr, ALICE, catalog(7).to_string().as_bytes());
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let created = r.json();
    let id = created["jobId"].as_str().unwrap().to_string();
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/jobs/{id}").as_str())
    );
    assert_eq!(created["total"], 7);
    assert_eq!(created["task"], "synopsis");
    let path = format!("/v1/jobs/{id}");
    let started = Instant::now();
    let job = loop {
        let job = get_as(addr, ALICE, &path).json();
        if job["state"] == "completed" {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{job}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (
            job["done"].as_u64(),
            job["failed"].as_u64(),
            job["pending"].as_u64()
        ),
        (Some(7), Some(0), Some(0))
    );
    assert!(job["costUsd"].as_f64().unwrap() > 0.0);
    let results = get_as(addr, ALICE, &format!("{path}/results"));
    assert_eq!(results.status, 200);
    assert_eq!(results.header("content-type"), Some("application/x-ndjson"));
    let text = String::from_utf8(results.body.clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["id"], format!("isbn-{i:03}"));
        assert_eq!(line["status"], "done");
        assert_eq!(line["task"], "synopsis");
        assert!(line["text"].as_str().unwrap().len() > 10, "{line}");
    }
    // Another identity sees no such job, as for an unknown or bad id.
    for p in [
        path.clone(),
        format!("{path}/results"),
        "/v1/jobs/123e4567-e89b-42d3-a456-426614174000".to_string(),
        "/v1/jobs/not-a-uuid".to_string(),
        "/v1/jobs/%FF%FE".to_string(),
    ] {
        let who = if p.starts_with(&path) { MALLORY } else { ALICE };
        let r = get_as(addr, who, &p);
        assert_eq!(r.status, 404, "{p}");
        assert_eq!(r.code(), "job_not_found", "{p}");
    }
    // No credential: refused before anything is read.
    let r = exchange(addr, &raw_request("GET", &path, &[], b""));
    assert_eq!(r.status, 401);
    let metrics = String::from_utf8(crate::http::get(running.admin(), "/metrics").body).unwrap();
    assert!(metrics.contains("route=\"jobs\""), "{metrics}");
}

#[test]
fn bad_jobs_are_refused_with_every_violation() {
    let running = serve("");
    let addr = running.addr();
    let anyone = "X-Nothing: 1";
    let refused = |body: &[u8]| {
        let r = post_job(addr, anyone, body);
        (r.status, r.code(), r.json())
    };
    let (status, code, _) = refused(b"{not json");
    assert_eq!((status, code.as_str()), (400, "invalid_json"));
    let (status, code, body) = refused(
        json!({"task": "translate", "items": [{"id": "a b", "title": ""}, {"id": "x", "title": "t", "extra": 1}]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!((status, code.as_str()), (400, "contract_violation"));
    let paths: Vec<&str> = body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    for want in ["/task", "/items/0/id", "/items/0/title", "/items/1/extra"] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }
    let (status, code, body) = refused(catalog(1001).to_string().as_bytes());
    assert_eq!(
        (status, code.as_str()),
        (400, "contract_violation"),
        "{body}"
    );
    let dup =
        json!({"task": "enrich", "items": [{"id": "a", "title": "x"}, {"id": "a", "title": "y"}]});
    let (status, _, body) = refused(dup.to_string().as_bytes());
    assert_eq!(status, 400);
    assert!(body.to_string().contains("duplicate_id"), "{body}");
    // Not JSON by its Content-Type.
    let r = exchange(
        addr,
        &raw_request(
            "POST",
            "/v1/jobs",
            &["Content-Type: text/plain"],
            catalog(1).to_string().as_bytes(),
        ),
    );
    assert_eq!(r.status, 415);
    // Wrong method.
    let r = exchange(addr, &raw_request("DELETE", "/v1/jobs", &[], b""));
    assert_eq!(r.status, 405);
}

#[test]
fn a_job_over_the_body_limit_is_413_before_it_is_read() {
    let running = serve("jobs_max_body_bytes = 10000");
    let addr = running.addr();
    let big = catalog(400).to_string();
    assert!(big.len() > 10_000);
    let r = post_job(addr, "X-Nothing: 1", big.as_bytes());
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), "body_too_large");
    // Within the limit it is taken.
    let r = post_job(addr, "X-Nothing: 1", catalog(20).to_string().as_bytes());
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn an_api_only_replica_queues_jobs_and_works_none() {
    let running = serve("jobs_workers = 0");
    let addr = running.addr();
    let r = post_job(addr, "X-Nothing: 1", catalog(3).to_string().as_bytes());
    assert_eq!(r.status, 202);
    let id = r.json()["jobId"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(500));
    let job = get_as(addr, "X-Nothing: 1", &format!("/v1/jobs/{id}")).json();
    assert_eq!(job["state"], "queued", "{job}");
    assert_eq!(job["pending"], 3);
    assert_eq!(
        running.server().emulator().unwrap().requests("us-east-1"),
        0
    );
}
