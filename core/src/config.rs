//! Layered configuration.
//!
//! Files are read in this order; a later file wins for each key it sets
//! (pinned by `tests::precedence`, documented in docs/configuration.md):
//!
//! 1. built-in defaults
//! 2. `/usr/lib/umm/umm.toml` (vendor)
//! 3. `/etc/umm.conf` (legacy shell-style file) — only when `/etc/umm/umm.toml`
//!    does not exist
//! 4. `/etc/umm/umm.toml` (admin)
//! 5. drop-ins `*.toml` from `/run/umm/umm.toml.d/` and `/etc/umm/umm.toml.d/`,
//!    together in lexical order of file name; a name present in both is read
//!    from `/etc` only (as systemd treats drop-ins)
//!
//! Reading never fails: a file that cannot be used is reported in
//! [`Loaded::errors`] and skipped, a bad value is reported and the key keeps
//! the value of the layers before it. The generator logs these and boots on;
//! the CLI shows them.

use crate::duration;
use crate::fsutil;
use crate::paths::{self, Root};
use crate::perms;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The master switch: false = no redirect, no counting.
    pub enabled: bool,
    /// Maintenance is forced after more than this many consecutive unclean boots.
    pub reboot_count: u32,
    /// Uptime in normal operation after which a boot counts as stable.
    pub counter_reset_time: Duration,
    /// Where the persistent state lives (must be on a file system mounted
    /// before `local-fs.target`; see docs/configuration.md for a separate /var).
    pub state_dir: PathBuf,
    /// Extra units that must also run in maintenance mode.
    pub keep_units: Vec<String>,
    /// Units kept in maintenance mode only when they are enabled for normal
    /// operation: agents the cluster must keep seeing (Consul by default).
    pub keep_if_enabled: Vec<String>,
    /// Per-hook time limit; then SIGTERM, then SIGKILL.
    pub hook_timeout: Duration,
    /// The `[coordination]` table (Consul), read by the CLI only. Kept raw:
    /// its keys are validated in one place, umm-coord's
    /// `CoordinationConfig::from_table` (core may not depend on coord).
    pub coordination: Option<toml::Table>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            reboot_count: 2,
            counter_reset_time: Duration::from_secs(600),
            state_dir: PathBuf::from(paths::DEFAULT_STATE_DIR),
            keep_units: Vec::new(),
            keep_if_enabled: DEFAULT_KEEP_IF_ENABLED
                .iter()
                .map(|u| u.to_string())
                .collect(),
            hook_timeout: Duration::from_secs(600),
            coordination: None,
        }
    }
}

/// `keep_if_enabled`'s default: the Consul agent, so a node in maintenance
/// mode stays `alive` in the cluster with its maintenance check visible
/// (and `consul maint`, rebootmgr and umm's coordination have a local agent).
pub const DEFAULT_KEEP_IF_ENABLED: &[&str] = &["consul.service"];

/// The keys umm knows, in the order they are documented.
pub const KEYS: &[&str] = &[
    "enabled",
    "reboot_count",
    "counter_reset_time",
    "state_dir",
    "keep_units",
    "keep_if_enabled",
    "hook_timeout",
    "coordination",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// Which file set each key (absent = built-in default).
    pub origins: BTreeMap<&'static str, PathBuf>,
    /// Files read, in order (paths as on the running system).
    pub files: Vec<PathBuf>,
    pub warnings: Vec<String>,
    /// Files or values that could not be used. Each names the file (and key).
    pub errors: Vec<String>,
}

impl Loaded {
    pub fn origin(&self, key: &str) -> Origin {
        match self.origins.get(key) {
            Some(p) => Origin::File(p.clone()),
            None => Origin::Default,
        }
    }
}

/// The files that make up the configuration, in the order they are applied
/// (absolute paths of the running system; missing ones are left out).
pub fn layer_files(root: &Root) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let exists = |p: &str| root.path(p).exists();
    if exists(paths::VENDOR_CONFIG) {
        files.push(PathBuf::from(paths::VENDOR_CONFIG));
    }
    if exists(paths::LEGACY_CONFIG) {
        if exists(paths::ADMIN_CONFIG) {
            notes.push(format!(
                "{} is ignored because {} exists; remove the old file",
                paths::LEGACY_CONFIG,
                paths::ADMIN_CONFIG
            ));
        } else {
            files.push(PathBuf::from(paths::LEGACY_CONFIG));
        }
    }
    if exists(paths::ADMIN_CONFIG) {
        files.push(PathBuf::from(paths::ADMIN_CONFIG));
    }
    let mut dropins: BTreeMap<String, PathBuf> = BTreeMap::new();
    // /run first, so that /etc replaces a same-named /run file.
    for dir in [paths::RUNTIME_DROPIN_DIR, paths::ADMIN_DROPIN_DIR] {
        let Ok(rd) = std::fs::read_dir(root.path(dir)) else {
            continue;
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".toml") && !name.starts_with('.') {
                dropins.insert(name.clone(), Path::new(dir).join(&name));
            }
        }
    }
    files.extend(dropins.into_values());
    (files, notes)
}

