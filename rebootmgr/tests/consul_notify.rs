//! `systemctl status` during the settle wait: rebootmgr sends sd_notify
//! `STATUS=` lines with the time left to `$NOTIFY_SOCKET` (here a real
//! datagram socket the test listens on, as systemd's would be) and logs the
//! wait once with elapsed/remaining, not at every poll.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;
use umm_testsupport::*;

#[test]
fn settle_wait_reports_status_with_time_left() {
    let a = Agent::start("notify", None);
    let n = Node::new("notify", &a.addr());
    n.enable(None);
    n.touch_trigger();
    let d = tempfile::tempdir().unwrap();
    let sock_path = d.path().join("notify");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let child = n
        .command(&["run", "--check-triggers", "--settle", "3"])
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(len) = sock.recv(&mut buf) {
        let m = String::from_utf8_lossy(&buf[..len]).into_owned();
        let last = m.contains("0 s left");
        got.push(m);
        if last {
            break;
        }
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(n.reboots(), 1);
    assert!(
        got.iter()
            .any(|m| m.starts_with("STATUS=settle wait (") && m.contains(" s left)")),
        "status lines: {got:?}"
    );
    assert!(got.len() >= 3, "about one a second over 3 s: {got:?}");
    assert!(got.len() <= 6, "not one per poll: {got:?}");
    let waits = stderr.lines().filter(|l| l.contains("settle wait")).count();
    assert_eq!(waits, 1, "one log line for a 3 s wait: {stderr}");
}
