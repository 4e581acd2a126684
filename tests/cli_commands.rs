//! Runs the real `umm` binary against fake roots (`UMM_ROOT`) with the test
//! recorders (`UMM_FAKE_REBOOT`, `UMM_FAKE_SYSTEMD`): every command, its exit
//! status, hooks, JSON output, and what it leaves on disk. Runs as root (the
//! trust checks need root-owned files); non-root callers via setpriv.

use serde_json::Value;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use umm_testsupport::{fakeroot::mkdirs, require_root, FakeRoot};

const BIN: &str = env!("CARGO_BIN_EXE_umm");
/// The lock every command that changes something holds.
const LOCK: &str = "/run/umm.lock";

struct Fake {
    root: FakeRoot,
    logs: FakeRoot,
}

impl Fake {
    fn new() -> Fake {
        require_root();
        Fake {
            root: FakeRoot::booted("boot-1", Some("root=/dev/sda1 quiet")),
            logs: FakeRoot::new(),
        }
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    fn p(&self, abs: &str) -> PathBuf {
        self.root.p(abs)
    }

    fn put(&self, abs: &str, text: &str) {
        self.root.write(abs, text);
    }

    /// This boot's record as umm-boot.service would write it.
    fn boot(&self, token: &str) {
        self.put(
            "/run/umm/boot",
            &format!("decision={token}\nboot_id=boot-1\ntime=1\n"),
        );
    }

    fn hook(&self, which: &str, name: &str, body: &str) -> PathBuf {
        self.root
            .script(&format!("/etc/umm/hooks/{which}/{name}"), body)
    }

    fn reboot_log(&self) -> PathBuf {
        self.logs.path().join("reboot")
    }

    fn systemd_log(&self) -> PathBuf {
        self.logs.path().join("systemd")
    }

    fn reboots(&self) -> String {
        fs::read_to_string(self.reboot_log()).unwrap_or_default()
    }

    fn systemd_calls(&self) -> Vec<String> {
        fs::read_to_string(self.systemd_log())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_via(&[], args)
    }

    /// `umm ARGS` run by `wrapper` (e.g. `strace …`), with the same environment.
    fn cmd_via(&self, wrapper: &[&str], args: &[&str]) -> Command {
        let mut c = match wrapper.split_first() {
            Some((w, rest)) => {
                let mut c = Command::new(w);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        c.args(args)
            .env("UMM_ROOT", self.root())
            .env("UMM_FAKE_REBOOT", self.reboot_log())
            .env("UMM_FAKE_SYSTEMD", self.systemd_log())
            .env_remove("SUDO_USER")
            .env_remove("SYSTEMD_PROC_CMDLINE")
            .env_remove("UMM_FAKE_SYSTEMD_DEFAULT")
            .env_remove("UMM_FAKE_SYSTEMD_RESULT")
            .env_remove("UMM_FAKE_SYSTEMD_FAILED");
        c
    }

    fn run(&self, args: &[&str]) -> Out {
        Out(self.cmd(args).output().unwrap())
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        Out(c.output().unwrap())
    }

    fn json(&self) -> Value {
        let o = self.run(&["status", "--json"]);
        o.code(0);
        serde_json::from_str(&o.stdout()).unwrap_or_else(|e| panic!("{e}: {}", o.stdout()))
    }

    fn state_bytes(&self) -> Option<Vec<u8>> {
        fs::read(self.p("/var/lib/umm/state")).ok()
    }

    fn state(&self) -> toml::Table {
        fs::read_to_string(self.p("/var/lib/umm/state"))
            .unwrap()
            .parse()
            .unwrap()
    }
}

struct Out(Output);

impl Out {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn all(&self) -> String {
        format!("{}{}", self.stdout(), self.stderr())
    }
    #[track_caller]
    fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.0.status.code(),
            Some(want),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
    #[track_caller]
    fn says(&self, what: &str) -> &Self {
        assert!(
            self.all().contains(what),
            "expected {what:?} in:\n{}",
            self.all()
        );
        self
    }
}

// ---------------------------------------------------------------- status

#[test]
fn status_normal_text_and_json() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&["status"])
        .code(0)
        .says("mode: normal")
        .says("enabled: yes (set by built-in default)")
        .says("unclean boots: 0");
    let j = f.json();
    assert_eq!(j["schema"], 1);
    assert_eq!(j["mode"], "normal");
    assert_eq!(j["reason"], Value::Null);
    assert_eq!(j["boot_decision"], "normal");
    assert_eq!(j["enabled"], true);
    assert_eq!(j["enabled_source"], "built-in default");
    assert_eq!(j["unclean_boots"], 0);
    assert_eq!(j["reboot_count"], 2);
    assert_eq!(j["counter_reset_time_secs"], 600);
    assert_eq!(j["request"], Value::Null);
    assert_eq!(j["command_result"], Value::Null);
    assert_eq!(j["history"], serde_json::json!([]));
    assert_eq!(j["problems"], serde_json::json!([]));
}

#[test]
fn status_warns_when_boot_was_not_recorded() {
    let f = Fake::new();
    let j = f.json();
    assert_eq!(j["boot_decision"], Value::Null);
    let p = j["problems"].to_string();
    assert!(
        p.contains("/run/umm/boot is missing") && p.contains("warning"),
        "{p}"
    );
}

#[test]
fn status_modes_and_reasons() {
    let f = Fake::new();
    for reason in ["cmdline", "requested", "reboot-loop"] {
        f.boot(&format!("maintenance:{reason}"));
        let j = f.json();
        assert_eq!(
            (j["mode"].as_str(), j["reason"].as_str()),
            (Some("maintenance"), Some(reason))
        );
        f.run(&["status"])
            .says(&format!("mode: maintenance (reason: {reason})"))
            .says("umm off");
    }
    // A request persisted while this boot is normal: entering.
    f.boot("normal");
    f.put(
        "/var/lib/umm/state",
        "version = 1\n[request]\nrequested_at = 100\nrequested_by = \"alice\"\ncommand = [\"echo\", \"a b\"]\n",
    );
    let j = f.json();
    assert_eq!(j["mode"], "entering");
    assert_eq!(j["request"]["requested_by"], "alice");
    assert_eq!(j["request"]["command"], serde_json::json!(["echo", "a b"]));
    f.run(&["status"]).says("echo 'a b'");
    // Resumed.
    fs::remove_file(f.p("/var/lib/umm/state")).unwrap();
    f.boot("maintenance:requested");
    f.put("/run/umm/resumed", "");
    assert_eq!(f.json()["mode"], "resumed");
    // Disabled, with where the switch came from.
    f.put("/etc/umm/umm.toml", "enabled = false\n");
    let j = f.json();
    assert_eq!(j["mode"], "disabled");
    assert_eq!(j["enabled"], false);
    assert_eq!(j["enabled_source"], "/etc/umm/umm.toml");
}

#[test]
fn status_reports_corrupt_state_and_bad_config_and_still_works() {
    let f = Fake::new();
    f.boot("normal");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = [oops\n");
    f.put(
        "/etc/umm/umm.toml.d/10-x.toml",
        "reboot_count = \"many\"\nbogus = 1\n",
    );
    let before = f.state_bytes();
    let j = f.json();
    assert_eq!(j["mode"], "normal");
    let p = j["problems"].to_string();
    assert!(p.contains("corrupt"), "{p}");
    assert!(
        p.contains("/etc/umm/umm.toml.d/10-x.toml: key 'reboot_count'"),
        "{p}"
    );
    assert!(p.contains("unknown key 'bogus'"), "{p}");
    f.run(&["status"])
        .code(0)
        .says("problems:")
        .says("error: state:");
    assert_eq!(
        f.state_bytes(),
        before,
        "status must not touch the state file"
    );
}

#[test]
fn status_shows_command_result_and_hides_output_from_non_root() {
    let f = Fake::new();
    f.boot("maintenance:requested");
    f.put(
        "/var/lib/umm/state",
        "version = 1\n[request]\nrequested_at = 7\nrequested_by = \"root\"\ncommand = [\"sh\", \"-c\", \"x\"]\n\
         [command_result]\nrequest = 7\ncommand = [\"sh\", \"-c\", \"x\"]\nstarted = 8\nfinished = 9\nexit_status = 3\noutput_file = \"/var/lib/umm/command.out\"\n",
    );
    let lines: String = (1..=80).map(|i| format!("line {i}\n")).collect();
    f.put("/var/lib/umm/command.out", &lines);
    let j = f.json();
    let r = &j["command_result"];
    assert_eq!(r["exit_status"], 3);
    assert_eq!(r["finished"], 9);
    assert_eq!(r["output_file"], "/var/lib/umm/command.out");
    let out = r["output"].as_str().unwrap();
    assert!(
        out.ends_with("line 80\n") && !out.contains("line 30\n"),
        "{out}"
    );
    f.run(&["status"]).says("exit status 3").says("| line 80");

    let o = as_nobody(&f, &["status", "--json"]);
    o.code(0);
    let j: Value = serde_json::from_str(&o.stdout()).unwrap();
    assert_eq!(j["command_result"]["exit_status"], 3);
    assert_eq!(j["command_result"]["output"], Value::Null);
}

// ---------------------------------------------------------------- on

#[test]
fn on_no_reboot_persists_the_argv_and_does_not_reboot() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&[
        "on",
        "--no-reboot",
        "--",
        "sh",
        "-c",
        "echo \"a b\"; exit 3",
    ])
    .code(0)
    .says("next boot enters maintenance mode");
    assert_eq!(f.reboots(), "");
    let j = f.json();
    assert_eq!(j["mode"], "entering");
    assert_eq!(j["request"]["requested_by"], "root");
    assert_eq!(
        j["request"]["command"],
        serde_json::json!(["sh", "-c", "echo \"a b\"; exit 3"])
    );
    let last = j["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["to"].as_str(), last["reason"].as_str()),
        (Some("entering"), Some("requested"))
    );
}

