//! GRUB 2's environment block (`/boot/grub/grubenv`) and the maintenance
//! entry of `grub.d/55_umm` (fixed id [`ENTRY_ID`]).
//!
//! Reading is done here (the block is a small text file); every write goes
//! through the distribution's `grub-editenv` (`grub2-editenv`), exactly like
//! `grub-reboot` and GRUB's own `savedefault` would change it.
//!
//! Two ways a maintenance entry gets selected in grubenv:
//! - `next_entry` (`grub-reboot`, `umm on --via-grub`): GRUB boots it once and
//!   clears it — when it can write grubenv at boot, which it cannot on LVM,
//!   RAID (diskfilter) and some file systems: then every boot is MM;
//! - `saved_entry` (`GRUB_DEFAULT=saved` + `GRUB_SAVEDEFAULT=true` and a
//!   maintenance entry that carried `savedefault`, or `grub-set-default`):
//!   every boot is MM.
//!
//! `umm off` clears both when they point at a maintenance entry, and
//! `umm status` names them.

use std::path::{Path, PathBuf};
use std::process::Command;
use umm_core::fsutil;
use umm_core::paths::Root;

/// The top-level maintenance entry's id (grub.d/55_umm).
pub const ENTRY_ID: &str = "umm-maintenance";
/// What every grubenv starts with (grub-core/lib/envblk.c).
const SIGNATURE: &str = "# GRUB Environment Block\n";
/// The variables that select the entry GRUB boots.
pub const SELECTING: [&str; 2] = ["next_entry", "saved_entry"];
/// A grubenv is 1024 bytes; anything far larger is not one.
const MAX_SIZE: usize = 64 * 1024;
/// Where GRUB can not write its environment block at boot (then `next_entry`
/// is never cleared): the abstractions and file systems Debian's
/// /etc/grub.d/00_header checks before it lets `recordfail` write it.
const UNWRITABLE_ABSTRACTIONS: [&str; 2] = ["diskfilter", "lvm"];
const UNWRITABLE_FS: [&str; 8] = [
    "btrfs", "cpiofs", "newc", "odc", "romfs", "squash4", "tarfs", "zfs",
];

/// The GRUB directory of this system: `/boot/grub` (Debian, Ubuntu, SUSE) or
/// `/boot/grub2` (RHEL, Fedora), whichever holds a grub.cfg.
pub fn grub_dir(root: &Root) -> Option<PathBuf> {
    ["/boot/grub", "/boot/grub2"]
        .into_iter()
        .map(PathBuf::from)
        .find(|d| root.path(d.join("grub.cfg")).is_file())
}

/// Parses an environment block: `name=value` lines after the signature,
/// `\\` and `\n` escaped in values, `#` lines (and the padding) ignored.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let body = text
        .strip_prefix(SIGNATURE)
        .ok_or("it does not start with '# GRUB Environment Block'")?;
    let mut vars = Vec::new();
    for line in body.split('\n') {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, raw) = line
            .split_once('=')
            .ok_or_else(|| format!("line {line:?} is not name=value"))?;
        let mut value = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(o) => value.push(o),
                    None => value.push('\\'),
                }
            } else {
                value.push(c);
            }
        }
        vars.push((name.to_string(), value));
    }
    Ok(vars)
}

/// An entry GRUB would boot that is one of 55_umm's: an id (or a
/// `submenu>entry` path) with a `umm-` part, or a maintenance-mode title.
/// A numeric index cannot be told without the menu and is not matched.
pub fn is_maintenance_entry(value: &str) -> bool {
    value
        .split('>')
        .any(|p| p.starts_with("umm-") || p.ends_with("(maintenance mode)"))
}

/// What grubenv says, read without changing anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// The grubenv path (on the real root, not prefixed).
    pub path: PathBuf,
    /// None: the file does not exist.
    pub vars: Option<Vec<(String, String)>>,
}

