//! When stderr is the journal (JOURNAL_STREAM names stderr's device:inode,
//! as systemd sets it for a service), rebootmgr writes `<prio>msg`: one
//! identifier (the journal's own), the right priority, no doubled prefix.
//! Elsewhere the `rebootmgr[pid]: ` form stays.

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use umm_testsupport::rebootmgr_bin;

fn run(journal: bool) -> String {
    let d = tempfile::tempdir().unwrap();
    let err = d.path().join("stderr");
    let f = std::fs::File::create(&err).unwrap();
    let md = f.metadata().unwrap();
    let mut cmd = Command::new(rebootmgr_bin());
    // Nothing listens on port 1: a warning-free "unreachable" exit.
    cmd.args([
        "-v",
        "--consul",
        "http://127.0.0.1:1",
        "--node",
        "n1",
        "status",
    ])
    .env_remove("CONSUL_HTTP_ADDR")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(f);
    if journal {
        cmd.env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino()));
    } else {
        // A stream that is not stderr: not the journal.
        cmd.env("JOURNAL_STREAM", format!("{}:{}", md.dev(), md.ino() + 1));
    }
    let st = cmd.status().unwrap();
    assert_eq!(st.code(), Some(6));
    std::fs::read_to_string(&err).unwrap()
}

#[test]
fn priorities_and_one_identifier_in_the_journal() {
    let j = run(true);
    let lines: Vec<&str> = j.lines().collect();
    assert!(!lines.is_empty(), "{j}");
    for l in &lines {
        assert!(
            l.len() > 3 && l.starts_with('<') && l.as_bytes()[2] == b'>',
            "every line has a priority prefix: {j}"
        );
        assert!(!l.contains("rebootmgr["), "no identifier of our own: {j}");
    }
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("<3>") && last.contains("Consul unreachable"),
        "{j}"
    );

    let plain = run(false);
    assert!(
        plain.lines().last().unwrap().starts_with("rebootmgr: "),
        "{plain}"
    );
    assert!(!plain.contains("<3>"), "{plain}");
}