#[test]
fn on_reboots_through_the_recorder() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&["on"])
        .code(0)
        .says("rebooting into maintenance mode");
    assert_eq!(f.reboots().lines().count(), 1, "{}", f.reboots());
    assert!(f.json()["request"].is_object());
    assert!(
        f.systemd_calls().iter().all(|c| c == "Reboot"),
        "{:?}",
        f.systemd_calls()
    );
}

#[test]
fn on_retries_a_pending_request_and_guards_its_command() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&["on", "--no-reboot", "--", "true"]).code(0);
    let at = f.json()["request"]["requested_at"].clone();
    // The reboot never happened: 'umm on' again reboots, keeping the request.
    f.run(&["on"]).code(0).says("already pending");
    assert_eq!(f.reboots().lines().count(), 1);
    let j = f.json();
    assert_eq!(j["request"]["requested_at"], at);
    assert_eq!(j["request"]["command"], serde_json::json!(["true"]));
    // A different command needs --replace-command.
    let before = f.state_bytes();
    f.run(&["on", "--no-reboot", "--", "false"])
        .code(3)
        .says("--replace-command");
    assert_eq!(f.state_bytes(), before);
    f.run(&["on", "--no-reboot", "--replace-command", "--", "false"])
        .code(0);
    assert_eq!(f.json()["request"]["command"], serde_json::json!(["false"]));
}

#[test]
fn on_in_maintenance_changes_nothing_unless_replacing_the_command() {
    let f = Fake::new();
    f.boot("maintenance:reboot-loop");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = 3\n");
    let before = f.state_bytes();
    f.run(&["on"])
        .code(3)
        .says("already in maintenance mode (reason: reboot-loop)");
    f.run(&["on", "--", "true"])
        .code(3)
        .says("--replace-command");
    assert_eq!(f.state_bytes(), before);
    assert_eq!(f.reboots(), "");
    f.run(&["on", "--replace-command", "--", "echo", "hi"])
        .code(0)
        .says("umm-command.service");
    assert_eq!(f.reboots(), "");
    let j = f.json();
    assert_eq!(j["mode"], "maintenance");
    assert_eq!(j["request"]["command"], serde_json::json!(["echo", "hi"]));
    assert_eq!(j["unclean_boots"], 3);
}