impl Env {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .as_ref()?
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(variable, entry)` for each selecting variable that points at a
    /// maintenance entry.
    pub fn maintenance_selections(&self) -> Vec<(&'static str, String)> {
        SELECTING
            .iter()
            .filter_map(|&n| {
                self.get(n)
                    .filter(|v| is_maintenance_entry(v))
                    .map(|v| (n, v.to_string()))
            })
            .collect()
    }
}

/// Reads grubenv of this system's GRUB directory. `Ok(None)`: no GRUB here.
pub fn read_env(root: &Root) -> Result<Option<Env>, String> {
    let Some(dir) = grub_dir(root) else {
        return Ok(None);
    };
    let path = dir.join("grubenv");
    let text = fsutil::read_text(root, &path, &fsutil::Policy::BOOT).map_err(|e| e.to_string())?;
    let vars = match text {
        None => None,
        Some(t) if t.len() > MAX_SIZE => {
            return Err(format!(
                "{} is {} bytes, not a GRUB environment block",
                path.display(),
                t.len()
            ))
        }
        Some(t) => Some(parse(&t).map_err(|e| format!("{} is corrupt: {e}", path.display()))?),
    };
    Ok(Some(Env { path, vars }))
}

/// Runs the first of `names` that exists with `args`.
fn run_tool(names: &[&str], args: &[&std::ffi::OsStr]) -> Result<String, String> {
    let mut last = String::new();
    for name in names {
        match Command::new(name).args(args).output() {
            Ok(o) if o.status.success() => return Ok(String::from_utf8_lossy(&o.stdout).into()),
            Ok(o) => {
                return Err(format!(
                    "{name} {} failed ({}): {}",
                    args.iter()
                        .map(|a| a.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(" "),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                last = format!("{} not found", names.join(" / "));
            }
            Err(e) => return Err(format!("cannot run {name}: {e}")),
        }
    }
    Err(last)
}

fn editenv(root: &Root, env: &Path, args: &[&str]) -> Result<(), String> {
    let file = root.path(env);
    let mut argv: Vec<&std::ffi::OsStr> = vec![file.as_os_str()];
    argv.extend(args.iter().map(std::ffi::OsStr::new));
    run_tool(&["grub-editenv", "grub2-editenv"], &argv).map(|_| ())
}

/// Unsets the variables of `selections` (from [`Env::maintenance_selections`]).
pub fn clear(root: &Root, env: &Env, selections: &[(&'static str, String)]) -> Result<(), String> {
    if selections.is_empty() {
        return Ok(());
    }
    let mut args = vec!["unset"];
    args.extend(selections.iter().map(|(n, _)| *n));
    editenv(root, &env.path, &args)
}

/// The command an operator runs when [`clear`] failed.
pub fn clear_hint(env: &Env, selections: &[(&'static str, String)]) -> String {
    let names: Vec<&str> = selections.iter().map(|(n, _)| *n).collect();
    format!(
        "grub-editenv {} unset {}",
        env.path.display(),
        names.join(" ")
    )
}

/// Checks that GRUB will boot the maintenance entry once and then clear
/// `next_entry`; returns the grubenv to write.
pub fn check_one_shot(root: &Root) -> Result<Env, String> {
    let dir = grub_dir(root).ok_or(
        "no /boot/grub/grub.cfg or /boot/grub2/grub.cfg: this system does not boot with GRUB 2 (or /boot is not mounted); use 'umm on' instead",
    )?;
    let cfg_path = dir.join("grub.cfg");
    let cfg = fsutil::read_text(root, &cfg_path, &fsutil::Policy::BOOT)
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    if !cfg.contains(&format!("'{ENTRY_ID}'")) {
        return Err(format!(
            "{} has no menu entry with id {ENTRY_ID} (GRUB would boot normally without a word): check that /etc/grub.d/55_umm is installed and executable, run 'update-grub', then retry",
            cfg_path.display()
        ));
    }
    if !cfg.contains("save_env next_entry") {
        return Err(format!(
            "{} does not clear next_entry at boot (not made by grub-mkconfig's 00_header?): a one-shot entry could stick; use 'umm on' instead",
            cfg_path.display()
        ));
    }
    let env = read_env(root)?.ok_or("no GRUB directory")?;
    let probe = |target: &str| -> Result<String, String> {
        let d = root.path(&dir);
        run_tool(
            &["grub-probe", "grub2-probe"],
            &[
                std::ffi::OsStr::new(&format!("--target={target}")),
                d.as_os_str(),
            ],
        )
        .map_err(|e| {
            format!(
                "cannot tell whether GRUB can write {} at boot ({e}); use 'umm on' instead",
                env.path.display()
            )
        })
    };
    let abstraction = probe("abstraction")?;
    if let Some(a) = abstraction
        .split_whitespace()
        .find(|a| UNWRITABLE_ABSTRACTIONS.contains(a))
    {
        return Err(format!(
            "{} is on {a} ({}), where GRUB cannot write its environment block at boot: next_entry would never be cleared and every boot would be maintenance mode. Use 'umm on' instead",
            dir.display(),
            abstraction.split_whitespace().collect::<Vec<_>>().join(" ")
        ));
    }
    let fs = probe("fs")?;
    let fs = fs.trim();
    if UNWRITABLE_FS.contains(&fs) {
        return Err(format!(
            "{} is on {fs}, where GRUB cannot write its environment block at boot: next_entry would never be cleared. Use 'umm on' instead",
            dir.display()
        ));
    }
    Ok(env)
}

/// `grub-reboot umm-maintenance`, done with grub-editenv on the checked
/// grubenv: restores a `prev_saved_entry` left by an old grub-reboot (as
/// grub-reboot does), sets `next_entry`, and reads it back.
pub fn select_once(root: &Root, env: &Env) -> Result<(), String> {
    if let Some(prev) = env.get("prev_saved_entry").filter(|p| !p.is_empty()) {
        editenv(root, &env.path, &["set", &format!("saved_entry={prev}")])?;
        editenv(root, &env.path, &["unset", "prev_saved_entry"])?;
    }
    let arg = format!("next_entry={ENTRY_ID}");
    editenv(root, &env.path, &["set", &arg])?;
    let after = read_env(root)?.ok_or("grubenv vanished")?;
    match after.get("next_entry") {
        Some(ENTRY_ID) => Ok(()),
        other => Err(format!(
            "{} says next_entry={} after grub-editenv set it",
            env.path.display(),
            other.unwrap_or("(unset)")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(body: &str) -> String {
        let mut s = format!("{SIGNATURE}{body}");
        while s.len() < 1024 {
            s.push('#');
        }
        s
    }

    #[test]
    fn parses_grub_editenv_blocks() {
        let v = parse(&block(
            "saved_entry=umm-maintenance\nnext_entry=\nx=a\\\\b\\nc\n",
        ))
        .unwrap();
        assert_eq!(
            v,
            [
                ("saved_entry".into(), "umm-maintenance".into()),
                ("next_entry".into(), String::new()),
                ("x".into(), "a\\b\nc".into())
            ]
        );
        assert_eq!(parse(&block("")).unwrap(), []);
    }

    #[test]
    fn rejects_what_is_not_a_block() {
        assert!(parse("saved_entry=0\n").is_err());
        assert!(parse(&"\0".repeat(1024)).is_err());
        assert!(parse(&block("garbage line\n")).is_err());
    }

    #[test]
    fn tells_maintenance_entries() {
        for v in [
            "umm-maintenance",
            "umm-submenu>umm-gnulinux-6.1.0-17-amd64-advanced-x",
            "Debian GNU/Linux (maintenance mode)",
        ] {
            assert!(is_maintenance_entry(v), "{v}");
        }
        for v in [
            "",
            "0",
            "gnulinux-simple-x",
            "gnulinux-advanced-x>gnulinux-6.1.0-17-amd64-advanced-x",
            "xumm-maintenance",
        ] {
            assert!(!is_maintenance_entry(v), "{v}");
        }
    }
}
