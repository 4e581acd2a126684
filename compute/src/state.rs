//! The drain's state, one JSON file per host (`<state_dir>/<host>.json`),
//! written atomically after every step so that a killed tool resumes from it.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};
use umm_core::fsutil::{self, Policy};
use umm_core::paths::Root;

/// Default state directory (under the root prefix, `UMM_ROOT`).
pub const DEFAULT_STATE_DIR: &str = "/var/lib/umm/compute";

/// Where the host is in the drain (docs/compute-host.md "State machine").
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Active,
    Disabling,
    Migrating,
    InMaintenance,
    Enabling,
    Error,
    Aborting,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Disabling => "disabling",
            Mode::Migrating => "migrating",
            Mode::InMaintenance => "in-maintenance",
            Mode::Enabling => "enabling",
            Mode::Error => "error",
            Mode::Aborting => "aborting",
        }
    }
}

/// What the operator asked for last.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum Requested {
    Active,
    Maintenance,
}

/// Per-server progress.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Pending,
    Migrating,
    Done,
    Failed,
    /// Not selected by the policy (e.g. PAUSED, ERROR): the host does not end empty.
    Skipped,
    /// SHUTOFF and `shutoff = leave`: stays on the host, does not keep it from maintenance.
    Left,
}

/// How a server moves.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Live migration (ACTIVE servers).
    #[default]
    Live,
    /// Cold migration, then confirm resize (SHUTOFF servers, `shutoff = migrate`).
    Cold,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ServerProgress {
    pub id: String,
    pub name: String,
    pub step: Step,
    #[serde(default)]
    pub kind: Kind,
    /// Whether the cold migration's confirm was asked for (this attempt).
    #[serde(default)]
    pub confirmed: bool,
    /// Migration requests made so far.
    pub attempts: u32,
    /// Nova's id of the current (or last) migration.
    #[serde(default)]
    pub migration: Option<u64>,
    /// When the current attempt was requested (Unix seconds).
    #[serde(default)]
    pub started: Option<u64>,
    /// Whether the per-migration timeout action was taken for this attempt.
    #[serde(default)]
    pub timed_out: bool,
    #[serde(default)]
    pub dest: Option<String>,
    /// Why it failed (Nova's fault, the migration's status, or the API error).
    #[serde(default)]
    pub fault: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HostState {
    pub host: String,
    pub requested: Requested,
    pub mode: Mode,
    /// The operator's reason (`--why`).
    pub why: String,
    /// The disabled_reason umm set; `None` if umm did not disable the service.
    pub umm_disabled_reason: Option<String>,
    /// The operator's own disable found when entering (never undone).
    pub operator_disabled_reason: Option<String>,
    pub policy: crate::drain::Policy,
    pub started: u64,
    pub updated: u64,
    #[serde(default)]
    pub empty_since: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    pub servers: Vec<ServerProgress>,
    /// Masakari hosts whose `on_maintenance` umm set (and `leave` clears);
    /// one already in maintenance is not umm's and is left alone.
    #[serde(default)]
    pub masakari: Vec<crate::nova::MasakariHost>,
}

impl HostState {
    pub fn count(&self, step: Step) -> usize {
        self.servers.iter().filter(|s| s.step == step).count()
    }
}

/// Host names become file names: only what a host name can hold.
pub fn check_host(host: &str) -> Result<(), String> {
    let ok = !host.is_empty()
        && host.len() <= 255
        && !host.starts_with(['.', '-'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name (letters, digits, '.', '-', '_'; not starting with '.' or '-')"
        ))
    }
}

/// The state files of one directory: `abs` (as on the running system) under `root`.
/// Reads go through `umm_core::fsutil` (the trust rule on the file and every
/// directory above it: a state another user could have planted is refused).
#[derive(Debug, Clone)]
pub struct Store {
    root: Root,
    abs: PathBuf,
    dir: PathBuf,
}

impl Store {
    pub fn new(root: &Root, abs: impl Into<PathBuf>) -> Store {
        let abs = abs.into();
        Store {
            dir: root.path(&abs),
            root: root.clone(),
            abs,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.json"))
    }

    pub fn lock_path(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.lock"))
    }

    /// The file a second `abort` writes to stop a running drain.
    pub fn abort_path(&self, host: &str) -> PathBuf {
        self.dir.join(format!("{host}.abort"))
    }

    pub fn load(&self, host: &str) -> Result<Option<HostState>, String> {
        let path = self.path(host);
        let text = fsutil::read_text(
            &self.root,
            &self.abs.join(format!("{host}.json")),
            &Policy::STATE,
        )
        .map_err(|e| format!("cannot read the drain state: {e}"))?;
        match text {
            None => Ok(None),
            Some(t) => serde_json::from_str(&t).map(Some).map_err(|e| {
                format!(
                    "{} is not a valid drain state ({e}); nothing was changed: inspect it, then \
                     move it aside to start over",
                    path.display()
                )
            }),
        }
    }

    pub fn save(&self, st: &mut HostState) -> io::Result<()> {
        st.updated = fsutil::now_unix();
        let mut data = serde_json::to_vec_pretty(st).map_err(io::Error::other)?;
        data.push(b'\n');
        fsutil::write_atomic(&self.path(&st.host), &data, 0o644)
    }

    /// Every host with a state file, sorted.
    pub fn hosts(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        let names = fsutil::list_dir(&self.root, &self.abs, &Policy::STATE)
            .map_err(|e| io::Error::other(e.to_string()))?
            .unwrap_or_default();
        for name in names {
            let name = name.to_string_lossy().into_owned();
            if let Some(h) = name.strip_suffix(".json") {
                if check_host(h).is_ok() {
                    out.push(h.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(check_host("compute1").is_ok());
        assert!(check_host("c-1.example_org").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b"] {
            assert!(check_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mode_names_match_serde() {
        for m in [
            Mode::Active,
            Mode::Disabling,
            Mode::Migrating,
            Mode::InMaintenance,
            Mode::Enabling,
            Mode::Error,
            Mode::Aborting,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
    }
}