#[test]
fn on_when_disabled_is_refused() {
    let f = Fake::new();
    f.put("/etc/umm/umm.toml", "enabled = false\n");
    f.run(&["on", "--no-reboot"]).code(3).says("umm enable");
    assert_eq!(f.state_bytes(), None);
}

#[test]
fn on_moves_a_corrupt_state_aside() {
    let f = Fake::new();
    f.boot("normal");
    f.put("/var/lib/umm/state", "garbage [");
    f.run(&["on", "--no-reboot"]).code(0).says("moved aside");
    assert_eq!(f.json()["mode"], "entering");
    let aside = fs::read_dir(f.p("/var/lib/umm"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("state.corrupt-")
        })
        .count();
    assert_eq!(aside, 1);
    let p = f.json()["problems"].to_string();
    assert!(
        p.contains("moved aside to /var/lib/umm/state.corrupt-"),
        "{p}"
    );
}

// ---------------------------------------------------------------- off

#[test]
fn off_when_not_in_maintenance_changes_nothing() {
    let f = Fake::new();
    f.boot("normal");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = 1\n");
    let before = f.state_bytes();
    f.run(&["off"]).code(3).says("not in maintenance mode");
    f.run(&["off", "reboot"])
        .code(3)
        .says("not in maintenance mode");
    assert_eq!(f.state_bytes(), before);
    assert!(f.systemd_calls().is_empty());
    assert_eq!(f.reboots(), "");
    assert!(!f.p("/run/umm/resumed").exists());
}

#[test]
fn off_resumes_clears_count_and_request_and_calls_systemd_in_order() {
    let f = Fake::new();
    f.boot("maintenance:requested");
    f.put(
        "/var/lib/umm/state",
        "version = 1\nunclean_boots = 4\n[request]\nrequested_at = 5\nrequested_by = \"root\"\n",
    );
    f.put("/run/motd.d/50-umm", "banner");
    f.put("/run/issue.d/50-umm.issue", "banner");
    f.run(&["off"])
        .code(0)
        .says("cleared the maintenance request")
        .says("multi-user.target is up");
    assert_eq!(
        f.systemd_calls(),
        [
            "Reload",
            "GetDefaultTarget multi-user.target",
            "Subscribe",
            "StartUnit multi-user.target replace done",
            "ListUnitsFiltered failed",
        ]
    );
    assert!(f.p("/run/umm/resumed").exists());
    assert!(!f.p("/run/motd.d/50-umm").exists());
    assert!(!f.p("/run/issue.d/50-umm.issue").exists());
    let st = f.state();
    assert_eq!(st["unclean_boots"].as_integer(), Some(0));
    assert!(st.get("request").is_none());
    assert_eq!(st["open_boot"]["boot_id"].as_str(), Some("boot-1"));
    let j = f.json();
    assert_eq!(
        (j["mode"].as_str(), j["unclean_boots"].as_u64()),
        (Some("resumed"), Some(0))
    );
    assert_eq!(f.reboots(), "");
    // A second 'umm off' is refused; --retry starts the target again.
    f.run(&["off"]).code(3).says("umm off --retry");
    assert_eq!(f.systemd_calls().len(), 5);
    f.run(&["off", "--retry"])
        .code(0)
        .says("starting the default target again");
    assert_eq!(f.systemd_calls().len(), 10);
}

#[test]
fn off_reports_failed_units_and_a_target_that_did_not_come_up() {
    let f = Fake::new();
    f.boot("maintenance:cmdline");
    symlink("/usr/lib/systemd/system/graphical.target", {
        let p = f.p("/etc/systemd/system/default.target");
        mkdirs(p.parent().unwrap());
        p
    })
    .unwrap();
    // systemd still reports the generator's override: use the admin's default.
    f.run_env(
        &["off"],
        &[
            ("UMM_FAKE_SYSTEMD_DEFAULT", "umm.target"),
            ("UMM_FAKE_SYSTEMD_RESULT", "dependency"),
            ("UMM_FAKE_SYSTEMD_FAILED", "db.service,web.service"),
        ],
    )
    .code(1)
    .says("starting graphical.target instead")
    .says("failed units: db.service web.service")
    .says("did not come up")
    .says("umm off --retry");
    assert!(f
        .systemd_calls()
        .contains(&"StartUnit graphical.target replace dependency".to_string()));
}

#[test]
fn off_cancels_a_request_whose_reboot_never_happened() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&["on", "--no-reboot", "--", "true"]).code(0);
    f.run(&["off"]).code(0).says("request cancelled");
    assert!(f.systemd_calls().is_empty(), "{:?}", f.systemd_calls());
    assert!(!f.p("/run/umm/resumed").exists());
    let j = f.json();
    assert_eq!(
        (j["mode"].as_str(), &j["request"]),
        (Some("normal"), &Value::Null)
    );
}

#[test]
fn off_reboot_clears_and_reboots() {
    let f = Fake::new();
    f.boot("maintenance:reboot-loop");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = 3\n");
    f.run(&["off", "reboot"])
        .code(0)
        .says("rebooting into normal operation");
    assert_eq!(f.reboots().lines().count(), 1);
    assert!(f.systemd_calls().iter().all(|c| c == "Reboot"));
    assert_eq!(f.state()["unclean_boots"].as_integer(), Some(0));
    assert!(!f.p("/run/umm/resumed").exists());
}

#[test]
fn off_works_when_umm_boot_service_did_not_record_the_boot() {
    let f = Fake::new();
    // Only the generator's link tells that this boot is in maintenance mode.
    let link = f.p("/run/systemd/generator.early/default.target");
    mkdirs(link.parent().unwrap());
    symlink("/usr/lib/systemd/system/umm.target", &link).unwrap();
    let j = f.json();
    assert_eq!(j["mode"], "maintenance");
    f.run(&["off"]).code(0);
    assert_eq!(f.json()["mode"], "resumed");
}

