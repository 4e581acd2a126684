//! Every shipped unit passes the real `systemd-analyze verify`, run against
//! a root holding this machine's systemd units plus ours installed by
//! scripts/install.sh (so dependencies like sysinit.target resolve and our
//! ExecStart= binaries exist). A deliberately broken unit must fail the same
//! check, so this test cannot pass by verifying nothing. The man pages are
//! rendered into the same root (scripts/man.sh) and verify checks that every
//! Documentation=man:… page exists (no --man=no).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use umm_testsupport::FakeRoot;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped_units() -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(repo().join("units"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            [".service", ".target", ".timer", ".socket", ".path"]
                .iter()
                .any(|s| n.ends_with(s))
        })
        .collect();
    v.sort();
    v
}

fn verify_root() -> FakeRoot {
    let which = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "systemd-analyze is missing: the test command installs it (apt-get install systemd)"
    );
    let root = FakeRoot::new();
    let bindir = Path::new(env!("CARGO_BIN_EXE_umm"))
        .parent()
        .unwrap()
        .to_path_buf();
    let st = Command::new("sh")
        .arg(repo().join("scripts/install.sh"))
        .args([
            "--destdir".as_ref(),
            root.path().as_os_str(),
            "--bindir".as_ref(),
            bindir.as_os_str(),
        ])
        .status()
        .unwrap();
    assert!(st.success(), "scripts/install.sh failed");
    let st = Command::new(repo().join("scripts/man.sh"))
        .arg(root.path().join("usr/share/man"))
        .status()
        .unwrap();
    assert!(
        st.success(),
        "scripts/man.sh failed (pandoc: scripts/test-deps.sh)"
    );
    // The host's units, without replacing ours.
    let unit_dir = root.path().join("usr/lib/systemd/system");
    for host in ["/usr/lib/systemd/system", "/lib/systemd/system"] {
        let Ok(rd) = fs::read_dir(host) else { continue };
        for e in rd.flatten() {
            let dst = unit_dir.join(e.file_name());
            if dst.symlink_metadata().is_err() {
                let src = e.path();
                if src.is_dir() {
                    let _ = Command::new("cp").arg("-a").arg(&src).arg(&dst).status();
                } else if let Ok(t) = fs::read_link(&src) {
                    let _ = std::os::unix::fs::symlink(t, &dst);
                } else {
                    let _ = fs::copy(&src, &dst);
                }
            }
        }
    }
    root
}

fn verify(root: &Path, units: &[String]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        // `man` as verify runs it finds the pages of this root.
        .env("MANPATH", root.join("usr/share/man"))
        .args(units)
        .current_dir(root)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn shipped_units_pass_systemd_analyze_verify() {
    let units = shipped_units();
    for want in [
        "umm.target",
        "umm-boot.service",
        "umm-stable.timer",
        "umm-stable.service",
        "umm-command.service",
    ] {
        assert!(
            units.iter().any(|u| u == want),
            "{want} missing from units/"
        );
    }
    for u in &units {
        let text = fs::read_to_string(repo().join("units").join(u)).unwrap();
        assert!(
            text.lines().any(|l| l.starts_with("Documentation=man:")),
            "{u} has no Documentation=man:…"
        );
    }
    let root = verify_root();
    let (ok, out) = verify(root.path(), &units);
    assert!(ok, "systemd-analyze verify failed:\n{out}");
    let ours: Vec<&str> = out
        .lines()
        .filter(|l| units.iter().any(|u| l.contains(u.as_str())))
        .collect();
    assert!(
        ours.is_empty(),
        "warnings about shipped units:\n{}",
        ours.join("\n")
    );

    // Negative control: the same check rejects a broken unit.
    let bad = root
        .path()
        .join("usr/lib/systemd/system/umm-broken-control.service");
    fs::write(
        &bad,
        "[Service]\nExecStart=not/an/absolute/path\nType=nonsense\n",
    )
    .unwrap();
    let (ok, out) = verify(root.path(), &["umm-broken-control.service".to_string()]);
    assert!(!ok, "systemd-analyze verify accepted a broken unit:\n{out}");
    // And the man check is on: a page that is not installed fails too.
    fs::write(
        root.path().join("usr/lib/systemd/system/umm-man-control.service"),
        "[Unit]\nDocumentation=man:umm-no-such-page(8)\n[Service]\nType=oneshot\nExecStart=/usr/sbin/umm status\n",
    )
    .unwrap();
    let (ok, out) = verify(root.path(), &["umm-man-control.service".to_string()]);
    assert!(
        !ok,
        "systemd-analyze verify accepted a missing man page:\n{out}"
    );
}

#[test]
fn install_enables_the_boot_units() {
    let root = verify_root();
    let etc = root.path().join("etc/systemd/system");
    assert!(etc
        .join("sysinit.target.wants/umm-boot.service")
        .symlink_metadata()
        .is_ok());
    assert!(etc
        .join("multi-user.target.wants/umm-stable.timer")
        .symlink_metadata()
        .is_ok());
    assert!(root
        .path()
        .join("usr/lib/systemd/system-generators/umm-generator")
        .is_file());
    assert_eq!(
        fs::read_link(root.path().join("usr/sbin/umm-init")).unwrap(),
        PathBuf::from("../lib/systemd/system-generators/umm-generator")
    );
}
