//! Airflow Variables and Connections, kept in weft's secrets store (`$WEFT_HOME/secrets.json`,
//! file mode 0600) under the names `var/NAME` and `conn/NAME`.
//!
//! Templates read them as `{{ var.value.NAME }}`, `{{ var.json.NAME }}` and
//! `{{ conn.NAME.host }}`, but only in tasks whose grant allows `secrets:Get` on the resource
//! `secret:var/NAME` or `secret:conn/NAME` ([`GrantedSecrets`]); plugins can read the same
//! names with the host's `get-secret`. Values are never logged; listing shows names only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use weft_dag::{Connection, Secrets};
use weft_sandbox::{Policy, SecretName};

use crate::{EngineError, Roles};

/// Variables or connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `var/NAME`.
    Variable,
    /// `conn/NAME`.
    Connection,
}

impl Kind {
    /// The secret-name prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Variable => "var/",
            Kind::Connection => "conn/",
        }
    }
}

/// The secrets file of a `$WEFT_HOME`.
pub struct SecretsFile {
    path: PathBuf,
}

fn err(path: &Path, reason: impl Into<String>) -> EngineError {
    EngineError::Secrets {
        origin: path.display().to_string(),
        reason: reason.into(),
    }
}

impl Kind {
    /// The canonical secret `var/NAME` or `conn/NAME` (see [`weft_sandbox::secret_name`]).
    pub fn secret(self, name: &str) -> Result<SecretName, weft_sandbox::InvalidSecretName> {
        SecretName::with_prefix(self.prefix().trim_end_matches('/'), name)
    }
}

