//! Who is asking: an API key (stored as its SHA-256, compared in constant
//! time), a user token (an HS256 JWT the store's backend mints, so browsers
//! never hold a key), or, where the configuration allows it, nobody in
//! particular (counted by address). The identity owns sessions and carries
//! the spend allowance.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::ServiceConfig;
use crate::errors::ApiError;

/// What one identity may spend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowance {
    /// Tokens (in and out) per minute.
    pub tokens_per_minute: u64,
    /// USD per day.
    pub usd_per_day: f64,
    /// Whether `modelPreference: quality` is allowed.
    pub allow_quality: bool,
}

/// An authenticated (or, in dev, anonymous) caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// `key:<id>`, `user:<subject>` or `addr:<address>`: the owner of
    /// sessions and the key of limits and budgets.
    pub label: Arc<str>,
    /// Its spend allowance.
    pub allowance: Allowance,
    /// Unix time its credential expires (user tokens), if it does.
    pub expires_at: Option<u64>,
}

/// One configured key.
struct Key {
    digest: [u8; 32],
    identity: Identity,
}

/// Checks credentials against the configuration.
pub struct Authenticator {
    keys: Vec<Key>,
    secrets: Vec<Vec<u8>>,
    max_ttl_secs: u64,
    required: bool,
    defaults: Allowance,
}

/// The claims of a user token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The store's user id (the identity is `user:<sub>`).
    pub sub: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

#[derive(Deserialize)]
struct JoseHeader {
    alg: String,
}

/// Longest user-token subject, bytes.
const MAX_SUBJECT: usize = 128;
/// Longest token accepted, bytes (a few hundred in practice).
const MAX_TOKEN: usize = 4096;

