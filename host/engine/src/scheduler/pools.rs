//! Airflow pools: named slot budgets shared by every task instance that names the pool, across
//! runs and DAGs. A task takes `pool_slots` slots of its `pool` (`default_pool` unless set)
//! while it is queued or running.
//!
//! Pools come from a JSON file (`$WEFT_HOME/pools.json` or `pools.json` in the DAG folder):
//! `{"etl": 2, "api": {"slots": 4, "description": "rate-limited"}}`. `default_pool` has 128
//! slots unless the file says otherwise, as in Airflow.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::SchedulerError;

/// Slots of Airflow's `default_pool`.
pub const DEFAULT_POOL_SLOTS: u32 = 128;

/// Pool sizes and the slots in use.
#[derive(Debug, Clone)]
pub struct Pools {
    slots: HashMap<String, u32>,
    used: HashMap<String, u32>,
}

impl Default for Pools {
    fn default() -> Self {
        let mut slots = HashMap::new();
        slots.insert("default_pool".to_string(), DEFAULT_POOL_SLOTS);
        Pools {
            slots,
            used: HashMap::new(),
        }
    }
}

/// Why a task instance cannot take its pool slots now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolCheck {
    /// It may run.
    Ok,
    /// The pool is full for now.
    Full,
    /// No such pool, or the task asks for more slots than the pool has.
    Impossible(String),
}

impl Pools {
    /// Parse a pools file's JSON text (`origin` names it in errors).
    pub fn parse(origin: &str, text: &str) -> Result<Pools, SchedulerError> {
        let v: Value = serde_json::from_str(text).map_err(|e| {
            SchedulerError::Config(format!(
                "{origin}:{}: pools file is not JSON: {e}",
                e.line()
            ))
        })?;
        let Value::Object(m) = v else {
            return Err(SchedulerError::Config(format!(
                "{origin}: expected an object of pool name -> slots"
            )));
        };
        let mut p = Pools::default();
        for (name, def) in m {
            let slots = match &def {
                Value::Number(n) => n.as_u64(),
                Value::Object(o) => o.get("slots").and_then(Value::as_u64),
                _ => None,
            }
            .filter(|n| *n <= u32::MAX as u64)
            .ok_or_else(|| {
                SchedulerError::Config(format!(
                    "{origin}: /{name}: expected a slot count (a non-negative integer) or {{\"slots\": n}}"
                ))
            })?;
            p.slots.insert(name, slots as u32);
        }
        Ok(p)
    }

    /// Load the first of `files` that exists; defaults when none does.
    pub fn load(files: &[&Path]) -> Result<Pools, SchedulerError> {
        for f in files {
            match std::fs::read_to_string(f) {
                Ok(t) => return Pools::parse(&f.display().to_string(), &t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(SchedulerError::Config(format!("{}: {e}", f.display())));
                }
            }
        }
        Ok(Pools::default())
    }

    /// Set a pool's size.
    pub fn set(&mut self, name: &str, slots: u32) {
        self.slots.insert(name.to_string(), slots);
    }

    /// Whether `slots` of `pool` are free.
    pub fn check(&self, pool: &str, slots: u32) -> PoolCheck {
        let Some(&total) = self.slots.get(pool) else {
            return PoolCheck::Impossible(format!(
                "pool `{pool}` does not exist (define it in pools.json: {{\"{pool}\": SLOTS}})"
            ));
        };
        if slots > total {
            return PoolCheck::Impossible(format!(
                "the task needs {slots} slots of pool `{pool}`, which has only {total}"
            ));
        }
        if self.used.get(pool).copied().unwrap_or(0) + slots > total {
            PoolCheck::Full
        } else {
            PoolCheck::Ok
        }
    }

    /// Take slots.
    pub fn take(&mut self, pool: &str, slots: u32) {
        *self.used.entry(pool.to_string()).or_default() += slots;
    }

    /// Give slots back.
    pub fn release(&mut self, pool: &str, slots: u32) {
        if let Some(u) = self.used.get_mut(pool) {
            *u = u.saturating_sub(slots);
        }
    }

    /// Every pool with its size, by name.
    pub fn sizes(&self) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = self.slots.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort();
        v
    }

    /// A pool's size (`None`: no such pool).
    pub fn size(&self, pool: &str) -> Option<u32> {
        self.slots.get(pool).copied()
    }

    /// Slots in use.
    pub fn used(&self, pool: &str) -> u32 {
        self.used.get(pool).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_check_take_release() {
        let mut p = Pools::parse("pools.json", r#"{"etl": 2, "api": {"slots": 1}}"#).unwrap();
        assert_eq!(p.check("default_pool", 1), PoolCheck::Ok);
        assert_eq!(p.check("etl", 2), PoolCheck::Ok);
        p.take("etl", 2);
        assert_eq!(p.check("etl", 1), PoolCheck::Full);
        p.release("etl", 1);
        assert_eq!(p.check("etl", 1), PoolCheck::Ok);
        assert!(matches!(p.check("nope", 1), PoolCheck::Impossible(_)));
        assert!(matches!(p.check("api", 2), PoolCheck::Impossible(_)));
        let e = Pools::parse("pools.json", r#"{"x": -1}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/x"), "{e}");
        let e = Pools::parse("pools.json", "{\n oops")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pools.json:2"), "{e}");
    }
}
