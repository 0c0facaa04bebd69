//! Faults the emulator injects per emulated region, so failover can be
//! tested against real HTTP: set at start (`--fault REGION=KIND[:N]`) or
//! through the control endpoint while it runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One kind of failure, as Bedrock (or the network) shows it. On the
/// control endpoint and in `/_emulator/state` it is the same text as on the
/// command line (`"error503"`, `"cut:5"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    /// Streams this many tokens, then falls silent with the connection open
    /// (for a plain invoke: like `Stall`).
    Pause(u32),
}

impl FromStr for Fault {
    type Err = String;

    /// `throttle`, `error500`, `error503`, `model_timeout`, `validation`,
    /// `drop`, `stall`, `cut:N`, `pause:N`.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "throttle" => Fault::Throttle,
            "error500" => Fault::Error500,
            "error503" => Fault::Error503,
            "model_timeout" => Fault::ModelTimeout,
            "validation" => Fault::Validation,
            "drop" => Fault::Drop,
            "stall" => Fault::Stall,
            other => {
                let counted = |prefix: &str| other.strip_prefix(prefix)?.parse::<u32>().ok();
                match (counted("cut:"), counted("pause:")) {
                    (Some(n), _) => Fault::Cut(n),
                    (_, Some(n)) => Fault::Pause(n),
                    _ => {
                        return Err(format!(
                            "unknown fault {other:?}: expected throttle, error500, error503, \
                             model_timeout, validation, drop, stall, cut:N or pause:N"
                        ));
                    }
                }
            }
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
            Fault::Pause(n) => write!(f, "pause:{n}"),
        }
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn the_control_endpoint_takes_the_command_line_spelling() {
        let plan: FaultPlan = serde_json::from_str(r#"{"fault":"error503","every":2}"#).unwrap();
        assert_eq!(
            (plan.fault, plan.every, plan.times),
            (Fault::Error503, 2, None)
        );
        let plan: FaultPlan = serde_json::from_str(r#"{"fault":"cut:3","times":1}"#).unwrap();
        assert_eq!(plan.fault, Fault::Cut(3));
        assert_eq!(
            serde_json::to_string(&plan).unwrap(),
            r#"{"fault":"cut:3","every":1,"times":1}"#
        );
        let e = serde_json::from_str::<FaultPlan>(r#"{"fault":"error502"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown fault"), "{e}");
    }
}
