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
    /// umm's node_exporter textfile (docs/metrics.md); None: no metrics.
    pub metrics_file: Option<PathBuf>,
    /// The `[pacemaker]` table (Pacemaker standby around maintenance mode),
    /// read by the CLI only; raw, as `[coordination]`.
    pub pacemaker: Option<toml::Table>,
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
            metrics_file: Some(PathBuf::from(DEFAULT_METRICS_FILE)),
            pacemaker: None,
        }
    }
}

/// `keep_if_enabled`'s default: the Consul agent, so a node in maintenance
/// mode stays `alive` in the cluster with its maintenance check visible
/// (and `consul maint`, rebootmgr and umm's coordination have a local agent).
pub const DEFAULT_KEEP_IF_ENABLED: &[&str] = &["consul.service"];

/// `metrics_file`'s default: in the directory Debian's
/// prometheus-node-exporter reads (rebootmgr writes `rebootmgr.prom` beside it).
pub const DEFAULT_METRICS_FILE: &str = "/var/lib/prometheus/node-exporter/umm.prom";

/// The keys umm knows, in the order they are documented.
pub const KEYS: &[&str] = &[
    "enabled",
    "reboot_count",
    "counter_reset_time",
    "state_dir",
    "keep_units",
    "keep_if_enabled",
    "hook_timeout",
    "metrics_file",
    "coordination",
    "pacemaker",
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

/// Where one program's layered config files live. umm's is [`UMM`];
/// rebootmgr has its own (`/etc/rebootmgr/rebootmgr.toml` …) and the same
/// order, precedence and error style, because both go through
/// [`layer_files_of`] and [`read_layers`].
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Shipped by the package, every key commented with its default.
    pub vendor: &'static str,
    /// An old-format file read only while `admin` does not exist.
    pub legacy: Option<&'static str>,
    pub admin: &'static str,
    /// Drop-in directories: the runtime one (`/run/…`) first, then the
    /// admin one (`/etc/…`), whose file replaces a same-named runtime one.
    pub dropin_dirs: [&'static str; 2],
}

/// umm's files.
pub const UMM: Layout = Layout {
    vendor: paths::VENDOR_CONFIG,
    legacy: Some(paths::LEGACY_CONFIG),
    admin: paths::ADMIN_CONFIG,
    dropin_dirs: [paths::RUNTIME_DROPIN_DIR, paths::ADMIN_DROPIN_DIR],
};

/// The files that make up the configuration, in the order they are applied
/// (absolute paths of the running system; missing ones are left out), and
/// notes about files left out on purpose. A drop-in directory that cannot
/// be listed is reported in the notes' companion, the errors.
pub fn layer_files(root: &Root) -> (Vec<PathBuf>, Vec<String>) {
    let (files, notes, _) = layer_files_of(root, &UMM);
    (files, notes)
}

/// [`layer_files`] for any [`Layout`], with the errors (drop-in directories
/// that cannot be listed).
pub fn layer_files_of(root: &Root, layout: &Layout) -> (Vec<PathBuf>, Vec<String>, Vec<String>) {
    let mut files = Vec::new();
    let mut notes = Vec::new();
    let mut errors = Vec::new();
    // Existence only (lstat: nothing is opened); opening is load()'s job.
    let exists = |p: &str| root.path(p).symlink_metadata().is_ok();
    if exists(layout.vendor) {
        files.push(PathBuf::from(layout.vendor));
    }
    if let Some(legacy) = layout.legacy.filter(|l| exists(l)) {
        if exists(layout.admin) {
            notes.push(format!(
                "{legacy} is ignored because {} exists; remove the old file",
                layout.admin
            ));
        } else {
            files.push(PathBuf::from(legacy));
        }
    }
    if exists(layout.admin) {
        files.push(PathBuf::from(layout.admin));
    }
    let mut dropins: BTreeMap<String, PathBuf> = BTreeMap::new();
    // /run first, so that /etc replaces a same-named /run file.
    for dir in layout.dropin_dirs {
        let names = match fsutil::list_dir(root, Path::new(dir), &fsutil::Policy::CONFIG) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                errors.push(format!("{dir}: {}; its drop-ins are ignored", e.problem()));
                continue;
            }
        };
        for name in names {
            let name = name.to_string_lossy().into_owned();
            if name.ends_with(".toml") && !name.starts_with('.') {
                dropins.insert(name.clone(), Path::new(dir).join(&name));
            }
        }
    }
    files.extend(dropins.into_values());
    (files, notes, errors)
}