// ---------------------------------------------------------------- hooks

#[test]
fn hooks_run_in_order_with_the_transition_and_reason() {
    let f = Fake::new();
    f.boot("normal");
    let log = f.logs.path().join("hooks");
    let l = log.display();
    f.hook(
        "pre-on.d",
        "20-b",
        &format!("echo \"b $UMM_TRANSITION $UMM_REASON\" >> {l}"),
    );
    f.hook(
        "pre-on.d",
        "10-a",
        &format!("echo \"a $UMM_TRANSITION $UMM_REASON\" >> {l}"),
    );
    f.hook(
        "pre-off.d",
        "10-c",
        &format!("echo \"c $UMM_TRANSITION $UMM_REASON\" >> {l}"),
    );
    f.run(&["on", "--no-reboot"])
        .code(0)
        .says("ran 2 pre-on hook(s)");
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "a on requested\nb on requested\n"
    );
    f.boot("maintenance:requested");
    f.run(&["off"]).code(0).says("ran 1 pre-off hook(s)");
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "a on requested\nb on requested\nc off requested\n"
    );
}

#[test]
fn a_failing_hook_aborts_and_leaves_the_state_byte_identical() {
    let f = Fake::new();
    f.boot("maintenance:reboot-loop");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = 3\n");
    let env = f.logs.path().join("env");
    f.hook(
        "pre-off.d",
        "05-env",
        &format!("echo \"$UMM_TRANSITION $UMM_REASON\" > {}", env.display()),
    );
    f.hook("pre-off.d", "10-fail", "echo refusing >&2; exit 7");
    let before = f.state_bytes();
    f.run(&["off"])
        .code(1)
        .says("10-fail")
        .says("exit status 7")
        .says("nothing was changed")
        .says("--skip-hooks");
    assert_eq!(fs::read_to_string(&env).unwrap(), "off reboot-loop\n");
    f.run(&["off", "reboot"]).code(1);
    assert_eq!(f.state_bytes(), before);
    assert!(f.systemd_calls().is_empty());
    assert_eq!(f.reboots(), "");
    assert!(!f.p("/run/umm/resumed").exists());
    // --skip-hooks overrides.
    f.run(&["off", "--skip-hooks"])
        .code(0)
        .says("skipping the pre-off hooks");
    assert_eq!(f.state()["unclean_boots"].as_integer(), Some(0));
}

#[test]
fn a_hook_that_times_out_aborts() {
    let f = Fake::new();
    f.boot("normal");
    f.put("/etc/umm/umm.toml", "hook_timeout = \"1s\"\n");
    f.hook("pre-on.d", "10-slow", "sleep 30");
    let t = std::time::Instant::now();
    f.run(&["on"]).code(1).says("timed out").says("10-slow");
    assert!(t.elapsed().as_secs() < 20, "{:?}", t.elapsed());
    assert_eq!(f.state_bytes(), None);
    assert_eq!(f.reboots(), "");
}

#[test]
fn untrusted_hooks_are_refused_with_the_file_named() {
    let f = Fake::new();
    f.boot("normal");
    let h = f.hook("pre-on.d", "10-writable", "true");
    fs::set_permissions(&h, fs::Permissions::from_mode(0o775)).unwrap();
    f.run(&["on"])
        .code(1)
        .says(&h.display().to_string())
        .says("writable by group or others");
    fs::set_permissions(&h, fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&h, Some(65534), None).unwrap();
    f.run(&["on"])
        .code(1)
        .says(&h.display().to_string())
        .says("owned by uid 65534");
    assert_eq!(f.state_bytes(), None);
    assert_eq!(f.reboots(), "");
}

// ---------------------------------------------------------------- enable/disable

#[test]
fn enable_and_disable_write_the_switch_drop_in() {
    let f = Fake::new();
    f.boot("normal");
    f.put("/etc/umm/umm.toml", "enabled = false\n");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = 2\n");
    let sw = f.p("/etc/umm/umm.toml.d/90-umm-switch.toml");
    f.run(&["enable"])
        .code(0)
        .says("/etc/umm/umm.toml.d/90-umm-switch.toml");
    assert!(fs::read_to_string(&sw).unwrap().contains("enabled = true"));
    assert_eq!(
        fs::metadata(&sw).unwrap().permissions().mode() & 0o777,
        0o644
    );
    let j = f.json();
    assert_eq!(j["enabled"], true);
    assert_eq!(
        j["enabled_source"],
        "/etc/umm/umm.toml.d/90-umm-switch.toml"
    );
    assert_eq!(j["unclean_boots"], 2);
    f.run(&["disable"]).code(0).says("count is cleared");
    assert!(fs::read_to_string(&sw).unwrap().contains("enabled = false"));
    let j = f.json();
    assert_eq!(
        (j["mode"].as_str(), j["unclean_boots"].as_u64()),
        (Some("disabled"), Some(0))
    );
}

#[test]
fn disable_refuses_a_pending_request_unless_forced() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&["on", "--no-reboot"]).code(0);
    let before = f.state_bytes();
    f.run(&["disable"])
        .code(3)
        .says("umm disable --force")
        .says("umm off");
    assert_eq!(f.state_bytes(), before);
    assert!(!f.p("/etc/umm/umm.toml.d/90-umm-switch.toml").exists());
    f.run(&["disable", "--force"])
        .code(0)
        .says("cancelled the maintenance request");
    let j = f.json();
    assert_eq!(
        (j["mode"].as_str(), &j["request"]),
        (Some("disabled"), &Value::Null)
    );
}

#[test]
fn a_later_file_that_overrides_the_switch_is_named() {
    let f = Fake::new();
    f.boot("normal");
    f.put("/run/umm/umm.toml.d/95-pin.toml", "enabled = false\n");
    f.run(&["enable"])
        .code(1)
        .says("/run/umm/umm.toml.d/95-pin.toml")
        .says("remove 'enabled'");
    assert_eq!(f.json()["enabled"], false);
}

