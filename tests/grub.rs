//! grub.d/55_umm on sample menus (what /etc/grub.d/10_linux prints on
//! Debian, two of them real Debian 12 output taken from the VM test, CentOS 7
//! BIOS and RHEL EFI): the output matches the reviewed golden file, every
//! kernel line of it boots with `umm=1`, its ids are its own (the top-level
//! one the fixed `umm-maintenance`), no `savedefault` and no kernel twice,
//! and the whole generated config passes the real `grub-script-check`
//! (package grub-common; `scripts/test-deps.sh` installs it). A negative
//! control proves the check rejects a broken script.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs 55_umm with a source generator that prints `menu` (exit `rc`).
fn run_55(menu: &str, rc: i32) -> (bool, String, String) {
    let d = tempfile::tempdir().unwrap();
    let menu_file = d.path().join("menu");
    fs::write(&menu_file, menu).unwrap();
    let src = d.path().join("10_linux");
    fs::write(
        &src,
        format!("#!/bin/sh\ncat '{}'\nexit {rc}\n", menu_file.display()),
    )
    .unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let o = Command::new(repo().join("grub.d/55_umm"))
        .env("UMM_GRUB_SOURCE", &src)
        .env("UMM_GRUB_REQUIRE", &src)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn grub_script_check(script: &str) -> Result<(), String> {
    let mut child = Command::new("grub-script-check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("grub-script-check not found ({e}): install grub-common (scripts/test-deps.sh)")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

fn ids(script: &str) -> Vec<String> {
    script
        .split("$menuentry_id_option '")
        .skip(1)
        .filter_map(|s| s.split('\'').next().map(str::to_string))
        .collect()
}

fn kernel_lines(script: &str) -> Vec<&str> {
    script
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            ["linux ", "linux\t", "linux16 ", "linuxefi "]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect()
}

fn check_sample(name: &str, entries: usize) {
    let dir = repo().join("tests/grub");
    let menu = fs::read_to_string(dir.join(format!("{name}.cfg"))).unwrap();
    let (ok, out, err) = run_55(&menu, 0);
    assert!(ok, "{name}: {err}");
    let expected = fs::read_to_string(dir.join(format!("{name}.expected"))).unwrap();
    assert_eq!(out, expected, "{name}: output differs from the golden file");
    assert_eq!(out.matches("menuentry ").count(), entries, "{name}:\n{out}");
    let kl = kernel_lines(&out);
    assert_eq!(kl.len(), entries, "{name}: one kernel line per entry");
    assert!(kl.iter().all(|l| l.ends_with(" umm=1")), "{name}: {kl:?}");
    assert!(
        !out.contains(" single") && !out.contains("systemd.unit=rescue"),
        "{name}: a recovery entry got a maintenance twin"
    );
    let new_ids = ids(&out);
    assert!(new_ids.iter().all(|i| i.starts_with("umm-")), "{new_ids:?}");
    // The top-level entry has the fixed id, whatever 10_linux called it.
    assert_eq!(
        new_ids.first().map(String::as_str),
        Some("umm-maintenance"),
        "{name}"
    );
    // GRUB_SAVEDEFAULT=true: a maintenance entry must never save itself.
    assert!(
        !out.lines().any(|l| l.trim() == "savedefault"),
        "{name}: savedefault copied"
    );
    // No kernel twice (10_linux's simple + advanced entry of the newest one).
    let mut kl_sorted: Vec<String> = kl
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    kl_sorted.sort();
    kl_sorted.dedup();
    assert_eq!(kl_sorted.len(), kl.len(), "{name}: a kernel line twice");
    let full = format!("{menu}{out}");
    let mut all = ids(&full);
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "{name}: duplicate ids in {all:?}");
    grub_script_check(&full).unwrap_or_else(|e| panic!("{name}: grub-script-check: {e}"));
}

#[test]
fn debian_bios_menu_with_submenu() {
    check_sample("debian-bios", 3);
}

/// Debian 12's real 10_linux (tests/vm/test_grub.py wrote these): two
/// kernels, submenus on, GRUB_SAVEDEFAULT=true: the newest kernel once, no
/// savedefault.
#[test]
fn debian12_real_submenu_savedefault() {
    check_sample("debian12-submenu-savedefault", 2);
}

/// One kernel, GRUB_DISABLE_SUBMENU=y (10_linux's top entry id carries the
/// kernel version), GRUB_SAVEDEFAULT=true.
#[test]
fn debian12_real_nosubmenu_savedefault() {
    check_sample("debian12-nosubmenu-savedefault", 1);
}

#[test]
fn centos7_linux16_and_quoted_title() {
    check_sample("centos-linux16", 3);
}

#[test]
fn efi_linuxefi_and_entry_without_id() {
    check_sample("efi-linuxefi", 2);
}

#[test]
fn no_kernels_no_output() {
    let (ok, out, _) = run_55("", 0);
    assert!(ok);
    assert_eq!(out, "");
}

#[test]
fn failing_or_missing_source_prints_nothing_and_succeeds() {
    let menu = fs::read_to_string(repo().join("tests/grub/debian-bios.cfg")).unwrap();
    let (ok, out, err) = run_55(&menu, 1);
    assert!(ok);
    assert_eq!(out, "");
    assert!(err.contains("failed"), "{err}");
    let o = Command::new(repo().join("grub.d/55_umm"))
        .env("UMM_GRUB_SOURCE", Path::new("/nonexistent/10_linux"))
        .env("UMM_GRUB_REQUIRE", "/bin/sh")
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(o.stdout.is_empty());
}

#[test]
fn negative_control_grub_script_check_rejects_broken_output() {
    let menu = fs::read_to_string(repo().join("tests/grub/debian-bios.cfg")).unwrap();
    let (_, out, _) = run_55(&menu, 0);
    grub_script_check(&out).expect("the real output is valid");
    // A lost closing brace (what a broken rewrite would produce) ...
    let pos = out.rfind("\n}\n").unwrap();
    let broken = format!("{}{}", &out[..pos + 1], &out[pos + 3..]);
    assert!(
        grub_script_check(&broken).is_err(),
        "missing brace accepted"
    );
    // ... and a title whose quote was cut in two.
    let broken = out.replacen("'Debian GNU/Linux'", "'Debian GNU/Linux", 1);
    assert!(
        grub_script_check(&broken).is_err(),
        "unbalanced quote accepted"
    );
}

/// `dpkg -r umm` leaves the conffile /etc/grub.d/55_umm behind: without umm
/// it must print nothing (no maintenance entry for a removed package).
#[test]
fn without_umm_installed_prints_nothing() {
    let menu = fs::read_to_string(repo().join("tests/grub/debian-bios.cfg")).unwrap();
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("10_linux");
    fs::write(&src, format!("#!/bin/sh\ncat <<'EOF'\n{menu}EOF\n")).unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o755)).unwrap();
    let run = |require: &Path| {
        Command::new(repo().join("grub.d/55_umm"))
            .env("UMM_GRUB_SOURCE", &src)
            .env("UMM_GRUB_REQUIRE", require)
            .output()
            .unwrap()
    };
    let gone = run(&d.path().join("usr/sbin/umm"));
    assert!(gone.status.success());
    assert_eq!(String::from_utf8_lossy(&gone.stdout), "");
    // Control: the same source with umm present gives the entries.
    let there = run(&src);
    assert!(String::from_utf8_lossy(&there.stdout).contains("umm=1"));
}