/// Reads every file of `layout` in order through the one safe helper
/// ([`fsutil::read_text`], [`fsutil::Policy::CONFIG`]) and hands each
/// file's text to `apply`, or the error that names the file when it could
/// not be used (in file order, so messages keep the order of the files).
/// Returns the notes and the errors about drop-in directories; never fails.
pub fn read_layers(
    root: &Root,
    layout: &Layout,
    mut apply: impl FnMut(PathBuf, Result<&str, String>),
) -> (Vec<String>, Vec<String>) {
    let (files, notes, errors) = layer_files_of(root, layout);
    for file in files {
        // One open: trusted (file and every directory above it), a regular
        // file, at most 1 MiB, then read.
        match fsutil::read_text(root, &file, &fsutil::Policy::CONFIG) {
            Ok(Some(t)) => apply(file, Ok(&t)),
            Ok(None) => continue,
            Err(e) => {
                let msg = format!("{}: {}", file.display(), e.problem());
                apply(file, Err(msg))
            }
        }
    }
    (notes, errors)
}

/// Loads the configuration for `root`. Never fails; see [`Loaded::errors`].
pub fn load(root: &Root) -> Loaded {
    let mut loaded = defaults();
    let (notes, errors) = read_layers(root, &UMM, |file, text| match text {
        Ok(t) => apply_text(&mut loaded, file, t),
        Err(e) => loaded.errors.push(e),
    });
    // The listing's notes and errors first, as they are about which files
    // were read at all.
    loaded.warnings.splice(0..0, notes);
    loaded.errors.splice(0..0, errors);
    loaded
}

/// Applies one config file's text on top of `loaded` (the legacy
/// `/etc/umm.conf` by its name, anything else as TOML). Pure: no file is
/// read, so the fuzz targets run exactly what load() runs on each file.
pub fn apply_text(loaded: &mut Loaded, file: PathBuf, text: &str) {
    if file == Path::new(paths::LEGACY_CONFIG) {
        apply_legacy(loaded, &file, text);
    } else {
        match parse_file(&file, text) {
            Ok(table) => apply_table(loaded, &file, &table),
            Err(e) => {
                loaded.errors.push(e);
                return;
            }
        }
    }
    loaded.files.push(file);
}

/// A config file's text as a TOML table, or the error naming the file and
/// where in it the text is not TOML (umm's and rebootmgr's files alike).
pub fn parse_file(file: &Path, text: &str) -> Result<toml::Table, String> {
    if only_comments(text) {
        // The vendor file is all comments (every key with its default): an
        // empty table, without running the TOML parser at each boot.
        return Ok(toml::Table::new());
    }
    text.parse::<toml::Table>().map_err(|e| {
        format!(
            "{}: not valid TOML, file ignored: {}",
            file.display(),
            toml_error(text, &e)
        )
    })
}

