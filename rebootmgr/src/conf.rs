//! rebootmgr's config files: `/usr/lib/rebootmgr/rebootmgr.toml` (vendor,
//! every key commented with its default), `/etc/rebootmgr/rebootmgr.toml`,
//! drop-ins `*.toml` in `/run/rebootmgr/rebootmgr.toml.d/` and
//! `/etc/rebootmgr/rebootmgr.toml.d/`. The files, their order and how they
//! are read are umm's ([`umm_core::config::read_layers`]); a later file wins
//! for each key it sets, and command-line flags win over every file.
//!
//! Unlike umm's config, an unknown key is an error: a misspelt `[[window]]`
//! key must not silently allow reboots at any time. A file with errors is
//! reported by `rebootmgr check-config`, and `rebootmgr run` refuses to run
//! (exit 104) until it is fixed.
//!
//! Tables: each one is one entry of [`TABLES`] (its name and the function
//! that reads it into [`FileConfig`]) and a field of [`FileConfig`].

use crate::flow::{Reboot, Settings};
use crate::metrics::MetricsConfig;
use crate::notify::NotifyConfig;
use crate::window::{self, Window};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use umm_coord::tls::ConsulSettings;
use umm_core::config::{shown_key, Layout};
use umm_core::duration;
use umm_core::paths::Root;

pub const LAYOUT: Layout = Layout {
    vendor: "/usr/lib/rebootmgr/rebootmgr.toml",
    legacy: None,
    admin: "/etc/rebootmgr/rebootmgr.toml",
    dropin_dirs: [
        "/run/rebootmgr/rebootmgr.toml.d",
        "/etc/rebootmgr/rebootmgr.toml.d",
    ],
};

/// What the files set (`None`: no file set it; the built-in default or the
/// flag applies).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    pub group: Option<String>,
    pub settle: Option<Duration>,
    pub max_parallel: Option<u32>,
    pub session_ttl: Option<Duration>,
    pub task_timeout: Option<Duration>,
    pub wait_until_healthy: Option<Duration>,
    pub stuck_after: Option<Duration>,
    pub check_holidays: Option<bool>,
    pub into_maintenance: Option<bool>,
    pub reboot_command: Option<Vec<String>>,
    pub trigger_command: Option<Vec<String>>,
    /// `[consul]`: address, token and TLS files (over the CONSUL_* variables).
    pub consul: ConsulSettings,
    /// `[[window]]`; `None`: no file set any (reboots at any time).
    pub windows: Option<Vec<Window>>,
    /// `[metrics]` over the built-in defaults (the env and the flag win).
    pub metrics: MetricsConfig,
    /// `[notify]` over the built-in defaults (the env and the flags win).
    pub notify: NotifyConfig,
}

/// The top-level keys, in the order they are documented.
pub const KEYS: &[&str] = &[
    "group",
    "settle",
    "max_parallel",
    "session_ttl",
    "task_timeout",
    "wait_until_healthy",
    "stuck_after",
    "check_holidays",
    "into_maintenance",
    "reboot_command",
    "trigger_command",
];

/// A table of the file: its name and what reads it (errors name the key
/// inside the table; the caller adds the file).
pub struct TableDef {
    pub name: &'static str,
    pub apply: fn(&mut FileConfig, &toml::Value) -> Result<(), String>,
}

pub const TABLES: &[TableDef] = &[
    TableDef {
        name: "consul",
        apply: apply_consul,
    },
    TableDef {
        name: "window",
        apply: apply_window,
    },
    TableDef {
        name: "metrics",
        apply: apply_metrics,
    },
    TableDef {
        name: "notify",
        apply: apply_notify,
    },
];

/// The `[consul]` keys (the CONSUL_* variable each replaces is in docs/rebootmgr.md).
pub const CONSUL_KEYS: &[&str] = &[
    "address",
    "token_file",
    "ca_file",
    "ca_path",
    "client_cert",
    "client_key",
    "tls_server_name",
    "ssl_verify",
];

#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: FileConfig,
    /// Which file set each key (`consul.ca_file`, `window`, `settle` …).
    pub origins: BTreeMap<String, PathBuf>,
    pub files: Vec<PathBuf>,
    pub errors: Vec<String>,
}

