//! The service's request path in-process: arbitrary method, path, headers
//! and body through the public router of a running service (embedded
//! emulator, embedded policy). Whatever comes in, the answer is never a
//! 500, and every refusal is SPEC 10's error body with a snake_case code.

use std::net::SocketAddr;
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use mangaassist_service::config::resolve;
use mangaassist_service::routes::router;
use mangaassist_service::server::{Server, start};
use serde_json::Value;
use tower::ServiceExt;

use crate::is_code;

struct Running {
    runtime: tokio::runtime::Runtime,
    router: Router,
    _server: Server,
}

fn running() -> &'static Running {
    static RUNNING: OnceLock<Running> = OnceLock::new();
    RUNNING.get_or_init(|| {
        let jobs_dir =
            std::env::temp_dir().join(format!("mangaassist-fuzz-{}", std::process::id()));
        let config = format!(
            "listen = \"127.0.0.1:0\"\nemulator_ttft_ms = 0\nemulator_per_token_ms = 0\n\
             rate_per_second = 100000000\nrate_burst = 100000000\n\
             client_rate_per_second = 100000000\nclient_rate_burst = 100000000\n\
             budget_tokens_per_minute = 100000000000\nbudget_usd_per_day = 100000000.0\n\
             jobs_dir = {:?}\n",
            jobs_dir.display().to_string()
        );
        let resolved = match resolve("dev", Some(&config), &[]) {
            Ok(r) => r,
            Err(e) => panic!("the fuzz configuration does not resolve: {e}"),
        };
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => panic!("no tokio runtime: {e}"),
        };
        let server = match runtime.block_on(start(resolved)) {
            Ok(s) => s,
            Err(e) => panic!("the service does not start: {e}"),
        };
        Running {
            router: router(server.service().clone()),
            runtime,
            _server: server,
        }
    })
}

const METHODS: &[Method] = &[
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
];
const PATHS: &[&str] = &[
    "/v1/chat",
    "/v1/jobs",
    "/v1/jobs/00000000-0000-4000-8000-000000000000",
    "/v1/jobs/x/results",
    "/v1/ws",
    "/healthz",
    "/",
    "/index.html",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-ndjson",
    "",
];

#[derive(Debug, Arbitrary)]
struct HttpCase {
    method: u8,
    path: u8,
    /// Used when `path` picks none of PATHS.
    raw_path: String,
    content_type: u8,
    authorization: Option<String>,
    api_key: Option<String>,
    host: Option<String>,
    /// A valid chat request around an arbitrary message, or the raw body.
    wrap_message: bool,
    body: String,
}

/// One arbitrary request through the router.
pub fn service(data: &[u8]) {
    let Ok(case) = HttpCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let method = METHODS[usize::from(case.method) % METHODS.len()].clone();
    // A HEAD answer has the headers of its GET and no body (RFC 9110):
    // hyper leaves the body off on the wire, so the router's may be either.
    let bodiless = method == Method::HEAD;
    let path = PATHS
        .get(usize::from(case.path))
        .map_or_else(|| format!("/{}", case.raw_path), |p| (*p).to_string());
    let mut request = Request::builder().method(method).uri(path.as_str());
    let content_type = CONTENT_TYPES[usize::from(case.content_type) % CONTENT_TYPES.len()];
    if !content_type.is_empty() {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    for (name, value) in [
        (header::AUTHORIZATION.as_str(), &case.authorization),
        ("x-api-key", &case.api_key),
        (header::HOST.as_str(), &case.host),
    ] {
        if let Some(v) = value {
            request = request.header(name, v.as_str());
        }
    }
    let body = if case.wrap_message {
        serde_json::json!({ "action": "sendMessage", "data": { "message": case.body } }).to_string()
    } else {
        case.body
    };
    // Bytes the HTTP layer itself refuses (a bad URI or header) never reach
    // the router: nothing to check.
    let Ok(mut request) = request.body(Body::from(body)) else {
        return;
    };
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let r = running();
    let (status, content_type, bytes) = r.runtime.block_on(async {
        let response = match r.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = match to_bytes(response.into_body(), 16 * 1024 * 1024).await {
            Ok(b) => b,
            Err(e) => panic!("the response body failed: {e}"),
        };
        (status, content_type, bytes)
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", bytes);
    if (status.is_client_error() || status.is_server_error())
        && content_type.starts_with("application/json")
        && !bodiless
    {
        let doc: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => panic!("a {status} body is not JSON ({e}): {bytes:?}"),
        };
        let code = doc
            .pointer("/error/code")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(is_code(code), "a {status} without an error code: {doc}");
        assert!(doc.pointer("/error/message").is_some_and(Value::is_string));
    }
}