/// Whether `text` is a TOML document of blank lines and comments only, with
/// no character TOML forbids in a comment (controls other than tab; CR only
/// before LF): then it is valid TOML and an empty table. Anything else goes
/// to the parser, so the answer for every input is the parser's.
pub fn only_comments(text: &str) -> bool {
    let b = text.as_bytes();
    // CR is allowed only as part of CRLF.
    let crlf = |i: usize| b.get(i + 1) == Some(&b'\n');
    let mut i = 0;
    while i < b.len() {
        // A line: blanks, then its end or a comment.
        while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
            i += 1;
        }
        match b.get(i) {
            None => break,
            Some(b'\n') => {
                i += 1;
                continue;
            }
            Some(b'\r') if crlf(i) => {
                i += 2;
                continue;
            }
            Some(b'#') => i += 1,
            Some(_) => return false,
        }
        while i < b.len() && b[i] != b'\n' {
            let c = b[i];
            if (c < 0x20 && c != b'\t' && !(c == b'\r' && crlf(i))) || c == 0x7f {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// A [`Loaded`] with the built-in defaults and nothing applied yet.
pub fn defaults() -> Loaded {
    Loaded {
        config: Config::default(),
        origins: BTreeMap::new(),
        files: Vec::new(),
        warnings: Vec::new(),
        errors: Vec::new(),
    }
}

/// Where a TOML error is and what it is, without the line's text (a config
/// that is a link to a secret must not show it in kmsg or `umm status`).
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let what = e.message().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("line {line}, column {col}: {}", what.trim())
        }
        None => what.trim().to_string(),
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let (mut line, mut col) = (1, 1);
    for (i, c) in text.char_indices() {
        if i >= at {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// A key name as it may appear in a message: an unknown key is shown only
/// when it looks like a key (letters, digits, `_`, `-`, `.`, at most 40),
/// so a file that is not a config at all does not get its text echoed.
pub fn shown_key(key: &str) -> String {
    if !key.is_empty()
        && key.len() <= 40
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        format!("'{key}'")
    } else {
        "(name not shown: it does not look like a key)".to_string()
    }
}

fn apply_table(l: &mut Loaded, file: &Path, table: &toml::Table) {
    for (key, value) in table {
        let Some(&k) = KEYS.iter().find(|k| **k == key.as_str()) else {
            l.warnings.push(format!(
                "{}: unknown key {} ignored",
                file.display(),
                shown_key(key)
            ));
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
            "metrics_file" => match value.as_str() {
                Some("") => {
                    l.config.metrics_file = None;
                    Ok(())
                }
                Some(s) if s.starts_with('/') && !s.contains("/../") && !s.ends_with('/') => {
                    l.config.metrics_file = Some(PathBuf::from(s));
                    Ok(())
                }
                _ => Err(bad(
                    "expected an absolute file path such as \"/var/lib/prometheus/node-exporter/umm.prom\", or \"\" for no metrics",
                )),
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
            "pacemaker" => match value.as_table() {
                Some(t) => {
                    l.config.pacemaker = Some(t.clone());
                    Ok(())
                }
                None => Err(bad("expected a table [pacemaker]")),
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

/// A unit name that is safe to turn into a symlink name (public for the
/// fuzz targets' invariants: every unit a loaded config holds is one).
pub fn valid_unit_name(s: &str) -> bool {
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
                    "{}:{}: unknown key {} ignored",
                    file.display(),
                    n + 1,
                    shown_key(other)
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

    /// The comment-only fast path answers as the parser does: where it says
    /// "only comments", the parser gives an empty table; the vendor file
    /// takes it; anything the parser refuses is never taken.
    #[test]
    fn only_comments_agrees_with_the_parser() {
        let vendor = fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dist/usr/lib/umm/umm.toml"
        ))
        .unwrap();
        assert!(
            only_comments(&vendor),
            "the vendor file is meant to be all comments"
        );
        let cases = [
            ("", true),
            ("\n\n", true),
            ("# a\n  \t# b\n", true),
            ("#\r\n# crlf\r\n", true),
            ("# tab\there\n", true),
            ("# unicode é ✓\n", true),
            ("#x\r", false),
            ("\r\n \t\r\n", true),
            ("\n  # x\r\n#", true),
            ("# a\r\nb", false),
            ("\r", false),
            ("# a\rb\n", false),
            ("# nul \u{0}\n", false),
            ("# del \u{7f}\n", false),
            ("# vt \u{b}\n", false),
            ("a = 1 # c\n", false),
            ("[t]\n", false),
            ("  x\n", false),
            ("\u{c}\n", false),
        ];
        for (text, want) in cases {
            assert_eq!(only_comments(text), want, "{text:?}");
            let parsed = text.parse::<toml::Table>();
            if want {
                assert_eq!(parsed.as_ref().ok(), Some(&toml::Table::new()), "{text:?}");
            }
            assert_eq!(
                parse_file(Path::new("f"), text).ok(),
                parsed.ok(),
                "{text:?}: the fast path must give the parser's answer"
            );
        }
    }

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
