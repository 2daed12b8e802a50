//! Step Functions ARNs of this runtime's resources parsed exactly ([`Arn`]): partition `aws`,
//! the runtime's region and account, a known resource type, AWS-valid names and a canonical
//! qualifier; a malformed ARN is AWS's `InvalidArn`.

use super::error::RuntimeError;
use super::records::{valid_name, ACCOUNT, REGION};

/// A qualifier of a state machine ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    Version(u64),
    Alias(String),
}

/// A parsed Step Functions ARN of this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arn {
    StateMachine {
        name: String,
        qualifier: Option<Qualifier>,
    },
    Execution {
        state_machine: String,
        name: String,
    },
    Activity {
        name: String,
    },
}

/// AWS's `InvalidArn` for `arn`, saying `why`.
pub fn invalid(arn: &str, why: &str) -> RuntimeError {
    RuntimeError::new("InvalidArn", format!("Invalid Arn: '{why}: {arn}'"))
}

impl Arn {
    /// Parses `arn:aws:states:REGION:ACCOUNT:TYPE:REST` exactly: no other partition, region or
    /// account (they name resources this server does not have), no other case, no spaces, no
    /// encodings (names are AWS names: no `%`, no whitespace, no wildcards).
    pub fn parse(arn: &str) -> Result<Arn, RuntimeError> {
        let parts: Vec<&str> = arn.splitn(7, ':').collect();
        let [a, partition, service, region, account, ty, rest] = parts[..] else {
            return Err(invalid(arn, "Resource type not valid in this context"));
        };
        if a != "arn" || partition != "aws" || service != "states" {
            return Err(invalid(arn, "not an arn:aws:states ARN"));
        }
        if region != REGION || account != ACCOUNT {
            return Err(invalid(
                arn,
                &format!("this server's resources are in region {REGION}, account {ACCOUNT}"),
            ));
        }
        let name = |n: &str| -> Result<String, RuntimeError> {
            valid_name(n)
                .map(|_| n.to_string())
                .map_err(|m| invalid(arn, &m))
        };
        match ty {
            "stateMachine" => {
                let (n, q) = match rest.split_once(':') {
                    None => (rest, None),
                    Some((n, q)) => (n, Some(q)),
                };
                let qualifier = match q {
                    None => None,
                    Some(q) if !q.is_empty() && q.bytes().all(|c| c.is_ascii_digit()) => {
                        if q.starts_with('0') {
                            return Err(invalid(arn, "a version number has no leading zero"));
                        }
                        Some(Qualifier::Version(
                            q.parse()
                                .map_err(|_| invalid(arn, "version out of range"))?,
                        ))
                    }
                    Some(q) => Some(Qualifier::Alias(name(q)?)),
                };
                Ok(Arn::StateMachine {
                    name: name(n)?,
                    qualifier,
                })
            }
            "execution" => {
                let (sm, n) = rest
                    .split_once(':')
                    .ok_or_else(|| invalid(arn, "an execution ARN ends with STATE_MACHINE:NAME"))?;
                Ok(Arn::Execution {
                    state_machine: name(sm)?,
                    name: name(n)?,
                })
            }
            "activity" => Ok(Arn::Activity { name: name(rest)? }),
            _ => Err(invalid(arn, "Resource type not valid in this context")),
        }
    }

    /// The canonical spelling.
    pub fn canonical(&self) -> String {
        let base = format!("arn:aws:states:{REGION}:{ACCOUNT}");
        match self {
            Arn::StateMachine { name, qualifier } => match qualifier {
                None => format!("{base}:stateMachine:{name}"),
                Some(Qualifier::Version(v)) => format!("{base}:stateMachine:{name}:{v}"),
                Some(Qualifier::Alias(a)) => format!("{base}:stateMachine:{name}:{a}"),
            },
            Arn::Execution {
                state_machine,
                name,
            } => format!("{base}:execution:{state_machine}:{name}"),
            Arn::Activity { name } => format!("{base}:activity:{name}"),
        }
    }

    /// The unqualified state machine ARN of a (qualified) state machine ARN.
    pub fn unqualified(&self) -> String {
        match self {
            Arn::StateMachine { name, .. } => super::records::sm_arn(name),
            other => other.canonical(),
        }
    }
}
