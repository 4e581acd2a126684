//! The D-Bus client in src/systemd.rs against a fake systemd Manager served
//! with zbus: once peer-to-peer over a unix socket (as PID 1's
//! /run/systemd/private in maintenance mode) and once through a real
//! dbus-daemon (the system bus case, where the JobRemoved match rule must be
//! registered with the bus). Checks the calls, their arguments, and that
//! start_unit_wait picks its own job's JobRemoved among others.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use umm::systemd::{JobResult, Systemd};
use zbus::zvariant::{ObjectPath, OwnedObjectPath};

const PATH: &str = "/org/freedesktop/systemd1";
const IFACE: &str = "org.freedesktop.systemd1.Manager";

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

#[derive(Clone)]
struct FakeManager {
    calls: Arc<Mutex<Vec<String>>>,
    /// None: never finish the job.
    result: Option<&'static str>,
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl FakeManager {
    fn reload(&self) {
        self.calls.lock().unwrap().push("Reload".into());
    }

    fn get_default_target(&self) -> String {
        self.calls.lock().unwrap().push("GetDefaultTarget".into());
        "multi-user.target".into()
    }

    fn subscribe(&self) {
        self.calls.lock().unwrap().push("Subscribe".into());
    }

    fn start_unit(
        &self,
        name: String,
        mode: String,
        #[zbus(connection)] conn: &zbus::Connection,
    ) -> OwnedObjectPath {
        self.calls
            .lock()
            .unwrap()
            .push(format!("StartUnit {name} {mode}"));
        let job = OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/42").unwrap();
        let other = OwnedObjectPath::try_from("/org/freedesktop/systemd1/job/41").unwrap();
        let conn = zbus::blocking::Connection::from(conn.clone());
        let result = self.result;
        let ours = job.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let emit = |id: u32, path: &OwnedObjectPath, unit: &str, r: &str| {
                conn.emit_signal(
                    None::<&str>,
                    PATH,
                    IFACE,
                    "JobRemoved",
                    &(id, ObjectPath::from(path), unit, r),
                )
                .unwrap();
            };
            // Someone else's job first: must be ignored.
            emit(41, &other, "other.service", "failed");
            if let Some(r) = result {
                emit(42, &ours, &name, r);
            }
        });
        job
    }

    fn list_units_filtered(&self, states: Vec<String>) -> Vec<Row> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("ListUnitsFiltered {}", states.join(",")));
        let p = OwnedObjectPath::try_from("/").unwrap();
        vec![(
            "db.service".into(),
            "Database".into(),
            "loaded".into(),
            "failed".into(),
            "failed".into(),
            String::new(),
            p.clone(),
            0,
            String::new(),
            p,
        )]
    }
}

fn exercise(sd: &Systemd, calls: &Arc<Mutex<Vec<String>>>) {
    sd.reload().unwrap();
    assert_eq!(sd.default_target().unwrap(), "multi-user.target");
    let r = sd
        .start_unit_wait("multi-user.target", "replace", Duration::from_secs(20))
        .unwrap();
    assert_eq!(r, JobResult::Finished("done".into()));
    let failed = sd.failed_units().unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "db.service");
    assert_eq!(
        *calls.lock().unwrap(),
        [
            "Reload",
            "GetDefaultTarget",
            "Subscribe",
            "StartUnit multi-user.target replace",
            "ListUnitsFiltered failed",
        ]
    );
}

/// A p2p server like PID 1's private socket; returns the address and a
/// guard that keeps it serving.
fn p2p_server(dir: &Path, mgr: FakeManager) -> (String, mpsc::Sender<()>) {
    let sock = dir.join("private");
    let listener = UnixListener::bind(&sock).unwrap();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        #[allow(deprecated)] // the std-stream constructor is the one without an extra crate
        let _conn = zbus::blocking::connection::Builder::unix_stream(stream)
            .server(zbus::Guid::generate())
            .unwrap()
            .p2p()
            .serve_at(PATH, mgr)
            .unwrap()
            .build()
            .unwrap();
        let _ = stop_rx.recv();
    });
    (format!("unix:path={}", sock.display()), stop_tx)
}

#[test]
fn peer_to_peer_like_pid1s_private_socket() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (addr, _guard) = p2p_server(
        dir.path(),
        FakeManager {
            calls: calls.clone(),
            result: Some("done"),
        },
    );
    let sd = Systemd::connect_address(&addr, true).unwrap();
    exercise(&sd, &calls);
}

#[test]
fn a_job_that_does_not_finish_is_reported_as_still_running() {
    let dir = tempfile::tempdir().unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (addr, _guard) = p2p_server(
        dir.path(),
        FakeManager {
            calls,
            result: None,
        },
    );
    let sd = Systemd::connect_address(&addr, true).unwrap();
    let r = sd
        .start_unit_wait("multi-user.target", "replace", Duration::from_secs(1))
        .unwrap();
    assert_eq!(r, JobResult::StillRunning);
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn through_a_bus_daemon() {
    let which = Command::new("dbus-daemon").arg("--version").output();
    assert!(
        which.is_ok_and(|o| o.status.success()),
        "dbus-daemon is needed for this test (apt-get install dbus-daemon)"
    );
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("bus");
    let addr = format!("unix:path={}", sock.display());
    let _daemon = Daemon(
        Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--nopidfile", "--address", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let calls = Arc::new(Mutex::new(Vec::new()));
    let _server = zbus::blocking::connection::Builder::address(addr.as_str())
        .unwrap()
        .name("org.freedesktop.systemd1")
        .unwrap()
        .serve_at(
            PATH,
            FakeManager {
                calls: calls.clone(),
                result: Some("done"),
            },
        )
        .unwrap()
        .build()
        .unwrap();
    let sd = Systemd::connect_address(&addr, false).unwrap();
    exercise(&sd, &calls);
}