fn unauthorized(code: &str, message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

impl Authenticator {
    /// From the service configuration (already checked by `config`).
    pub fn new(config: &ServiceConfig) -> Self {
        let defaults = Allowance {
            tokens_per_minute: config.budget_tokens_per_minute,
            usd_per_day: config.budget_usd_per_day,
            allow_quality: config.allow_quality,
        };
        let keys = config
            .api_keys
            .iter()
            .filter_map(|k| {
                let mut digest = [0u8; 32];
                hex_decode(&k.sha256, &mut digest)?;
                Some(Key {
                    digest,
                    identity: Identity {
                        label: format!("key:{}", k.id).into(),
                        allowance: Allowance {
                            tokens_per_minute: k
                                .tokens_per_minute
                                .unwrap_or(defaults.tokens_per_minute),
                            usd_per_day: k.usd_per_day.unwrap_or(defaults.usd_per_day),
                            allow_quality: k.allow_quality.unwrap_or(defaults.allow_quality),
                        },
                        expires_at: None,
                    },
                })
            })
            .collect();
        Authenticator {
            keys,
            secrets: config
                .user_token_secrets
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            max_ttl_secs: config.user_token_max_ttl_secs,
            required: config.auth_required,
            defaults,
        }
    }

    /// The caller of a request: `X-Api-Key`, else `Authorization: Bearer`
    /// (or `token`, the WebSocket query parameter a browser can send), else
    /// anonymous by `address` when authentication is optional. A credential
    /// that is sent but wrong is refused even when none is required.
    pub fn identify(
        &self,
        headers: &HeaderMap,
        query_token: Option<&str>,
        address: &str,
        now_unix: u64,
    ) -> Result<Identity, ApiError> {
        if let Some(key) = headers.get("x-api-key") {
            return self.key(key.as_bytes());
        }
        let bearer = headers
            .get(header::AUTHORIZATION)
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .ok_or_else(|| {
                        unauthorized(
                            "invalid_token",
                            "the Authorization header must be `Bearer <user token>`",
                        )
                    })
            })
            .transpose()?;
        if let Some(token) = bearer.or(query_token) {
            return self.user(token.trim(), now_unix);
        }
        if self.required {
            return Err(unauthorized(
                "auth_required",
                "send an API key (X-Api-Key) or a user token (Authorization: Bearer)",
            ));
        }
        Ok(Identity {
            label: format!("addr:{address}").into(),
            allowance: self.defaults,
            expires_at: None,
        })
    }

    /// The key whose digest matches, compared against every configured
    /// digest in constant time (no early exit that would time the search).
    fn key(&self, key: &[u8]) -> Result<Identity, ApiError> {
        let digest: [u8; 32] = Sha256::digest(key).into();
        let mut found = None;
        for k in &self.keys {
            if bool::from(k.digest.ct_eq(&digest)) {
                found = Some(&k.identity);
            }
        }
        found
            .cloned()
            .ok_or_else(|| unauthorized("invalid_api_key", "the API key is not valid"))
    }

    /// A user token's identity, when its signature, algorithm, expiry and
    /// lifetime are all right.
    fn user(&self, token: &str, now_unix: u64) -> Result<Identity, ApiError> {
        let invalid = || unauthorized("invalid_token", "the user token is not valid");
        if self.secrets.is_empty() || token.len() > MAX_TOKEN {
            return Err(invalid());
        }
        let mut parts = token.split('.');
        let (Some(head), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let header: JoseHeader = decode_part(head).ok_or_else(invalid)?;
        // Only HS256: no "none", no public-key algorithms to confuse.
        if header.alg != "HS256" {
            return Err(invalid());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
        let signed = &token[..head.len() + 1 + payload.len()];
        let verified = self.secrets.iter().any(|secret| {
            Hmac::<Sha256>::new_from_slice(secret).is_ok_and(|mut mac| {
                mac.update(signed.as_bytes());
                mac.verify_slice(&signature).is_ok()
            })
        });
        if !verified {
            return Err(invalid());
        }
        let claims: Claims = decode_part(payload).ok_or_else(invalid)?;
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT {
            return Err(invalid());
        }
        if claims.exp <= now_unix {
            return Err(unauthorized("token_expired", "the user token has expired"));
        }
        if claims.exp - now_unix > self.max_ttl_secs {
            return Err(unauthorized(
                "token_lifetime_too_long",
                &format!(
                    "the user token expires more than {} s from now; mint short-lived tokens",
                    self.max_ttl_secs
                ),
            ));
        }
        Ok(Identity {
            label: format!("user:{}", claims.sub).into(),
            allowance: self.defaults,
            expires_at: Some(claims.exp),
        })
    }
}

/// One JSON part of a JWT (base64url without padding).
fn decode_part<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Now, in Unix seconds (what token expiries are written in).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Signs `claims` as an HS256 JWT with `secret`: what a store's backend
/// does (`mangaassist user-token` and the tests use it).
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, String> {
    let head = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
    let signed = format!("{head}.{}", URL_SAFE_NO_PAD.encode(payload));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
    mac.update(signed.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    Ok(format!("{signed}.{signature}"))
}

/// Lowercase hex SHA-256 of an API key: the form the configuration stores.
pub fn hash_key(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_decode(hex: &str, out: &mut [u8; 32]) -> Option<()> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        *out.get_mut(i)? = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use crate::config::ApiKeyConfig;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn auth(required: bool) -> Authenticator {
        Authenticator::new(&ServiceConfig {
            auth_required: required,
            api_keys: vec![ApiKeyConfig {
                id: "shop-1".into(),
                sha256: hash_key("k-secret"),
                tokens_per_minute: Some(7),
                usd_per_day: None,
                allow_quality: Some(false),
            }],
            user_token_secrets: vec![SECRET.into()],
            ..ServiceConfig::default()
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn code(r: Result<Identity, ApiError>) -> String {
        r.unwrap_err().code
    }

    #[test]
    fn keys_are_matched_by_digest() {
        let a = auth(true);
        let id = a
            .identify(&headers(&[("x-api-key", "k-secret")]), None, "a", 0)
            .unwrap();
        assert_eq!(&*id.label, "key:shop-1");
        assert_eq!(id.allowance.tokens_per_minute, 7);
        assert!(!id.allowance.allow_quality);
        let wrong = a.identify(&headers(&[("x-api-key", "k-secreT")]), None, "a", 0);
        assert_eq!(code(wrong), "invalid_api_key");
        // The digest itself is not a key.
        let digest = hash_key("k-secret");
        let wrong = a.identify(&headers(&[("x-api-key", &digest)]), None, "a", 0);
        assert_eq!(code(wrong), "invalid_api_key");
    }

    #[test]
    fn anonymous_only_when_not_required_and_nothing_sent() {
        assert_eq!(
            code(auth(true).identify(&HeaderMap::new(), None, "a", 0)),
            "auth_required"
        );
        let anon = auth(false)
            .identify(&HeaderMap::new(), None, "127.0.0.1", 0)
            .unwrap();
        assert_eq!(&*anon.label, "addr:127.0.0.1");
        // A wrong credential is refused even where none is needed.
        let wrong = auth(false).identify(&headers(&[("x-api-key", "x")]), None, "a", 0);
        assert_eq!(code(wrong), "invalid_api_key");
    }

    fn token(sub: &str, exp: u64) -> String {
        mint(
            SECRET.as_bytes(),
            &Claims {
                sub: sub.into(),
                exp,
                iat: None,
            },
        )
        .unwrap()
    }

    #[test]
    fn user_tokens_are_verified() {
        let a = auth(true);
        let now = 1_800_000_000;
        let t = token("u-42", now + 600);
        let bearer = format!("Bearer {t}");
        let id = a
            .identify(&headers(&[("authorization", &bearer)]), None, "a", now)
            .unwrap();
        assert_eq!(&*id.label, "user:u-42");
        assert_eq!(id.expires_at, Some(now + 600));
        // The WebSocket query parameter works the same.
        assert!(a.identify(&HeaderMap::new(), Some(&t), "a", now).is_ok());
        let expired = a.identify(&HeaderMap::new(), Some(&t), "a", now + 600);
        assert_eq!(code(expired), "token_expired");
        let long = token("u-42", now + 3601);
        let long = a.identify(&HeaderMap::new(), Some(&long), "a", now);
        assert_eq!(code(long), "token_lifetime_too_long");
        // Another secret, a changed payload, alg none: all invalid.
        let other = mint(
            b"another secret of at least 32 bytes!!",
            &Claims {
                sub: "u-42".into(),
                exp: now + 60,
                iat: None,
            },
        )
        .unwrap();
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"admin","exp":{}}}"#, now + 60));
        let tampered = parts.join(".");
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        for bad in [other.as_str(), &tampered, &none, "a.b", "", "x.y.z.w"] {
            let r = a.identify(&HeaderMap::new(), Some(bad), "a", now);
            assert_eq!(code(r), "invalid_token", "{bad}");
        }
        let basic = a.identify(&headers(&[("authorization", "Basic eDp5")]), None, "a", now);
        assert_eq!(code(basic), "invalid_token");
    }
}
