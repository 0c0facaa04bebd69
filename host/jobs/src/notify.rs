//! The completion callback: when a job's last item is recorded, its view
//! (`GET /v1/jobs/{id}`'s body) is POSTed to the configured URL, signed so
//! the receiver knows it came from us and is fresh:
//!
//! `X-MangaAssist-Timestamp: <unix seconds>` and
//! `X-MangaAssist-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//!
//! The receiver recomputes the HMAC over the timestamp, a dot and the raw
//! body, compares in constant time, and refuses old timestamps (replays).

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use crate::record::JobView;

/// Header with the signing time.
pub const TIMESTAMP_HEADER: &str = "x-mangaassist-timestamp";
/// Header with the signature.
pub const SIGNATURE_HEADER: &str = "x-mangaassist-signature";
/// Shortest secret accepted (as for user tokens).
pub const MIN_SECRET_BYTES: usize = 32;
/// Tries of one callback.
const TRIES: u32 = 4;
/// Longest wait for one try.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends signed completion callbacks.
pub struct Notifier {
    url: hyper::Uri,
    secret: Vec<u8>,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    first_backoff: Duration,
}

/// The signature header's value for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

impl Notifier {
    /// Whether `url` and `secret` can make a notifier (the configuration
    /// is checked with this before anything starts).
    pub fn check(url: &str, secret: &str) -> Result<hyper::Uri, String> {
        let parsed: hyper::Uri = url
            .parse()
            .map_err(|e| format!("jobs_callback_url {url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme_str(), Some("http" | "https")) || parsed.host().is_none() {
            return Err(format!(
                "jobs_callback_url {url:?} must be an http:// or https:// URL with a host"
            ));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "jobs_callback_secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
        Ok(parsed)
    }

    /// Callbacks to `url` (http or https) signed with `secret`.
    pub fn new(url: &str, secret: &str) -> Result<Self, String> {
        let parsed = Self::check(url, secret)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map_err(|e| format!("cannot load the system's TLS roots: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Notifier {
            url: parsed,
            secret: secret.as_bytes().to_vec(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            first_backoff: Duration::from_millis(500),
        })
    }

    /// The same, with `backoff` before the second try (doubling after).
    pub fn with_backoff(mut self, backoff: Duration) -> Self {
        self.first_backoff = backoff;
        self
    }

    /// POSTs `view`, retrying a refused or failed delivery; `Err` after the
    /// last try (the job is complete either way: the callback is a notice).
    pub async fn send(&self, view: &JobView, now_unix: u64) -> Result<(), String> {
        let body = serde_json::to_vec(view).map_err(|e| e.to_string())?;
        let signature = sign(&self.secret, now_unix, &body);
        let mut backoff = self.first_backoff;
        let mut last = String::new();
        for attempt in 1..=TRIES {
            let request = hyper::Request::post(self.url.clone())
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::USER_AGENT, "mangaassist-jobs")
                .header(TIMESTAMP_HEADER, now_unix.to_string())
                .header(SIGNATURE_HEADER, &signature)
                .body(Full::new(Bytes::from(body.clone())))
                .map_err(|e| e.to_string())?;
            match tokio::time::timeout(TRY_TIMEOUT, self.client.request(request)).await {
                Ok(Ok(response)) if response.status().is_success() => {
                    // Drain the body so the connection can be reused.
                    let _ = response.into_body().collect().await;
                    return Ok(());
                }
                Ok(Ok(response)) => last = format!("the receiver answered {}", response.status()),
                Ok(Err(e)) => last = format!("cannot reach the receiver: {e}"),
                Err(_) => last = format!("no answer within {} s", TRY_TIMEOUT.as_secs()),
            }
            if attempt < TRIES {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        Err(format!(
            "completion callback of job {} not delivered after {TRIES} tries: {last}",
            view.job_id
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_dot_body() {
        // The digest as Python's hmac computes it (what a receiver runs):
        // hmac.new(b"Jefe", b"1700000000.{}", hashlib.sha256).hexdigest()
        let sig = sign(b"Jefe", 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "v1=d3793e2b4103edfbd98cc19591832f5fad701d413db9fcae0ae7dab8184ed207"
        );
        assert_ne!(sig, sign(b"Jefe", 1_700_000_001, b"{}"));
        assert_ne!(sig, sign(b"Jeff", 1_700_000_000, b"{}"));
    }

    #[test]
    fn bad_urls_and_short_secrets_are_refused() {
        let secret = "s".repeat(32);
        assert!(Notifier::new("ftp://x/", &secret).is_err());
        assert!(Notifier::new("not a url", &secret).is_err());
        assert!(Notifier::new("http://127.0.0.1:9/hook", "short").is_err());
    }
}