/// Loads the configuration for `root`. Never fails; see [`Loaded::errors`].
pub fn load(root: &Root) -> Loaded {
    let (files, notes) = layer_files(root);
    let mut loaded = Loaded {
        config: Config::default(),
        origins: BTreeMap::new(),
        files: Vec::new(),
        warnings: notes,
        errors: Vec::new(),
    };
    for file in files {
        let real = root.path(&file);
        if let Err(e) = perms::check_trusted(&real) {
            loaded
                .errors
                .push(format!("{}: {}", file.display(), e.problem));
            continue;
        }
        let text = match fsutil::read_optional(&real) {
            Ok(Some(t)) => t,
            Ok(None) => continue,
            Err(e) => {
                loaded
                    .errors
                    .push(format!("{}: cannot read: {e}", file.display()));
                continue;
            }
        };
        if file == Path::new(paths::LEGACY_CONFIG) {
            apply_legacy(&mut loaded, &file, &text);
        } else {
            match text.parse::<toml::Table>() {
                Ok(table) => apply_table(&mut loaded, &file, &table),
                Err(e) => {
                    let msg = e.to_string().replace('\n', " ");
                    loaded.errors.push(format!(
                        "{}: not valid TOML, file ignored: {}",
                        file.display(),
                        msg.trim()
                    ));
                    continue;
                }
            }
        }
        loaded.files.push(file);
    }
    loaded
}

fn apply_table(l: &mut Loaded, file: &Path, table: &toml::Table) {
    for (key, value) in table {
        let Some(&k) = KEYS.iter().find(|k| **k == key.as_str()) else {
            l.warnings
                .push(format!("{}: unknown key '{key}' ignored", file.display()));
            continue;
        };
        let bad = |what: &str| {
            format!(
                "{}: key '{k}': {what}; the value from earlier files is kept",
                file.display()
            )
        };
        let result: Result<(), String> = match k {
            "enabled" => value
                .as_bool()
                .map(|b| l.config.enabled = b)
                .ok_or_else(|| bad("expected true or false")),
            "reboot_count" => match value.as_integer() {
                Some(n) if (0..=1000).contains(&n) => {
                    l.config.reboot_count = n as u32;
                    Ok(())
                }
                _ => Err(bad("expected a whole number from 0 to 1000")),
            },
            "counter_reset_time" | "hook_timeout" => match value {
                toml::Value::String(s) => match duration::parse(s) {
                    Ok(d) if d.as_secs() > 0 => {
                        if k == "counter_reset_time" {
                            l.config.counter_reset_time = d;
                        } else {
                            l.config.hook_timeout = d;
                        }
                        Ok(())
                    }
                    Ok(_) => Err(bad("must be longer than 0s")),
                    Err(e) => Err(bad(&e)),
                },
                toml::Value::Integer(_) => Err(bad(duration::BARE_NUMBER_HINT)),
                _ => Err(bad("expected a duration string such as \"10min\"")),
            },
            "state_dir" => match value.as_str() {
                Some(s) if s.starts_with('/') && !s.contains("/../") => {
                    l.config.state_dir = PathBuf::from(s);
                    Ok(())
                }
                _ => Err(bad("expected an absolute path")),
            },
            "keep_units" | "keep_if_enabled" => match unit_list(value) {
                Some(u) => {
                    if k == "keep_units" {
                        l.config.keep_units = u;
                    } else {
                        l.config.keep_if_enabled = u;
                    }
                    Ok(())
                }
                None if value.is_array() => Err(bad(
                    "expected a list of unit names such as [\"openvswitch-switch.service\"]",
                )),
                None => Err(bad("expected a list of unit names")),
            },
            "coordination" => match value.as_table() {
                Some(t) => {
                    l.config.coordination = Some(t.clone());
                    Ok(())
                }
                None => Err(bad("expected a table [coordination]")),
            },
            _ => Ok(()),
        };
        match result {
            Ok(()) => {
                l.origins.insert(k, file.to_path_buf());
            }
            Err(e) => l.errors.push(e),
        }
    }
}

/// A unit name that is safe to turn into a symlink name.
fn unit_list(value: &toml::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| {
            v.as_str()
                .filter(|s| valid_unit_name(s))
                .map(str::to_string)
        })
        .collect()
}

