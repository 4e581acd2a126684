//! The kernel command line, read and split the way systemd does, and the few
//! words umm cares about.

use crate::paths::{self, Root};
use std::path::Path;

/// Splits a command line into words: whitespace separates, single and double
/// quotes group (and are removed), as systemd's `proc_cmdline_parse` does.
pub fn split(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Where the command line comes from, in systemd's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `$SYSTEMD_PROC_CMDLINE` (meant for tests).
    Env,
    /// PID 1's argv, inside a container.
    Pid1,
    /// `/proc/cmdline`.
    Proc,
}

/// Reads the raw command line. Never fails: an unreadable source is an empty
/// command line plus a message the caller logs.
pub fn read(root: &Root, in_container: bool) -> (String, Source, Option<String>) {
    if let Some(v) = std::env::var_os("SYSTEMD_PROC_CMDLINE") {
        return (v.to_string_lossy().into_owned(), Source::Env, None);
    }
    if in_container {
        return match kernel_file(root, paths::PROC1_CMDLINE) {
            // argv is NUL-separated; argv[0] is the init itself.
            Ok(raw) => {
                let args: Vec<String> = raw
                    .split(|b| *b == 0)
                    .skip(1)
                    .filter(|a| !a.is_empty())
                    .map(|a| quote_word(&String::from_utf8_lossy(a)))
                    .collect();
                (args.join(" "), Source::Pid1, None)
            }
            Err(e) => (String::new(), Source::Pid1, Some(e)),
        };
    }
    match kernel_file(root, paths::PROC_CMDLINE) {
        Ok(raw) => (
            String::from_utf8_lossy(&raw).trim_end().to_string(),
            Source::Proc,
            None,
        ),
        Err(e) => (String::new(), Source::Proc, Some(e)),
    }
}

/// A procfs file through the one safe reader: not a link, a regular file
/// (procfs says size 0: read to the end), at most 1 MiB. Missing is an error.
fn kernel_file(root: &Root, abs: &str) -> Result<Vec<u8>, String> {
    match crate::fsutil::read_bounded(root, Path::new(abs), &crate::fsutil::Policy::KERNEL) {
        Ok(Some(raw)) => Ok(raw),
        Ok(None) => Err(format!("cannot read {abs}: it does not exist")),
        Err(e) => Err(e.to_string()),
    }
}

fn quote_word(w: &str) -> String {
    if w.chars().any(char::is_whitespace) {
        format!("\"{w}\"")
    } else {
        w.to_string()
    }
}

/// Whether we run inside a container, as systemd tells its generators
/// (`SYSTEMD_VIRTUALIZATION=container:…`) or as `/run/systemd/container` says.
pub fn in_container(root: &Root) -> bool {
    if let Some(v) = std::env::var_os("SYSTEMD_VIRTUALIZATION") {
        return v.to_string_lossy().starts_with("container:");
    }
    root.path("/run/systemd/container").exists()
}

/// What the command line says to umm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelArgs {
    /// `Some(true)` for `umm`/`umm=1|yes|true|on`, `Some(false)` for
    /// `umm=0|no|false|off`; the last valid occurrence wins.
    pub umm: Option<bool>,
    /// Words that make systemd boot something other than `default.target`
    /// (`systemd.unit=`, `rescue`, `emergency`, runlevel words): they win over
    /// our redirect, so the generator warns about them.
    pub overrides: Vec<String>,
    /// Problems worth a log line (e.g. `umm=maybe`).
    pub warnings: Vec<String>,
}

/// Words systemd maps to a unit other than default.target.
const OVERRIDE_WORDS: &[&str] = &[
    "rescue",
    "emergency",
    "single",
    "s",
    "S",
    "-s",
    "-b",
    "1",
    "2",
    "3",
    "4",
    "5",
];

fn normalize_key(k: &str) -> String {
    k.replace('-', "_")
}

pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// Interprets the words. `in_initrd` makes `rd.` keys count, as in systemd.
pub fn parse(line: &str, in_initrd: bool) -> KernelArgs {
    let mut out = KernelArgs::default();
    for word in split(line) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (normalize_key(k), Some(v.to_string())),
            None => (normalize_key(&word), None),
        };
        let key = match key.strip_prefix("rd.") {
            Some(k) if in_initrd => k.to_string(),
            Some(_) => continue,
            None => key,
        };
        if key == "umm" {
            match value.as_deref() {
                None => out.umm = Some(true),
                Some(v) => match parse_bool(v) {
                    Some(b) => out.umm = Some(b),
                    None => out.warnings.push(format!(
                        "ignoring 'umm={v}' on the kernel command line: use umm=1 (enter) or umm=0 (skip)"
                    )),
                },
            }
        } else if key == "systemd.unit"
            || (value.is_none() && OVERRIDE_WORDS.contains(&word.as_str()))
        {
            out.overrides.push(word.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_with_quotes() {
        assert_eq!(
            split(r#"root=/dev/vda  foo="a b" 'c d'e umm"#),
            vec!["root=/dev/vda", "foo=a b", "c de", "umm"]
        );
        assert!(split("   ").is_empty());
    }

    #[test]
    fn umm_values_last_wins() {
        let cases: &[(&str, Option<bool>)] = &[
            ("", None),
            ("quiet", None),
            ("umm", Some(true)),
            ("umm=1", Some(true)),
            ("umm=yes", Some(true)),
            ("umm=true", Some(true)),
            ("umm=on", Some(true)),
            ("umm=0", Some(false)),
            ("umm=no", Some(false)),
            ("umm=false", Some(false)),
            ("umm=off", Some(false)),
            ("umm=1 umm=0", Some(false)),
            ("umm=0 umm", Some(true)),
            ("umm=1 umm=bogus", Some(true)),
            ("rd.umm=1", None),
            ("\"umm=1\"", Some(true)),
            ("xumm=1 umm_x=1", None),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line, false).umm, *want, "{line:?}");
        }
        assert_eq!(parse("rd.umm=1", true).umm, Some(true));
        assert_eq!(parse("umm=bogus", false).warnings.len(), 1);
    }

    #[test]
    fn finds_overrides() {
        let a = parse("root=/dev/sda1 systemd.unit=rescue.target umm=1", false);
        assert_eq!(a.overrides, vec!["systemd.unit=rescue.target"]);
        assert_eq!(parse("ro 3 quiet", false).overrides, vec!["3"]);
        assert_eq!(parse("emergency", false).overrides, vec!["emergency"]);
        assert_eq!(parse("rd.systemd.unit=x.target", true).overrides.len(), 1);
        assert!(parse("rd.systemd.unit=x.target", false)
            .overrides
            .is_empty());
        assert!(parse("console=ttyS0,115200 root=UUID=1", false)
            .overrides
            .is_empty());
    }

    #[test]
    fn reads_env_override_first() {
        // SYSTEMD_PROC_CMDLINE is process-global: this is the only test that sets it.
        std::env::set_var("SYSTEMD_PROC_CMDLINE", "umm=1");
        let (line, src, err) = read(&Root::new("/nonexistent"), false);
        std::env::remove_var("SYSTEMD_PROC_CMDLINE");
        assert_eq!((line.as_str(), src, err), ("umm=1", Source::Env, None));
    }

    #[test]
    fn reads_pid1_argv_in_container() {
        let d = umm_testsupport::FakeRoot::new();
        d.write("proc/1/cmdline", "/sbin/init\0umm=1\0foo=a b\0");
        let root = Root::new(d.path());
        let words = split(&read_without_env(&root, true));
        assert_eq!(words, vec!["umm=1", "foo=a b"]);
    }

    fn read_without_env(root: &Root, container: bool) -> String {
        // Same as read() but ignoring SYSTEMD_PROC_CMDLINE, which another test may set.
        let raw = std::fs::read(root.path(if container {
            paths::PROC1_CMDLINE
        } else {
            paths::PROC_CMDLINE
        }))
        .unwrap();
        raw.split(|b| *b == 0)
            .skip(1)
            .filter(|a| !a.is_empty())
            .map(|a| quote_word(&String::from_utf8_lossy(a)))
            .collect::<Vec<_>>()
            .join(" ")
    }
}