// ---------------------------------------------------------------- callers and usage

fn as_nobody(f: &Fake, args: &[&str]) -> Out {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
        .args(args)
        .env("UMM_ROOT", f.root())
        .env("UMM_FAKE_REBOOT", f.reboot_log())
        .env("UMM_FAKE_SYSTEMD", f.systemd_log());
    Out(c.output().unwrap())
}

#[test]
fn non_root_callers_get_status_but_no_changes() {
    let f = Fake::new();
    f.boot("maintenance:requested");
    f.put("/var/lib/umm/state", "version = 1\nunclean_boots = 1\n");
    let before = f.state_bytes();
    as_nobody(&f, &["status"]).code(0).says("mode: maintenance");
    for args in [
        &["on"][..],
        &["on", "--no-reboot"],
        &["off"],
        &["off", "reboot"],
        &["enable"],
        &["disable", "--force"],
    ] {
        as_nobody(&f, args)
            .code(4)
            .says("must be run as root")
            .says("sudo umm");
    }
    assert_eq!(f.state_bytes(), before);
    assert!(f.systemd_calls().is_empty());
    assert_eq!(f.reboots(), "");
}

#[test]
fn bad_usage_exits_2_with_usage() {
    let f = Fake::new();
    for args in [
        &[][..],
        &["bogus"],
        &["status", "--bogus"],
        &["on", "--now"],
        &["on", "ls"],
        &["off", "later"],
        &["off", "reboot", "--retry"],
        &["disable", "extra"],
    ] {
        f.run(args).code(2).says("--help");
    }
    f.run(&["on", "--no-reboot", "--", ""])
        .code(2)
        .says("empty");
    f.run(&["--help"]).code(0).says("status");
    f.run(&["on", "--help"]).code(0).says("--no-reboot");
}

#[test]
fn a_second_command_is_refused_while_one_holds_the_lock() {
    use std::os::unix::io::AsRawFd;
    let f = Fake::new();
    f.boot("normal");
    f.root.write_mode(LOCK, "", 0o600);
    let held = fs::File::open(f.p(LOCK)).unwrap();
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    f.run(&["on", "--no-reboot"])
        .code(3)
        .says("another umm command is running");
    f.run(&["status"]).code(0);
    assert_eq!(f.state_bytes(), None);
    drop(held);
    f.run(&["on", "--no-reboot"]).code(0);
}

#[test]
fn a_fake_root_never_reaches_the_real_init_system() {
    let f = Fake::new();
    f.boot("maintenance:cmdline");
    let o = Out(Command::new(BIN)
        .args(["off"])
        .env("UMM_ROOT", f.root())
        .env_remove("UMM_FAKE_SYSTEMD")
        .env_remove("UMM_FAKE_REBOOT")
        .output()
        .unwrap());
    o.code(1).says("refusing to talk to the real init system");
}

// ---------------------------------------------------------------- state, lock and writes (issue 10)

fn mode_of(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(p).unwrap().mode() & 0o7777
}

/// Finding 4: under umask 002 `umm on` created /var/lib/umm 0775, said
/// "requested", and the boot path refused the state in that directory: the
/// node rebooted into normal operation.
#[test]
fn a_request_made_under_umask_002_is_one_the_boot_path_accepts() {
    use std::os::unix::process::CommandExt;
    let f = Fake::new();
    f.boot("normal");
    let mut c = f.cmd(&["on", "--no-reboot"]);
    // SAFETY: umask is async-signal-safe and only changes the child's mask.
    unsafe {
        c.pre_exec(|| {
            libc::umask(0o002);
            Ok(())
        });
    }
    Out(c.output().unwrap()).code(0).says("requested");
    for d in ["/var", "/var/lib", "/var/lib/umm"] {
        assert_eq!(mode_of(&f.p(d)), 0o755, "{d}");
    }
    let j = f.json();
    assert_eq!(j["mode"], "entering", "{j}");
    assert_eq!(j["problems"], serde_json::json!([]), "{j}");
    // What the next boot decides from the same files.
    f.put("/proc/sys/kernel/random/boot_id", "boot-2\n");
    fs::remove_dir_all(f.p("/run")).unwrap();
    f.run(&["boot", "record"])
        .code(0)
        .says("this boot: maintenance:requested");
}

/// Finding 4: a state directory the boot path would refuse to read is
/// refused for writing too, with the fix in the message; nothing is saved.
#[test]
fn a_state_dir_the_boot_path_would_refuse_is_refused_for_writing() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fake::new();
    f.boot("normal");
    let dir = f.root.mkdir_mode("/var/lib/umm", 0o775);
    f.run(&["on", "--no-reboot"])
        .code(1)
        .says("writable by group or others")
        .says("chmod go-w")
        .says("nothing was requested");
    assert_eq!(f.state_bytes(), None);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    f.run(&["on", "--no-reboot"]).code(0);
    assert_eq!(f.json()["mode"], "entering");
}

/// `chattr +i` on a directory for as long as this lives: a real write failure
/// (EPERM) at one chosen point, as a power cut there would leave things.
struct Immutable(PathBuf);