pub fn load(root: &Root) -> Loaded {
    let mut l = Loaded::default();
    let (notes, errors) = umm_core::config::read_layers(root, &LAYOUT, |file, text| match text {
        Ok(t) => apply_text(&mut l, file, t),
        Err(e) => l.errors.push(e),
    });
    // Nothing is a mere note for rebootmgr: every problem is an error.
    l.errors.splice(0..0, notes.into_iter().chain(errors));
    l
}

/// One file's text on top of `l` (pure; the tests use it directly).
pub fn apply_text(l: &mut Loaded, file: PathBuf, text: &str) {
    match umm_core::config::parse_file(&file, text) {
        Ok(t) => apply_table(l, &file, &t),
        Err(e) => {
            l.errors.push(e);
            return;
        }
    }
    l.files.push(file);
}

/// A duration with a unit ("130s", "2h"), at most umm's longest.
pub fn duration_value(v: &toml::Value) -> Result<Duration, String> {
    match v {
        toml::Value::String(s) => duration::parse(s),
        toml::Value::Integer(_) => Err(duration::BARE_NUMBER_HINT.into()),
        _ => Err("expected a duration string such as \"130s\"".into()),
    }
}

fn string_list(v: &toml::Value) -> Option<Vec<String>> {
    v.as_array()?
        .iter()
        .map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// A command: `[]` (none) or an absolute program path and its arguments.
fn command(v: &toml::Value) -> Result<Vec<String>, String> {
    let argv = string_list(v)
        .ok_or("expected a list of strings, e.g. [\"/usr/bin/needs-restarting\", \"-r\"]")?;
    match argv.first() {
        None => Ok(argv),
        Some(p) if p.starts_with('/') || !p.contains('/') => Ok(argv),
        Some(_) => Err("the program must be an absolute path or a bare name found in PATH".into()),
    }
}

fn apply_table(l: &mut Loaded, file: &Path, table: &toml::Table) {
    for (key, value) in table {
        let bad = |what: &str| {
            format!(
                "{}: key '{key}': {what}; the value from earlier files is kept",
                file.display()
            )
        };
        if let Some(t) = TABLES.iter().find(|t| t.name == key) {
            match (t.apply)(&mut l.config, value) {
                Ok(()) => {
                    l.origins.insert(key.clone(), file.to_path_buf());
                }
                Err(e) => l.errors.push(format!(
                    "{}: [{key}] {e}; the values from earlier files are kept",
                    file.display()
                )),
            }
            continue;
        }
        if !KEYS.contains(&key.as_str()) {
            l.errors.push(format!(
                "{}: unknown key {} (known: {}, and the tables {})",
                file.display(),
                shown_key(key),
                KEYS.join(", "),
                TABLES
                    .iter()
                    .map(|t| format!("[{}]", t.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            continue;
        }
        let c = &mut l.config;
        let d = |v: &toml::Value, min: u64| -> Result<Duration, String> {
            let d = duration_value(v).map_err(|e| bad(&e))?;
            if d.as_secs() < min {
                return Err(bad(&format!("must be at least {min}s")));
            }
            Ok(d)
        };
        let r: Result<(), String> = match key.as_str() {
            "group" => value
                .as_str()
                .map(|g| c.group = Some(g.to_string()))
                .ok_or_else(|| bad("expected a string (\"\": the node config's group)")),
            "settle" => d(value, 0).map(|v| c.settle = Some(v)),
            "session_ttl" => d(value, 10).map(|v| c.session_ttl = Some(v)),
            "task_timeout" => d(value, 1).map(|v| c.task_timeout = Some(v)),
            "wait_until_healthy" => d(value, 0).map(|v| c.wait_until_healthy = Some(v)),
            "stuck_after" => d(value, 1).map(|v| c.stuck_after = Some(v)),
            "max_parallel" => match value.as_integer() {
                Some(n) if (1..=10_000).contains(&n) => {
                    c.max_parallel = Some(n as u32);
                    Ok(())
                }
                _ => Err(bad("expected a whole number from 1 to 10000")),
            },
            "check_holidays" | "into_maintenance" => match value.as_bool() {
                Some(b) if key == "check_holidays" => {
                    c.check_holidays = Some(b);
                    Ok(())
                }
                Some(b) => {
                    c.into_maintenance = Some(b);
                    Ok(())
                }
                None => Err(bad("expected true or false")),
            },
            "reboot_command" => match command(value) {
                Ok(v) if !v.is_empty() => {
                    c.reboot_command = Some(v);
                    Ok(())
                }
                Ok(_) => Err(bad("must not be empty")),
                Err(e) => Err(bad(&e)),
            },
            "trigger_command" => command(value)
                .map(|v| c.trigger_command = Some(v))
                .map_err(|e| bad(&e)),
            _ => Ok(()),
        };
        match r {
            Ok(()) => {
                l.origins.insert(key.clone(), file.to_path_buf());
            }
            Err(e) => l.errors.push(e),
        }
    }
}

fn apply_consul(c: &mut FileConfig, v: &toml::Value) -> Result<(), String> {
    let t = v.as_table().ok_or("expected a table [consul]")?;
    // All or nothing: a table with one bad key changes nothing.
    let mut s = c.consul.clone();
    for (k, v) in t {
        let text = || {
            v.as_str()
                .map(|x| Some(x.to_string()).filter(|x| !x.is_empty()))
                .ok_or_else(|| format!("key '{k}': expected a string (\"\": unset)"))
        };
        let path = || text().map(|o| o.map(PathBuf::from));
        match k.as_str() {
            "address" => s.addr = text()?,
            "token_file" => {
                s.token_file = path()?;
                s.token = None;
            }
            "ca_file" => s.tls.ca_file = path()?,
            "ca_path" => s.tls.ca_path = path()?,
            "client_cert" => s.tls.client_cert = path()?,
            "client_key" => s.tls.client_key = path()?,
            "tls_server_name" => s.tls.server_name = text()?,
            "ssl_verify" => {
                s.tls.verify = v
                    .as_bool()
                    .ok_or_else(|| format!("key '{k}': expected true or false"))?
            }
            other => {
                return Err(format!(
                    "unknown key {} (known: {})",
                    shown_key(other),
                    CONSUL_KEYS.join(", ")
                ))
            }
        }
    }
    c.consul = s;
    Ok(())
}

fn apply_window(c: &mut FileConfig, v: &toml::Value) -> Result<(), String> {
    c.windows = Some(window::parse_windows(v)?);
    Ok(())
}

/// The keys of `v` (a table) over `cur`, a serde table struct: a key the
/// struct does not have or a value of the wrong type is an error naming the
/// key. A later file so wins for each key it sets, as for the top-level keys.
fn merged<T: Serialize + DeserializeOwned>(cur: &T, v: &toml::Value) -> Result<T, String> {
    let new = v.as_table().ok_or("expected a table")?;
    let mut t = toml::Table::try_from(cur).map_err(|e| e.to_string())?;
    for (k, v) in new {
        let one = toml::Table::from_iter([(k.clone(), v.clone())]);
        toml::Value::Table(one)
            .try_into::<T>()
            .map_err(|e| format!("key {}: {}", shown_key(k), e.message()))?;
        t.insert(k.clone(), v.clone());
    }
    toml::Value::Table(t)
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

fn apply_metrics(c: &mut FileConfig, v: &toml::Value) -> Result<(), String> {
    let m: MetricsConfig = merged(&c.metrics, v)?;
    if !m.file.as_os_str().is_empty() && !m.file.is_absolute() {
        return Err(format!(
            "key 'file': '{}' is not an absolute path (\"\" for no metrics)",
            m.file.display()
        ));
    }
    c.metrics = m;
    Ok(())
}

fn apply_notify(c: &mut FileConfig, v: &toml::Value) -> Result<(), String> {
    let n: NotifyConfig = merged(&c.notify, v)?;
    n.check().map_err(|e| {
        let e = e.strip_prefix("notify: ").unwrap_or(&e);
        format!("key {e}")
    })?;
    c.notify = n;
    Ok(())
}

impl FileConfig {
    /// The files' values over the built-in defaults of `s` (the flags are
    /// applied after this, by the caller).
    pub fn apply_to(&self, s: &mut Settings) {
        if let Some(g) = self.group.as_ref().filter(|g| !g.is_empty()) {
            s.group = Some(g.clone());
        }
        s.settle = self.settle.unwrap_or(s.settle);
        s.max_parallel = self.max_parallel.unwrap_or(s.max_parallel);
        s.session_ttl = self.session_ttl.unwrap_or(s.session_ttl);
        s.task_timeout = self.task_timeout.unwrap_or(s.task_timeout);
        if let Some(w) = self.wait_until_healthy {
            s.wait_until_healthy = Some(w).filter(|w| !w.is_zero());
        }
        s.check_holidays = self.check_holidays.unwrap_or(s.check_holidays);
        if let Some(t) = &self.trigger_command {
            s.trigger_command = Some(t.clone()).filter(|t| !t.is_empty());
        }
        if let Some(cmd) = &self.reboot_command {
            s.reboot = Reboot::Command(cmd.clone());
        } else if self.into_maintenance == Some(true) {
            s.reboot = Reboot::Command(vec!["umm".into(), "on".into()]);
        }
        if let Some(w) = &self.windows {
            s.windows = w.clone();
        }
    }

    pub fn stuck_after(&self) -> u64 {
        self.stuck_after
            .map(|d| d.as_secs())
            .unwrap_or(crate::stuck::DEFAULT_AFTER_SECS)
    }
}

/// A flag value in seconds: a bare number (the Python rebootmgr's flags
/// took seconds) or a duration with a unit ("2min", "1h 30min").
pub fn flag_duration(s: &str) -> Result<Duration, String> {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        let n: u64 = s
            .parse()
            .map_err(|_| format!("longer than {}d", duration::MAX_SECS / 86400))?;
        return duration::from_secs_checked(n);
    }
    duration::parse(s)
}

/// The next start of each file window (as `check-config` shows them).
fn next_starts(l: &Loaded) -> Vec<String> {
    let now = window::now().unwrap_or_else(|_| jiff::Timestamp::now());
    l.config
        .windows
        .iter()
        .flatten()
        .map(|w| match window::next_starts(w, now, 1) {
            Ok(v) => v
                .first()
                .map(|t| t.to_string())
                .unwrap_or_else(|| "never".into()),
            Err(e) => e,
        })
        .collect()
}

/// `rebootmgr check-config`: the report of [`load`].
pub fn report(l: &Loaded, json: bool) -> String {
    let starts = next_starts(l);
    if json {
        let v = serde_json::json!({
            "ok": l.errors.is_empty(),
            "files": l.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "errors": l.errors,
            "set": l.origins.iter().map(|(k, f)| (k.clone(), serde_json::Value::from(f.display().to_string()))).collect::<serde_json::Map<_, _>>(),
            "windows": starts.iter().map(|s| serde_json::json!({"next_start": s})).collect::<Vec<_>>(),
        });
        return serde_json::to_string_pretty(&v).unwrap_or_default();
    }
    let mut out = Vec::new();
    if l.files.is_empty() {
        out.push("no config files (built-in defaults)".to_string());
    }
    for f in &l.files {
        out.push(format!("read {}", f.display()));
    }
    for (k, f) in &l.origins {
        out.push(format!("  {k} from {}", f.display()));
    }
    for (i, s) in starts.iter().enumerate() {
        out.push(format!(
            "window {}: next start {s} (the node's files; Consul KV windows may replace them)",
            i + 1
        ));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use umm_testsupport::FakeRoot;

    fn loaded(files: &[(&str, &str)]) -> Loaded {
        let d = FakeRoot::new();
        for (p, t) in files {
            d.write(p, t);
        }
        load(&Root::new(d.path()))
    }

    /// The vendor file with its settings uncommented: lines `#key = …` and
    /// `#[table]` are the defaults; `# ` lines are prose and examples.
    fn vendor_uncommented() -> String {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dist/usr/lib/rebootmgr/rebootmgr.toml"
        ))
        .unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| l.starts_with(|c: char| c.is_ascii_lowercase() || c == '['))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn vendor_file_shows_every_key_with_the_builtin_default() {
        let body = vendor_uncommented();
        let l = loaded(&[("/etc/rebootmgr/rebootmgr.toml", &body)]);
        assert!(l.errors.is_empty(), "{:?}\n{body}", l.errors);
        for k in KEYS {
            assert!(
                l.origins.contains_key(*k),
                "vendor file lacks '{k}':\n{body}"
            );
        }
        for t in TABLES {
            assert!(
                l.origins.contains_key(t.name),
                "vendor file lacks [{}]",
                t.name
            );
        }
        let t: toml::Table = body.parse().unwrap();
        for k in CONSUL_KEYS {
            assert!(t["consul"].get(k).is_some(), "vendor file lacks consul.{k}");
        }
        let mut from_file = Settings::new("n1");
        l.config.apply_to(&mut from_file);
        assert_eq!(
            format!("{from_file:?}"),
            format!("{:?}", Settings::new("n1"))
        );
        assert_eq!(l.config.stuck_after(), crate::stuck::DEFAULT_AFTER_SECS);
        // The consul table with its defaults changes nothing over the environment.
        assert_eq!(l.config.consul, ConsulSettings::default());
        assert_eq!(l.config.windows, Some(vec![]));
        // [metrics] and [notify]: every field, with the built-in default.
        for (name, defaults) in [
            (
                "metrics",
                toml::Table::try_from(MetricsConfig::default()).unwrap(),
            ),
            (
                "notify",
                toml::Table::try_from(NotifyConfig::default()).unwrap(),
            ),
        ] {
            for (k, v) in &defaults {
                assert_eq!(t[name].get(k), Some(v), "vendor file: {name}.{k}");
            }
            assert_eq!(t[name].as_table().unwrap().len(), defaults.len(), "{name}");
        }
        assert_eq!(l.config.metrics, MetricsConfig::default());
        assert_eq!(l.config.notify, NotifyConfig::default());
    }

    #[test]
    fn metrics_and_notify_tables_merge_per_key_and_are_checked() {
        let l = loaded(&[
            (
                "/etc/rebootmgr/rebootmgr.toml",
                "[notify]\nwebhook_url = \"http://127.0.0.1:1/h\"\nsilence_lease = \"1h\"\n[metrics]\nfile = \"\"\n",
            ),
            (
                "/etc/rebootmgr/rebootmgr.toml.d/10-am.toml",
                "[notify]\nalertmanager_url = \"http://127.0.0.1:9093\"\nchat_escalation = false\n",
            ),
        ]);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        let n = &l.config.notify;
        assert_eq!(n.webhook_url, "http://127.0.0.1:1/h");
        assert_eq!(n.alertmanager_url, "http://127.0.0.1:9093");
        assert_eq!(n.silence_lease, "1h");
        assert!(!n.chat_escalation);
        assert_eq!(n.timeout, crate::notify::DEFAULT_TIMEOUT);
        assert_eq!(l.config.metrics.file, PathBuf::new());
        assert_eq!(
            l.origins["notify"],
            PathBuf::from("/etc/rebootmgr/rebootmgr.toml.d/10-am.toml")
        );

        let f = "/etc/rebootmgr/rebootmgr.toml";
        for (text, want) in [
            (
                "[notify]\nwebhook_url = \"ftp://x\"\n",
                "[notify] key webhook_url 'ftp://x': expected an http",
            ),
            (
                "[notify]\nalertmanager_url = \"am:9093\"\n",
                "[notify] key alertmanager_url 'am:9093'",
            ),
            (
                "[notify]\nsilence_label = \"in-stance\"\n",
                "[notify] key silence_label 'in-stance' is not a Prometheus label name",
            ),
            ("[notify]\ntimeout = \"5\"\n", "[notify] key timeout '5'"),
            (
                "[notify]\ntimeout = \"10min\"\n",
                "[notify] key timeout '10min': expected 1s to 5min",
            ),
            (
                "[notify]\nsilence_lease = 60\n",
                "[notify] key 'silence_lease': invalid type",
            ),
            (
                "[notify]\nwebhook = \"http://x\"\n",
                "[notify] key 'webhook': unknown field",
            ),
            (
                "[metrics]\nfile = \"m.prom\"\n",
                "[metrics] key 'file': 'm.prom' is not an absolute path",
            ),
            (
                "[metrics]\npath = \"/m.prom\"\n",
                "[metrics] key 'path': unknown field",
            ),
        ] {
            let l = loaded(&[(f, text)]);
            let e = l.errors.join("\n");
            assert!(e.contains(&format!("{f}: {want}")), "{want}\n{e}");
            assert_eq!(l.config, FileConfig::default(), "bad values change nothing");
        }
    }

    #[test]
    fn precedence_files_then_flags() {
        let l = loaded(&[
            (
                "/usr/lib/rebootmgr/rebootmgr.toml",
                "settle = \"10s\"\nmax_parallel = 2\n",
            ),
            (
                "/etc/rebootmgr/rebootmgr.toml",
                "settle = \"20s\"\n[consul]\nca_file = \"/etc/ca.pem\"\n",
            ),
            (
                "/run/rebootmgr/rebootmgr.toml.d/10-a.toml",
                "settle = \"30s\"\n",
            ),
            (
                "/etc/rebootmgr/rebootmgr.toml.d/20-b.toml",
                "task_timeout = \"5min\"\n",
            ),
            (
                "/run/rebootmgr/rebootmgr.toml.d/20-b.toml",
                "task_timeout = \"9min\"\n",
            ),
        ]);
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.config.settle, Some(Duration::from_secs(30)));
        assert_eq!(l.config.max_parallel, Some(2));
        assert_eq!(l.config.task_timeout, Some(Duration::from_secs(300)));
        assert_eq!(
            l.config.consul.tls.ca_file,
            Some(PathBuf::from("/etc/ca.pem"))
        );
        assert_eq!(
            l.origins["settle"],
            PathBuf::from("/run/rebootmgr/rebootmgr.toml.d/10-a.toml")
        );
        assert_eq!(l.files.len(), 4);
    }

    #[test]
    fn errors_name_file_and_key() {
        let l = loaded(&[(
            "/etc/rebootmgr/rebootmgr.toml",
            "settle = 130\nbogus = 1\nmax_parallel = 0\n[consul]\nca_fil = \"/x\"\n[[window]]\nstart = \"25:00\"\nduration = \"1h\"\n",
        )]);
        let e = l.errors.join("\n");
        for want in [
            "/etc/rebootmgr/rebootmgr.toml: key 'settle': a bare number",
            "/etc/rebootmgr/rebootmgr.toml: unknown key 'bogus'",
            "/etc/rebootmgr/rebootmgr.toml: key 'max_parallel'",
            "/etc/rebootmgr/rebootmgr.toml: [consul] unknown key 'ca_fil'",
            "/etc/rebootmgr/rebootmgr.toml: [window] window 1: key 'start'",
        ] {
            assert!(e.contains(want), "{want}\n{e}");
        }
        assert_eq!(l.config, FileConfig::default(), "bad values change nothing");
        let l = loaded(&[("/etc/rebootmgr/rebootmgr.toml.d/1.toml", "settle = [[[\n")]);
        assert!(
            l.errors[0].starts_with(
                "/etc/rebootmgr/rebootmgr.toml.d/1.toml: not valid TOML, file ignored: line 1"
            ),
            "{:?}",
            l.errors
        );
    }

    #[test]
    fn untrusted_file_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let d = FakeRoot::new();
        d.write("/etc/rebootmgr/rebootmgr.toml", "settle = \"1s\"\n");
        std::fs::set_permissions(
            d.path().join("etc/rebootmgr/rebootmgr.toml"),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let l = load(&Root::new(d.path()));
        assert_eq!(l.config.settle, None);
        assert!(l.errors[0].contains("writable"), "{:?}", l.errors);
    }

    #[test]
    fn flags_take_seconds_or_units() {
        assert_eq!(flag_duration("130").unwrap(), Duration::from_secs(130));
        assert_eq!(flag_duration("2min").unwrap(), Duration::from_secs(120));
        assert_eq!(
            flag_duration("1h 30min").unwrap(),
            Duration::from_secs(5400)
        );
        assert!(flag_duration("315360001").is_err());
        assert!(flag_duration("99999999999999999999999").is_err());
        assert!(flag_duration("5x").is_err());
        assert!(flag_duration("").is_err());
    }
}
