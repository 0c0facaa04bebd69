//! Environment profiles (SPEC 9): timeouts, retries and pool size of the
//! Bedrock client per `MANGA_ENV`.

use std::time::Duration;

/// Client settings of one environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvProfile {
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// Attempts per region (adaptive retry) before failing over.
    pub max_attempts: u32,
    /// Idle connections kept per host.
    pub pool_size: usize,
}

impl EnvProfile {
    /// `dev`: fail fast, small pool.
    pub const DEV: EnvProfile = EnvProfile {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(30),
        max_attempts: 1,
        pool_size: 5,
    };

    /// `staging` and `prod`.
    pub const PROD: EnvProfile = EnvProfile {
        connect_timeout: Duration::from_secs(3),
        read_timeout: Duration::from_secs(28),
        max_attempts: 3,
        pool_size: 50,
    };

    /// The profile named by `MANGA_ENV`'s value.
    pub fn named(name: &str) -> Result<Self, String> {
        match name {
            "dev" => Ok(Self::DEV),
            "staging" | "prod" => Ok(Self::PROD),
            other => Err(format!(
                "MANGA_ENV={other:?} is not an environment: expected dev, staging or prod"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_match_spec_9() {
        assert_eq!(EnvProfile::named("dev"), Ok(EnvProfile::DEV));
        assert_eq!(EnvProfile::named("staging"), EnvProfile::named("prod"));
        let prod = EnvProfile::PROD;
        assert_eq!(
            (
                prod.connect_timeout.as_secs(),
                prod.read_timeout.as_secs(),
                prod.max_attempts,
                prod.pool_size
            ),
            (3, 28, 3, 50)
        );
        assert!(
            EnvProfile::named("qa")
                .unwrap_err()
                .contains("dev, staging or prod")
        );
    }
}