impl Immutable {
    fn new(dir: PathBuf) -> Immutable {
        let st = Command::new("chattr").arg("+i").arg(&dir).status();
        assert!(
            st.is_ok_and(|s| s.success()),
            "chattr +i {} failed: these tests need chattr (e2fsprogs, installed by scripts/test-deps.sh) and a file system with the immutable flag",
            dir.display()
        );
        Immutable(dir)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Finding 12: `umm disable --force` wrote the switch, then the state. A
/// power cut (here: a failing write) between the two left umm disabled with
/// the request still pending, and the next `umm enable` brought it back.
#[test]
fn disable_force_never_leaves_a_request_behind_a_disabled_switch() {
    let f = Fake::new();
    f.boot("normal");
    f.run(&["on", "--no-reboot"]).code(0);
    let consistent = |j: &Value| {
        assert!(
            !(j["enabled"] == false && j["request"] != Value::Null),
            "disabled with a request pending: 'umm enable' would resurrect it: {j}"
        );
    };
    // The state cannot be written.
    {
        let _ro = Immutable::new(f.p("/var/lib/umm"));
        f.run(&["disable", "--force"]).code(1);
    }
    let j = f.json();
    consistent(&j);
    assert_eq!(
        (j["enabled"].clone(), j["mode"].clone()),
        (Value::Bool(true), "entering".into())
    );
    // The switch cannot be written, after the state was: the state is put back.
    mkdirs(&f.p("/etc/umm/umm.toml.d"));
    {
        let _ro = Immutable::new(f.p("/etc/umm/umm.toml.d"));
        f.run(&["disable", "--force"])
            .code(1)
            .says("nothing was changed");
    }
    let j = f.json();
    consistent(&j);
    assert_eq!(j["mode"], "entering", "{j}");
    // Both writable: disabled, request gone, and enabling does not bring it back.
    f.run(&["disable", "--force"]).code(0).says("cancelled");
    consistent(&f.json());
    f.run(&["enable"]).code(0);
    assert_eq!(f.json()["mode"], "normal");
}

/// Finding 12: a directory umm creates is fsynced in its parent, so that a
/// power cut after "requested" cannot lose the new state directory itself.
#[test]
fn new_directories_are_fsynced_in_their_parents() {
    let f = Fake::new();
    f.boot("normal");
    let log = f.logs.path().join("strace");
    let log_s = log.display().to_string();
    let o = f
        .cmd_via(
            &[
                "strace",
                "-f",
                "-qq",
                "-s",
                "4096",
                "-e",
                "trace=mkdir,mkdirat,openat,fsync",
                "-o",
                &log_s,
            ],
            &["on", "--no-reboot"],
        )
        .output()
        .expect("strace is missing: scripts/test-deps.sh installs it");
    Out(o).code(0);
    let text = fs::read_to_string(&log).unwrap();
    // (pid, fd) -> path of the latest successful open, and what was fsynced.
    let mut open = std::collections::HashMap::new();
    let mut created = Vec::new();
    let mut synced_after = Vec::new();
    for line in text.lines() {
        // "<pid> <call> = <ret>"; strace pads short pids with spaces.
        let (pid, call) = line.split_once(' ').unwrap_or(("", line));
        let call = call.trim_start();
        let path = call.split('"').nth(1).unwrap_or("").to_string();
        let ret = call.rsplit("= ").next().unwrap_or("").trim();
        if (call.starts_with("mkdir(") || call.starts_with("mkdirat(")) && ret == "0" {
            created.push((path, synced_after.len()));
        } else if call.starts_with("openat(") {
            if let Ok(fd) = ret.parse::<i32>() {
                open.insert((pid.to_string(), fd), path);
            }
        } else if let Some(fd) = call
            .strip_prefix("fsync(")
            .and_then(|r| r.split(')').next())
        {
            if let Some(p) = open.get(&(pid.to_string(), fd.parse::<i32>().unwrap_or(-1))) {
                synced_after.push(p.clone());
            }
        }
    }
    let state_dir = f.p("/var/lib/umm").display().to_string();
    assert!(
        created.iter().any(|(p, _)| *p == state_dir),
        "{created:?}\n{text}"
    );
    for (dir, at) in &created {
        let parent = Path::new(dir).parent().unwrap().display().to_string();
        assert!(
            synced_after[*at..].contains(&parent),
            "{dir} was created but {parent} was not fsynced after it:\n{text}"
        );
    }
}

/// `cmd` as user nobody (uid/gid 65534, no groups).
fn nobody(cmd: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .args(cmd);
    c
}

/// Finding 2: the lock was /run/lock/umm.lock in the 1777 /run/lock, opened
/// with O_CREAT and no check: a local user who flock-ed it refused every
/// `umm on/off/enable/disable` (exit 3) for as long as they liked.
#[test]
fn a_local_user_cannot_block_the_commands() {
    use std::io::BufRead;
    let f = Fake::new();
    f.boot("normal");
    f.root.mkdir_mode("/run/lock", 0o1777);
    let old = f.p("/run/lock/umm.lock").display().to_string();
    let mut holder = nobody(&["flock", &old, "-c", "echo locked; exec sleep 60"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("setpriv and flock (util-linux, installed by scripts/test-deps.sh)");
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked", "nobody could not take the old lock");
    let o = f.run(&["on", "--no-reboot"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    o.code(0).says("requested");
    // Nor can nobody open the lock umm uses now.
    let lock = f.p(LOCK).display().to_string();
    assert_eq!(mode_of(Path::new(&lock)), 0o600);
    let st = nobody(&["flock", "-n", &lock, "true"]).status().unwrap();
    assert!(!st.success(), "nobody could flock {lock}");
}

/// Finding 2: the lock is opened with O_NOFOLLOW and checked on the fd: a
/// symlink, someone else's file or a file others can open is refused with
/// what to do, and nothing changes.
#[test]
fn a_lock_file_umm_did_not_create_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fake::new();
    f.boot("normal");
    let lock = f.p(LOCK);
    let victim = f.p("/victim");
    symlink(&victim, &lock).unwrap();
    f.run(&["on", "--no-reboot"])
        .code(1)
        .says("refusing the lock")
        .says("symbolic link")
        .says("rm ");
    assert!(!victim.exists(), "the link was followed");
    assert_eq!(f.state_bytes(), None);
    fs::remove_file(&lock).unwrap();
    fs::write(&lock, "").unwrap();
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&lock, Some(65534), Some(65534)).unwrap();
    f.run(&["on", "--no-reboot"])
        .code(1)
        .says("owned by uid 65534");
    std::os::unix::fs::chown(&lock, Some(0), Some(0)).unwrap();
    fs::set_permissions(&lock, fs::Permissions::from_mode(0o644)).unwrap();
    f.run(&["on", "--no-reboot"]).code(1).says("0644");
    assert_eq!(f.state_bytes(), None);
    fs::remove_file(&lock).unwrap();
    f.run(&["on", "--no-reboot"]).code(0);
}

/// Finding 7: `umm boot record/stable/clean/run-command` read-modify-wrote
/// the state without the lock `umm on` holds: run side by side, one of them
/// lost the other's change (on the old code, a request `umm on` had reported
/// as saved). Both now go through `state::update` under one lock.
#[test]
fn concurrent_on_and_boot_record_lose_no_update() {
    use std::process::Stdio;
    let f = Fake::new();
    let rounds = 300;
    let mut lost = Vec::new();
    for i in 0..rounds {
        let _ = fs::remove_file(f.p("/var/lib/umm/state"));
        let boot = format!("boot-{i}");
        f.put("/proc/sys/kernel/random/boot_id", &format!("{boot}\n"));
        let spawn = |mut c: Command| {
            c.stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let on = spawn(f.cmd(&["on", "--no-reboot"]));
        let mut rec = f.cmd(&["boot", "record"]);
        rec.env("UMM_DECISION", "normal");
        let rec = spawn(rec);
        Out(on.wait_with_output().unwrap()).code(0);
        Out(rec.wait_with_output().unwrap()).code(0);
        let st = f.state();
        if !st.contains_key("request") {
            lost.push(format!("round {i}: the request"));
        }
        let watched = st
            .get("open_boot")
            .and_then(|b| b.get("boot_id"))
            .and_then(|b| b.as_str());
        if watched != Some(boot.as_str()) {
            lost.push(format!("round {i}: the boot record ({watched:?})"));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {rounds} races lost an update: {lost:?}",
        lost.len()
    );
}
// ---------------------------------------------------------------- GRUB

// GRUB's environment block and the maintenance entry: `umm on --via-grub`
// (its checks and the one-shot `next_entry`), and `umm status` / `umm off` /
// `umm off reboot` with a grubenv `next_entry` or `saved_entry` pointing at a
// maintenance entry. grubenv is created, changed and listed by the real
// `grub-editenv` (grub-common, installed by scripts/test-deps.sh).
// `grub-probe` is a stand-in on PATH: it can only probe real block devices,
// and LVM / RAID / btrfs cannot be set up here; the VM test
// (tests/vm/test_grub.py) runs the real one on a real disk.

const GRUB_CFG: &str = "### BEGIN /etc/grub.d/00_header ###\n\
if [ \"${next_entry}\" ] ; then\n   set default=\"${next_entry}\"\n   set next_entry=\n   save_env next_entry\n   set boot_once=true\nfi\n\
### BEGIN /etc/grub.d/55_umm ###\n\
menuentry 'Debian GNU/Linux'\" (maintenance mode)\" $menuentry_id_option 'umm-maintenance' {\n\tlinux /boot/vmlinuz root=/dev/vda1 ro umm=1\n}\n";

/// A fake root with a grub.cfg, an empty grubenv and the grub-probe stand-in.
struct GrubFake {
    f: Fake,
    bin: tempfile::TempDir,
}

impl std::ops::Deref for GrubFake {
    type Target = Fake;
    fn deref(&self) -> &Fake {
        &self.f
    }
}

impl GrubFake {
    fn new() -> GrubFake {
        let g = GrubFake {
            f: Fake::new(),
            bin: tempfile::tempdir().unwrap(),
        };
        fs::set_permissions(g.bin.path(), fs::Permissions::from_mode(0o755)).unwrap();
        g.put("/boot/grub/grub.cfg", GRUB_CFG);
        g.editenv(&["create"]);
        // Answers --target=abstraction / --target=fs from the environment and
        // logs what it was asked.
        let probe = g.bin.path().join("grub-probe");
        fs::write(
            &probe,
            "#!/bin/sh\necho \"$*\" >> \"$FAKE_PROBE_LOG\"\n[ -n \"$FAKE_PROBE_FAIL\" ] && { echo 'grub-probe: error: failed to get canonical path' >&2; exit 1; }\ncase \"$1\" in\n--target=abstraction) printf '%s\\n' \"$FAKE_ABSTRACTION\" ;;\n--target=fs) printf '%s\\n' \"${FAKE_FS:-ext2}\" ;;\nesac\n",
        )
        .unwrap();
        fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).unwrap();
        g
    }

    fn grubenv(&self) -> PathBuf {
        self.p("/boot/grub/grubenv")
    }

    fn editenv(&self, args: &[&str]) -> String {
        let o = Command::new("grub-editenv")
            .arg(self.grubenv())
            .args(args)
            .output()
            .expect("grub-editenv not found: install grub-common (scripts/test-deps.sh)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    fn env_list(&self) -> String {
        self.editenv(&["list"])
    }

    /// `umm ARGS` with the stand-in first on PATH and `env` for it.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let path = format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let log = self.bin.path().join("probe.log");
        let mut all = vec![
            ("PATH", path.as_str()),
            ("FAKE_PROBE_LOG", log.to_str().unwrap()),
        ];
        all.extend_from_slice(env);
        self.f.run_env(args, &all)
    }

    fn reboot_count(&self) -> usize {
        self.reboots().lines().count()
    }

    fn problems(&self) -> String {
        self.f.json()["problems"].to_string()
    }
}

#[test]
fn via_grub_sets_next_entry_once_and_off_cancels_it() {
    let f = GrubFake::new();
    f.boot("normal");
    let seen = f.logs.path().join("hook-env");
    f.hook(
        "pre-on.d",
        "10-log",
        &format!(
            "echo \"$UMM_TRANSITION $UMM_REASON\" > '{}'",
            seen.display()
        ),
    );
    f.run(&["on", "--via-grub", "--no-reboot"], &[])
        .code(0)
        .says("next_entry=umm-maintenance");
    assert!(f.env_list().contains("next_entry=umm-maintenance\n"));
    // The boot is entered from the kernel command line: reason cmdline.
    assert_eq!(fs::read_to_string(&seen).unwrap(), "on cmdline\n");
    assert_eq!(f.reboot_count(), 0);
    // grub-probe was asked about this root's GRUB directory.
    let probed = fs::read_to_string(f.bin.path().join("probe.log")).unwrap();
    let dir = f.p("/boot/grub").display().to_string();
    assert!(
        probed.contains(&format!("--target=abstraction {dir}")),
        "{probed}"
    );
    assert!(f.problems().contains("next_entry"), "{}", f.problems());
    // No request was persisted: the boot is entered from the command line.
    assert!(
        !f.p("/var/lib/umm/state").exists()
            || !fs::read_to_string(f.p("/var/lib/umm/state"))
                .unwrap()
                .contains("[request]")
    );
    f.run(&["off"], &[]).code(0).says("cleared next_entry");
    assert!(!f.env_list().contains("next_entry"), "{}", f.env_list());
    assert!(!f.problems().contains("next_entry"));
    // Nothing left: off is refused again.
    f.run(&["off"], &[]).code(3);
}

#[test]
fn via_grub_reboots_and_restores_an_old_prev_saved_entry() {
    let f = GrubFake::new();
    f.boot("normal");
    f.editenv(&["set", "prev_saved_entry=gnulinux-simple-x"]);
    f.run(&["on", "--via-grub"], &[]).code(0).says("rebooting");
    assert_eq!(f.reboot_count(), 1);
    let env = f.env_list();
    assert!(env.contains("next_entry=umm-maintenance\n"), "{env}");
    assert!(
        env.contains("saved_entry=gnulinux-simple-x\n") && !env.contains("prev_saved_entry"),
        "{env}"
    );
}

#[test]
fn via_grub_refuses_where_next_entry_could_stick_or_not_work() {
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        ("lvm", &[("FAKE_ABSTRACTION", "lvm")], "on lvm"),
        (
            "mdraid",
            &[("FAKE_ABSTRACTION", "diskfilter mdraid1x")],
            "on diskfilter",
        ),
        ("btrfs", &[("FAKE_FS", "btrfs")], "on btrfs"),
        (
            "probe fails",
            &[("FAKE_PROBE_FAIL", "1")],
            "cannot tell whether GRUB can write",
        ),
    ];
    for (what, env, msg) in cases {
        let f = GrubFake::new();
        f.boot("normal");
        let before = fs::read(f.grubenv()).unwrap();
        f.run(&["on", "--via-grub"], env)
            .code(1)
            .says(msg)
            .says("umm on");
        assert_eq!(
            fs::read(f.grubenv()).unwrap(),
            before,
            "{what}: grubenv changed"
        );
        assert_eq!(f.reboot_count(), 0, "{what}");
    }
    // No maintenance entry in grub.cfg (55_umm missing or update-grub not run).
    let f = GrubFake::new();
    f.boot("normal");
    f.put(
        "/boot/grub/grub.cfg",
        &GRUB_CFG.replace("umm-maintenance", "gnulinux-simple-x"),
    );
    f.run(&["on", "--via-grub"], &[])
        .code(1)
        .says("update-grub");
    assert!(!f.env_list().contains("next_entry"));
    // A grubenv that is not an environment block.
    let f = GrubFake::new();
    f.boot("normal");
    fs::write(f.grubenv(), vec![0u8; 1024]).unwrap();
    f.run(&["on", "--via-grub"], &[])
        .code(1)
        .says("grubenv is corrupt");
    assert_eq!(fs::read(f.grubenv()).unwrap(), vec![0u8; 1024]);
    // No GRUB at all.
    let f = GrubFake::new();
    fs::remove_file(f.p("/boot/grub/grub.cfg")).unwrap();
    f.run(&["on", "--via-grub"], &[])
        .code(1)
        .says("does not boot with GRUB 2");
    // A scheduled command needs a request: bad usage.
    let f = GrubFake::new();
    f.run(&["on", "--via-grub", "--", "true"], &[]).code(2);
}

#[test]
fn off_and_off_reboot_clear_a_sticky_saved_entry() {
    let f = GrubFake::new();
    f.boot("maintenance:cmdline");
    f.editenv(&["set", "saved_entry=umm-maintenance"]);
    let o = f.run(&["status"], &[]);
    o.code(0)
        .says("saved_entry")
        .says("every boot enters maintenance mode");
    f.run(&["off"], &[])
        .code(0)
        .says("saved_entry in")
        .says("cleared saved_entry");
    assert!(!f.env_list().contains("saved_entry"), "{}", f.env_list());

    let f = GrubFake::new();
    f.boot("maintenance:cmdline");
    f.editenv(&[
        "set",
        "saved_entry=umm-submenu>umm-gnulinux-6.1.0-17-amd64-advanced-x",
        "next_entry=umm-maintenance",
    ]);
    f.run(&["off", "reboot"], &[])
        .code(0)
        .says("cleared next_entry and saved_entry")
        .says("rebooting into normal operation");
    assert_eq!(f.reboot_count(), 1);
    assert!(!f.env_list().contains("_entry"), "{}", f.env_list());
}

#[test]
fn normal_entries_and_no_grub_are_left_alone() {
    let f = GrubFake::new();
    f.boot("maintenance:cmdline");
    f.editenv(&["set", "saved_entry=gnulinux-simple-x"]);
    f.run(&["off"], &[]).code(0);
    assert!(f.env_list().contains("saved_entry=gnulinux-simple-x\n"));
    assert!(!f.problems().contains("GRUB"));
    // A corrupt grubenv is reported by status, and does not stop umm off.
    let f = GrubFake::new();
    f.boot("maintenance:cmdline");
    fs::write(f.grubenv(), "garbage").unwrap();
    assert!(
        f.problems().contains("grubenv is corrupt"),
        "{}",
        f.problems()
    );
    f.run(&["off"], &[]).code(0);
}