/// Check a variable or connection name: one segment of letters, digits, `_`, `-`, `.`,
/// starting with a letter, digit or `_`; names are case-insensitive.
pub fn check_name(name: &str) -> Result<(), String> {
    Kind::Variable
        .secret(name)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Re-keys a secrets file by canonical name; a key that is not a secret name, or two keys that
/// name one secret (`Root` and `root`), make the file unusable rather than ambiguous.
pub(crate) fn canonical_keys(
    path: &Path,
    raw: BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, EngineError> {
    let mut out = BTreeMap::new();
    let mut spelled: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in raw {
        let name = SecretName::parse(&k).map_err(|e| err(path, format!("key {e}")))?;
        if let Some(first) = spelled.insert(name.as_str().to_string(), k.clone()) {
            return Err(err(
                path,
                format!(
                    "keys `{first}` and `{k}` name the same secret `{name}` (names are case-insensitive); keep one"
                ),
            ));
        }
        out.insert(name.as_str().to_string(), v);
    }
    Ok(out)
}

impl SecretsFile {
    /// The file of `home`.
    pub fn new(home: &Path) -> Self {
        SecretsFile {
            path: home.join("secrets.json"),
        }
    }

    /// The entries, keyed by canonical secret name.
    fn read(&self) -> Result<BTreeMap<String, String>, EngineError> {
        let raw = match std::fs::read_to_string(&self.path) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| {
                err(
                    &self.path,
                    format!(
                        "line {}: expected a JSON object of string values: {e}",
                        e.line()
                    ),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(err(&self.path, e.to_string())),
        };
        canonical_keys(&self.path, raw)
    }

    fn write(&self, m: &BTreeMap<String, String>) -> Result<(), EngineError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
        let tmp = dir.join(format!(".secrets.json.{}", std::process::id()));
        let text = serde_json::to_string_pretty(m).map_err(|e| err(&self.path, e.to_string()))?;
        {
            use std::io::Write;
            let mut o = std::fs::OpenOptions::new();
            o.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(&tmp).map_err(|e| err(&tmp, e.to_string()))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(|e| err(&tmp, e.to_string()))?;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| err(&tmp, e.to_string()))?;
        }
        std::fs::rename(&tmp, &self.path).map_err(|e| err(&self.path, e.to_string()))?;
        Ok(())
    }

    /// Set a variable or connection (a connection's value is checked to parse).
    pub fn set(&self, kind: Kind, name: &str, value: &str) -> Result<(), EngineError> {
        let key = kind
            .secret(name)
            .map_err(|e| err(&self.path, e.to_string()))?;
        if kind == Kind::Connection {
            parse_connection(value)
                .map_err(|r| err(&self.path, format!("connection `{name}`: {r}")))?;
        }
        let mut m = self.read()?;
        m.insert(key.as_str().to_string(), value.to_string());
        self.write(&m)
    }

    /// A value.
    pub fn get(&self, kind: Kind, name: &str) -> Result<Option<String>, EngineError> {
        let key = kind
            .secret(name)
            .map_err(|e| err(&self.path, e.to_string()))?;
        Ok(self.read()?.remove(key.as_str()))
    }

    /// Names, sorted.
    pub fn list(&self, kind: Kind) -> Result<Vec<String>, EngineError> {
        Ok(self
            .read()?
            .keys()
            .filter_map(|k| k.strip_prefix(kind.prefix()).map(str::to_string))
            .collect())
    }

    /// Delete; false when absent.
    pub fn delete(&self, kind: Kind, name: &str) -> Result<bool, EngineError> {
        let key = kind
            .secret(name)
            .map_err(|e| err(&self.path, e.to_string()))?;
        let mut m = self.read()?;
        let had = m.remove(key.as_str()).is_some();
        if had {
            self.write(&m)?;
        }
        Ok(had)
    }

    /// Every entry, keyed by canonical secret name (the environment is not consulted here).
    pub fn snapshot(&self) -> Result<BTreeMap<String, String>, EngineError> {
        self.read()
    }
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hi = (b[i + 1] as char).to_digit(16);
            let lo = (b[i + 2] as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a connection: a JSON object (`conn_type`, `host`, `login`, `password`, `schema`,
/// `port`, `extra`) or an Airflow URI (`postgres://user:pass@host:5432/db?x=y`).
pub fn parse_connection(value: &str) -> Result<Connection, String> {
    let t = value.trim();
    if t.starts_with('{') {
        let mut v: serde_json::Value =
            serde_json::from_str(t).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(extra) = v.get("extra").filter(|e| e.is_object()) {
            let s = extra.to_string();
            v["extra"] = serde_json::Value::String(s);
        }
        return serde_json::from_value(v).map_err(|e| format!("bad connection fields: {e}"));
    }
    let (scheme, rest) = t
        .split_once("://")
        .ok_or("expected a JSON object or a URI like postgres://user:pass@host:5432/db")?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (auth_host, schema) = match rest.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (rest, None),
    };
    let (auth, hostport) = match auth_host.rsplit_once('@') {
        Some((a, h)) => (Some(a), h),
        None => (None, auth_host),
    };
    let (login, password) = match auth {
        Some(a) => match a.split_once(':') {
            Some((l, p)) => (Some(pct_decode(l)), Some(pct_decode(p))),
            None => (Some(pct_decode(a)), None),
        },
        None => (None, None),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() => (
            h,
            Some(p.parse::<u16>().map_err(|_| format!("bad port `{p}`"))?),
        ),
        _ => (hostport, None),
    };
    let extra = query.map(|q| {
        let m: serde_json::Map<String, serde_json::Value> = q
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (pct_decode(k), serde_json::Value::String(pct_decode(v))))
            .collect();
        serde_json::Value::Object(m).to_string()
    });
    Ok(Connection {
        conn_type: Some(scheme.replace('-', "_")),
        host: (!host.is_empty()).then(|| pct_decode(host)),
        login,
        password,
        schema: schema.filter(|s| !s.is_empty()).map(pct_decode),
        port,
        extra,
    })
}

/// Variables and connections for templates, filtered by the task's grant.
pub struct GrantedSecrets {
    values: Arc<BTreeMap<String, String>>,
    roles: Arc<Roles>,
    policy: Option<Arc<Policy>>,
}

impl GrantedSecrets {
    /// The store's entries as seen by tasks; the base view (no grant) sees nothing.
    pub fn load(home: &Path, roles: Arc<Roles>) -> Result<Self, EngineError> {
        let mut values = SecretsFile::new(home).snapshot()?;
        // `var/` and `conn/` names contain `/`, which the environment cannot spell: only the
        // file holds them, for templates and the sandbox alike.
        values.retain(|k, _| k.starts_with("var/") || k.starts_with("conn/"));
        Ok(GrantedSecrets {
            values: Arc::new(values),
            roles,
            policy: None,
        })
    }

    fn allowed(&self, resource: &str) -> bool {
        let ok = self
            .policy
            .as_ref()
            .is_some_and(|p| p.evaluate("secrets:Get", resource).allowed());
        if !ok {
            tracing::info!(
                resource,
                "template access to a variable or connection denied by the task's grant"
            );
        }
        ok
    }
}

impl GrantedSecrets {
    /// The value of `kind`'s `name`: canonicalised once, the grant evaluated on that canonical
    /// name and the value looked up by it.
    fn lookup(&self, kind: Kind, name: &str) -> Result<Option<&String>, String> {
        let key = kind.secret(name).map_err(|e| e.to_string())?;
        if !self.values.contains_key(key.as_str()) || !self.allowed(&key.resource()) {
            return Ok(None);
        }
        Ok(self.values.get(key.as_str()))
    }
}

impl Secrets for GrantedSecrets {
    fn variable(&self, name: &str) -> Result<Option<String>, String> {
        Ok(self.lookup(Kind::Variable, name)?.cloned())
    }

    fn connection(&self, conn_id: &str) -> Result<Option<Connection>, String> {
        Ok(self
            .lookup(Kind::Connection, conn_id)?
            .and_then(|v| parse_connection(v).ok()))
    }

    fn for_grant(&self, grant: Option<&str>) -> Option<Arc<dyn Secrets>> {
        let policy = grant.and_then(|g| match self.roles.get(g) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(error = %e, "grant of a task could not be loaded; it reads no variables");
                None
            }
        });
        Some(Arc::new(GrantedSecrets {
            values: self.values.clone(),
            roles: self.roles.clone(),
            policy,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_private_and_names_are_listed_without_values() {
        let d = tempfile::tempdir().unwrap();
        let f = SecretsFile::new(d.path());
        f.set(Kind::Variable, "region", "eu-west-1").unwrap();
        f.set(
            Kind::Connection,
            "wh",
            "postgres://u:p%40ss@db.local:5433/sales?sslmode=require",
        )
        .unwrap();
        assert!(f.set(Kind::Variable, "bad name", "x").is_err());
        assert!(f.set(Kind::Connection, "c", "nonsense").is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(d.path().join("secrets.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(f.list(Kind::Variable).unwrap(), ["region"]);
        assert_eq!(f.list(Kind::Connection).unwrap(), ["wh"]);
        let c = parse_connection(&f.get(Kind::Connection, "wh").unwrap().unwrap()).unwrap();
        assert_eq!(c.host.as_deref(), Some("db.local"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.port, Some(5433));
        assert_eq!(c.schema.as_deref(), Some("sales"));
        assert!(f.delete(Kind::Variable, "region").unwrap());
        assert!(!f.delete(Kind::Variable, "region").unwrap());
    }

    #[test]
    fn templates_see_only_granted_names() {
        let d = tempfile::tempdir().unwrap();
        let f = SecretsFile::new(d.path());
        f.set(Kind::Variable, "open", "1").unwrap();
        f.set(Kind::Variable, "closed", "2").unwrap();
        std::fs::create_dir_all(d.path().join("roles")).unwrap();
        std::fs::write(
            d.path().join("roles/r.json"),
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secrets:Get","Resource":"secret:var/open"}]}"#,
        )
        .unwrap();
        let roles = Arc::new(Roles::new(vec![d.path().join("roles")]));
        let s = GrantedSecrets::load(d.path(), roles).unwrap();
        assert_eq!(s.variable("open"), Ok(None), "no grant, no variables");
        let g = s.for_grant(Some("r")).unwrap();
        assert_eq!(g.variable("open").unwrap().as_deref(), Some("1"));
        assert_eq!(g.variable("OPEN").unwrap().as_deref(), Some("1"));
        assert_eq!(g.variable("closed"), Ok(None));
        assert!(s
            .for_grant(None)
            .unwrap()
            .variable("open")
            .unwrap()
            .is_none());
        let e = g.variable("open ").unwrap_err();
        assert!(e.starts_with("Secrets.InvalidName"), "{e}");
    }

    /// Every spelling of a denied variable, through the template paths a DAG file can write.
    #[test]
    fn templates_cannot_reach_a_denied_variable_by_another_spelling() {
        let d = tempfile::tempdir().unwrap();
        let f = SecretsFile::new(d.path());
        f.set(Kind::Variable, "root_pw", "hunter2").unwrap();
        f.set(Kind::Variable, "region", "eu-west-1").unwrap();
        std::fs::create_dir_all(d.path().join("roles")).unwrap();
        std::fs::write(
            d.path().join("roles/r.json"),
            r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"secrets:Get","Resource":"secret:var/*"},
                {"Effect":"Deny","Action":"secrets:Get","Resource":"secret:var/ROOT*"}]}"#,
        )
        .unwrap();
        let roles = Arc::new(Roles::new(vec![d.path().join("roles")]));
        let secrets = GrantedSecrets::load(d.path(), roles)
            .unwrap()
            .for_grant(Some("r"))
            .unwrap();
        let t0 = chrono::DateTime::from_timestamp(0, 0).unwrap();
        let ctx = weft_dag::template::TemplateContext {
            dag_id: "d".into(),
            task_id: "t".into(),
            map_index: -1,
            try_number: 1,
            run_id: "r".into(),
            logical_date: t0,
            data_interval_start: t0,
            data_interval_end: t0,
            params: Default::default(),
            conf: Default::default(),
            triggering_asset_events: serde_json::json!({}),
            owner: "o".into(),
            operator: "echo".into(),
            xcom: Arc::new(weft_dag::XComStore::default()),
            secrets,
        };
        let render = |t: &str| {
            weft_dag::template::render_value(&serde_json::json!(t), &ctx, false)
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .map_err(|e| e.to_string())
        };
        // The user's case: granted names read in any case.
        assert_eq!(render("{{ var.value.region }}").unwrap(), "eu-west-1");
        assert_eq!(render("{{ var.value.REGION }}").unwrap(), "eu-west-1");
        for name in [
            "root_pw",
            "ROOT_PW",
            "Root_Pw",
            "root-pw",
            "ROOT-PW",
            "root.pw",
            "root_pw ",
            " root_pw",
            "root_pw\\u0000",
            "root%5Fpw",
            "r\u{43e}ot_pw",
            "root\u{ff3f}pw",
            "./root_pw",
            "../var/root_pw",
            "x/../root_pw",
            "/root_pw",
            "root_pw/",
            "var//root_pw",
            "../conn/root_pw",
        ] {
            for t in [
                format!("{{{{ var.value['{name}'] }}}}"),
                format!("{{{{ var.json['{name}'] }}}}"),
                format!("{{{{ var.value.get('{name}', 'default') }}}}"),
                format!("{{{{ conn['{name}'].password }}}}"),
            ] {
                match render(&t) {
                    Ok(v) => assert!(!v.contains("hunter2"), "{t} read the denied value"),
                    Err(e) => assert!(!e.contains("hunter2"), "{t}: {e}"),
                }
            }
        }
        let e = render("{{ var.value['root_pw '] }}").unwrap_err();
        assert!(e.contains("Secrets.InvalidName"), "{e}");
    }
}
