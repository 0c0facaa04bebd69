//! Faults the emulator injects per emulated region, so failover can be
//! tested against real HTTP: set at start (`--fault REGION=KIND[:N]`) or
//! through the control endpoint while it runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One kind of failure, as Bedrock (or the network) shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "after")]
pub enum Fault {
    /// 429 `ThrottlingException`.
    Throttle,
    /// 500 `InternalServerException`.
    Error500,
    /// 503 `ServiceUnavailableException`.
    Error503,
    /// 408 `ModelTimeoutException`.
    ModelTimeout,
    /// 400 `ValidationException` (a request no region can fix).
    Validation,
    /// Headers, then the connection ends without a body.
    Drop,
    /// Accepts the request and never answers.
    Stall,
    /// Streams this many tokens, then the connection ends mid-stream
    /// (for a plain invoke: like `Drop`).
    Cut(u32),
}

impl FromStr for Fault {
    type Err = String;

    /// `throttle`, `error500`, `error503`, `model_timeout`, `validation`,
    /// `drop`, `stall`, `cut:N`.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "throttle" => Fault::Throttle,
            "error500" => Fault::Error500,
            "error503" => Fault::Error503,
            "model_timeout" => Fault::ModelTimeout,
            "validation" => Fault::Validation,
            "drop" => Fault::Drop,
            "stall" => Fault::Stall,
            other => match other.strip_prefix("cut:").map(str::parse) {
                Some(Ok(n)) => Fault::Cut(n),
                _ => {
                    return Err(format!(
                        "unknown fault {other:?}: expected throttle, error500, error503, \
                         model_timeout, validation, drop, stall or cut:N"
                    ));
                }
            },
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Throttle => f.write_str("throttle"),
            Fault::Error500 => f.write_str("error500"),
            Fault::Error503 => f.write_str("error503"),
            Fault::ModelTimeout => f.write_str("model_timeout"),
            Fault::Validation => f.write_str("validation"),
            Fault::Drop => f.write_str("drop"),
            Fault::Stall => f.write_str("stall"),
            Fault::Cut(n) => write!(f, "cut:{n}"),
        }
    }
}

/// A fault and when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultPlan {
    /// What goes wrong.
    pub fault: Fault,
    /// Applies to every `every`-th request of the region (1: all; 2: every
    /// other one, a flapping region).
    #[serde(default = "one")]
    pub every: u32,
    /// Applies this many times, then clears; none: until cleared.
    #[serde(default)]
    pub times: Option<u32>,
}

fn one() -> u32 {
    1
}

impl FaultPlan {
    /// `fault` on every request until cleared.
    pub fn always(fault: Fault) -> Self {
        FaultPlan {
            fault,
            every: 1,
            times: None,
        }
    }
}

/// Parses `REGION=KIND[:N]` from the command line.
pub fn parse_region_fault(s: &str) -> Result<(String, FaultPlan), String> {
    let (region, fault) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected REGION=FAULT, e.g. us-east-1=throttle"))?;
    Ok((region.to_string(), FaultPlan::always(fault.parse()?)))
}