fn valid_unit_name(s: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".service",
        ".socket",
        ".target",
        ".mount",
        ".path",
        ".timer",
        ".device",
        ".swap",
        ".slice",
        ".scope",
        ".automount",
    ];
    !s.is_empty()
        && s.len() <= 255
        && !s.starts_with('.')
        && SUFFIXES.iter().any(|x| s.ends_with(x) && s.len() > x.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// The old `/etc/umm.conf`: `UMM=yes|no`, `REBOOT_COUNT=N`,
/// `COUNTER_RESET_TIME=<minutes>`. Read as data, never run as shell.
fn apply_legacy(l: &mut Loaded, file: &Path, text: &str) {
    l.warnings.push(format!(
        "{} is the old shell-style config; it is read for UMM, REBOOT_COUNT and COUNTER_RESET_TIME only: move them to {} (see umm(8))",
        file.display(),
        paths::ADMIN_CONFIG
    ));
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, val)) = line.split_once('=') else {
            l.warnings.push(format!(
                "{}:{}: not KEY=VALUE, ignored",
                file.display(),
                n + 1
            ));
            continue;
        };
        let val = val.trim().trim_matches(|c| c == '"' || c == '\'');
        let bad = |what: &str| format!("{}:{}: {key}: {what}; ignored", file.display(), n + 1);
        let res: Result<&'static str, String> = match key.trim() {
            "UMM" => match val.to_ascii_lowercase().as_str() {
                "yes" | "1" | "true" | "on" => {
                    l.config.enabled = true;
                    Ok("enabled")
                }
                "no" | "0" | "false" | "off" => {
                    l.config.enabled = false;
                    Ok("enabled")
                }
                _ => Err(bad("expected yes or no")),
            },
            "REBOOT_COUNT" => match val.parse::<u32>() {
                Ok(v) if v <= 1000 => {
                    l.config.reboot_count = v;
                    Ok("reboot_count")
                }
                _ => Err(bad("expected a whole number")),
            },
            "COUNTER_RESET_TIME" => match val.parse::<u64>() {
                Ok(m) if m > 0 && m < 1_000_000 => {
                    l.config.counter_reset_time = Duration::from_secs(m * 60);
                    Ok("counter_reset_time")
                }
                _ => Err(bad("expected a whole number of minutes")),
            },
            other => {
                l.warnings.push(format!(
                    "{}:{}: unknown key '{other}' ignored",
                    file.display(),
                    n + 1
                ));
                continue;
            }
        };
        match res {
            Ok(k) => {
                l.origins.insert(k, file.to_path_buf());
            }
            Err(e) => l.errors.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use umm_testsupport::FakeRoot;

    #[test]
    fn documented_defaults() {
        let d = FakeRoot::new();
        let l = load(&Root::new(d.path()));
        let c = &l.config;
        assert!(c.enabled);
        assert_eq!(c.reboot_count, 2);
        assert_eq!(c.counter_reset_time, Duration::from_secs(600));
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/umm"));
        assert!(c.keep_units.is_empty());
        assert_eq!(c.hook_timeout, Duration::from_secs(600));
        assert!(l.errors.is_empty() && l.warnings.is_empty() && l.files.is_empty());
        assert_eq!(l.origin("enabled"), Origin::Default);
    }

    #[test]
    fn precedence() {
        let d = FakeRoot::new();
        let r = d.path();
        d.write(
            "/usr/lib/umm/umm.toml",
            "reboot_count = 1\nenabled = true\nkeep_units = [\"a.service\"]\n",
        );
        d.write(
            "/etc/umm/umm.toml",
            "reboot_count = 3\ncounter_reset_time = \"5min\"\n",
        );
        d.write(
            "/run/umm/umm.toml.d/10-run.toml",
            "reboot_count = 4\nhook_timeout = \"1min\"\n",
        );
        d.write("/etc/umm/umm.toml.d/20-etc.toml", "reboot_count = 5\n");
        d.write("/run/umm/umm.toml.d/30-run.toml", "reboot_count = 6\n");
        // Same name in /etc and /run: only /etc's is read.
        d.write("/run/umm/umm.toml.d/40-both.toml", "enabled = false\n");
        d.write(
            "/etc/umm/umm.toml.d/40-both.toml",
            "counter_reset_time = \"7min\"\n",
        );
        d.write("/etc/umm/umm.toml.d/50-not-toml.conf", "enabled = false\n");
        let l = load(&Root::new(r));
        assert_eq!(
            l.files,
            [
                "/usr/lib/umm/umm.toml",
                "/etc/umm/umm.toml",
                "/run/umm/umm.toml.d/10-run.toml",
                "/etc/umm/umm.toml.d/20-etc.toml",
                "/run/umm/umm.toml.d/30-run.toml",
                "/etc/umm/umm.toml.d/40-both.toml",
            ]
            .map(PathBuf::from)
        );
        assert_eq!(l.config.reboot_count, 6);
        assert!(l.config.enabled);
        assert_eq!(l.config.counter_reset_time, Duration::from_secs(420));
        assert_eq!(l.config.hook_timeout, Duration::from_secs(60));
        assert_eq!(l.config.keep_units, vec!["a.service"]);
        assert_eq!(
            l.origin("reboot_count"),
            Origin::File("/run/umm/umm.toml.d/30-run.toml".into())
        );
        assert_eq!(
            l.origin("enabled"),
            Origin::File("/usr/lib/umm/umm.toml".into())
        );
        assert!(l.errors.is_empty(), "{:?}", l.errors);
    }

    #[test]
    fn bad_values_name_file_and_key_and_keep_earlier_value() {
        let d = FakeRoot::new();
        let r = d.path();
        d.write("/etc/umm/umm.toml", "enabled = false\nreboot_count = 3\n");
        d.write("/etc/umm/umm.toml.d/10.toml",
            "counter_reset_time = 10\nreboot_count = \"x\"\nstate_dir = \"rel\"\nkeep_units = [\"../x\"]\nbogus = 1\n",
        );
        let l = load(&Root::new(r));
        assert!(!l.config.enabled);
        assert_eq!(l.config.reboot_count, 3);
        assert_eq!(l.config.counter_reset_time, Duration::from_secs(600));
        let errs = l.errors.join("\n");
        for key in [
            "counter_reset_time",
            "reboot_count",
            "state_dir",
            "keep_units",
        ] {
            assert!(
                errs.contains(&format!("/etc/umm/umm.toml.d/10.toml: key '{key}'")),
                "{errs}"
            );
        }
        assert!(errs.contains("bare number"), "{errs}");
        assert_eq!(
            l.warnings,
            vec!["/etc/umm/umm.toml.d/10.toml: unknown key 'bogus' ignored"]
        );
    }

    #[test]
    fn broken_file_is_skipped_whole() {
        let d = FakeRoot::new();
        let r = d.path();
        d.write("/etc/umm/umm.toml", "enabled = false\n");
        d.write("/etc/umm/umm.toml.d/10.toml", "reboot_count = [[[\n");
        let l = load(&Root::new(r));
        assert!(!l.config.enabled);
        assert_eq!(l.errors.len(), 1);
        assert!(
            l.errors[0].starts_with("/etc/umm/umm.toml.d/10.toml: not valid TOML"),
            "{:?}",
            l.errors
        );
        assert_eq!(l.files, vec![PathBuf::from("/etc/umm/umm.toml")]);
    }

    #[test]
    fn untrusted_file_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = FakeRoot::new();
        let r = d.path();
        d.write("/etc/umm/umm.toml", "enabled = false\n");
        fs::set_permissions(
            r.join("etc/umm/umm.toml"),
            fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let l = load(&Root::new(r));
        assert!(l.config.enabled);
        assert!(
            l.errors[0].contains("/etc/umm/umm.toml") && l.errors[0].contains("writable"),
            "{:?}",
            l.errors
        );
    }

    #[test]
    fn legacy_file_is_read_as_data_in_minutes() {
        let d = FakeRoot::new();
        let r = d.path();
        d.write(
            "/etc/umm.conf",
            "# old\nUMM=no\nREBOOT_COUNT=5\nCOUNTER_RESET_TIME=3\nX=$(reboot)\n",
        );
        let l = load(&Root::new(r));
        assert!(!l.config.enabled);
        assert_eq!(l.config.reboot_count, 5);
        assert_eq!(l.config.counter_reset_time, Duration::from_secs(180));
        assert!(l
            .warnings
            .iter()
            .any(|w| w.contains("move them to /etc/umm/umm.toml")));
        assert_eq!(l.origin("enabled"), Origin::File("/etc/umm.conf".into()));

        d.write("/etc/umm/umm.toml", "reboot_count = 1\n");
        let l = load(&Root::new(r));
        assert!(
            l.config.enabled,
            "legacy must be ignored once umm.toml exists"
        );
        assert!(l
            .warnings
            .iter()
            .any(|w| w.contains("/etc/umm.conf is ignored")));
    }

    #[test]
    fn unit_names() {
        assert!(valid_unit_name("openvswitch-switch.service"));
        assert!(valid_unit_name("getty@tty1.service"));
        assert!(!valid_unit_name("../../etc/passwd.service"));
        assert!(!valid_unit_name("foo"));
        assert!(!valid_unit_name(".service"));
    }
}
