//! The few calls umm makes to systemd (PID 1) and logind over D-Bus, with
//! zbus's blocking API.
//!
//! umm.target pulls dbus.socket, so the system bus normally runs in
//! maintenance mode too. Where there is no bus daemon at all, the caller
//! (src/cli/init.rs) falls back to `systemctl`, which talks to PID 1 over its
//! private socket `/run/systemd/private`. zbus cannot be used for that socket:
//! systemd stamps the messages it sends there with the sender
//! `org.freedesktop.systemd1`, a well-known name where zbus 5 requires a
//! unique one, and zbus's reader thread panics on the first reply (seen in
//! the VM suite with systemd 252 and zbus 5.19). Root only.

use std::sync::mpsc;
use std::time::Duration;
use zbus::blocking::connection::Builder;
use zbus::blocking::{Connection, MessageIterator};
use zbus::message::Type;
use zbus::zvariant::OwnedObjectPath;
use zbus::MatchRule;

const SD_DEST: &str = "org.freedesktop.systemd1";
const SD_PATH: &str = "/org/freedesktop/systemd1";
const SD_MANAGER: &str = "org.freedesktop.systemd1.Manager";
const LOGIND_DEST: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_MANAGER: &str = "org.freedesktop.login1.Manager";
pub const PRIVATE_SOCKET: &str = "/run/systemd/private";
/// Reload can take a while on a busy machine (systemctl allows it 6 min).
const METHOD_TIMEOUT: Duration = Duration::from_secs(6 * 60);

/// How a job ended (`JobRemoved`'s result: done, failed, canceled, timeout,
/// dependency, skipped), or that we stopped waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobResult {
    Finished(String),
    StillRunning,
}

/// One row of `ListUnitsFiltered`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedUnit {
    pub name: String,
    pub description: String,
}

pub struct Systemd {
    conn: Connection,
    /// Which connection we got, for messages ("system bus" or the private socket).
    pub via: &'static str,
}

fn err(what: &str, e: zbus::Error) -> String {
    format!("{what}: {e}")
}

impl Systemd {
    /// The system bus.
    pub fn connect() -> Result<Systemd, String> {
        Builder::system()
            .map(|b| b.method_timeout(METHOD_TIMEOUT))
            .and_then(|b| b.build())
            .map(|conn| Systemd {
                conn,
                via: "the system bus",
            })
            .map_err(|e| format!("cannot reach the system bus: {e}"))
    }

    /// A given D-Bus address: a bus (`p2p = false`) or a peer such as PID 1's
    /// private socket (`p2p = true`). Tests point this at a fake systemd.
    pub fn connect_address(address: &str, p2p: bool) -> Result<Systemd, String> {
        let conn = Builder::address(address)
            .map(|b| {
                let b = b.method_timeout(METHOD_TIMEOUT);
                if p2p {
                    b.p2p()
                } else {
                    b
                }
            })
            .and_then(|b| b.build())
            .map_err(|e| e.to_string())?;
        Ok(Systemd {
            conn,
            via: if p2p {
                "a peer-to-peer connection"
            } else {
                "a bus"
            },
        })
    }

    fn call<B, R>(&self, method: &str, body: &B) -> Result<R, String>
    where
        B: serde::Serialize + zbus::zvariant::DynamicType,
        R: for<'d> zbus::zvariant::DynamicDeserialize<'d>,
    {
        let msg = self
            .conn
            .call_method(Some(SD_DEST), SD_PATH, Some(SD_MANAGER), method, body)
            .map_err(|e| err(&format!("systemd {method}"), e))?;
        msg.body()
            .deserialize::<R>()
            .map_err(|e| err(&format!("systemd {method}: unexpected reply"), e))
    }

    fn call_unit(&self, method: &str) -> Result<(), String> {
        self.conn
            .call_method(Some(SD_DEST), SD_PATH, Some(SD_MANAGER), method, &())
            .map(|_| ())
            .map_err(|e| err(&format!("systemd {method}"), e))
    }

    /// `daemon-reload`: re-runs the generators, so umm-generator sees
    /// `/run/umm/resumed` and drops its default.target override.
    pub fn reload(&self) -> Result<(), String> {
        self.call_unit("Reload")
    }

    pub fn default_target(&self) -> Result<String, String> {
        self.call::<_, String>("GetDefaultTarget", &())
    }

    /// Starts `unit` with `mode` and waits up to `timeout` for its job.
    pub fn start_unit_wait(
        &self,
        unit: &str,
        mode: &str,
        timeout: Duration,
    ) -> Result<JobResult, String> {
        // Listen before starting, so a job that finishes at once is not missed.
        let rule = MatchRule::builder()
            .msg_type(Type::Signal)
            .sender(SD_DEST)
            .and_then(|b| b.path(SD_PATH))
            .and_then(|b| b.interface(SD_MANAGER))
            .and_then(|b| b.member("JobRemoved"))
            .map(|b| b.build())
            .map_err(|e| err("JobRemoved match rule", e))?;
        let signals = MessageIterator::for_match_rule(rule, &self.conn, None)
            .map_err(|e| err("listening for systemd's JobRemoved", e))?;
        // "Already subscribed" is harmless, and on PID 1's private socket
        // signals are sent to every peer anyway: waiting still works.
        let _ = self.call_unit("Subscribe");
        let job: OwnedObjectPath = self.call("StartUnit", &(unit, mode))?;
        let (tx, rx) = mpsc::channel();
        let want = job.clone();
        std::thread::spawn(move || {
            for msg in signals {
                let Ok(msg) = msg else { continue };
                let body = msg.body();
                let Ok((_id, path, _unit, result)) =
                    body.deserialize::<(u32, OwnedObjectPath, String, String)>()
                else {
                    continue;
                };
                if path == want {
                    let _ = tx.send(result);
                    return;
                }
            }
        });
        match rx.recv_timeout(timeout) {
            Ok(result) => Ok(JobResult::Finished(result)),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(JobResult::StillRunning),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!(
                "lost the connection to systemd while waiting for the {unit} job ({})",
                job.as_str()
            )),
        }
    }

    /// Starts `unit` without waiting (used for reboot.target).
    pub fn start_unit(&self, unit: &str, mode: &str) -> Result<(), String> {
        self.call::<_, OwnedObjectPath>("StartUnit", &(unit, mode))
            .map(|_| ())
    }

    pub fn failed_units(&self) -> Result<Vec<FailedUnit>, String> {
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
        let rows: Vec<Row> = self.call("ListUnitsFiltered", &(vec!["failed"],))?;
        Ok(rows
            .into_iter()
            .map(|r| FailedUnit {
                name: r.0,
                description: r.1,
            })
            .collect())
    }
}

/// Reboots like `systemctl reboot`: logind's `Reboot(false)`, else
/// `reboot.target` with mode `replace-irreversibly`. Returns how it was asked.
pub fn reboot() -> Result<String, String> {
    let logind = Builder::system().and_then(|b| b.build()).and_then(|conn| {
        conn.call_method(
            Some(LOGIND_DEST),
            LOGIND_PATH,
            Some(LOGIND_MANAGER),
            "Reboot",
            &(false,),
        )
    });
    let logind_err = match logind {
        Ok(_) => return Ok("asked logind to reboot".into()),
        Err(e) => e.to_string(),
    };
    let sd = Systemd::connect()?;
    sd.start_unit("reboot.target", "replace-irreversibly")
        .map(|()| {
            format!(
                "logind unavailable ({logind_err}); started reboot.target via {}",
                sd.via
            )
        })
        .map_err(|e| format!("logind: {logind_err}; {e}"))
}
