//! The man page (docs/umm.8.md) and the JSON schema (docs/status-json.md)
//! cover what the binary really offers: every subcommand and option in
//! `--help`, every exit status, the test-only variables, every JSON field.

use serde_json::Value;
use std::fs;
use std::process::Command;
use umm_testsupport::{help_subcommands as subcommands, long_options};

const BIN: &str = env!("CARGO_BIN_EXE_umm");

fn doc(name: &str) -> String {
    fs::read_to_string(format!("{}/docs/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn help(args: &[&str]) -> String {
    let o = Command::new(BIN).args(args).arg("--help").output().unwrap();
    assert!(o.status.success());
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn every_subcommand_and_option_is_in_the_man_page() {
    let man = doc("umm.8.md");
    for section in [
        "## NAME",
        "## SYNOPSIS",
        "## DESCRIPTION",
        "## COMMANDS",
        "## OPTIONS",
        "## FILES",
        "## ENVIRONMENT",
        "## EXIT STATUS",
        "## EXAMPLES",
        "## SEE ALSO",
    ] {
        assert!(man.contains(section), "umm.8.md lacks {section}");
    }
    let cmds = subcommands(&help(&[]));
    assert_eq!(cmds, ["status", "on", "off", "enable", "disable", "host"]);
    for c in &cmds {
        assert!(
            man.contains(&format!("`umm {c}")),
            "umm.8.md lacks `umm {c}`"
        );
        for opt in long_options(&help(&[c])) {
            assert!(
                man.contains(&format!("`{opt}")),
                "umm.8.md lacks {opt} of umm {c}"
            );
        }
    }
    assert!(man.contains("`umm off reboot"));
    for mode in ["normal", "entering", "maintenance", "resumed", "disabled"] {
        assert!(man.contains(&format!("| `{mode}` |")), "mode {mode}");
    }
    assert!(man.contains("3-controller cluster") && man.contains("quorum"));
}

#[test]
fn exit_statuses_and_test_variables_are_documented() {
    let man = doc("umm.8.md");
    let exit = &man[man.find("## EXIT STATUS").unwrap()..];
    for code in [0, 1, 2, 3, 4, umm::cli::Exit::Internal as i32] {
        assert!(exit.contains(&format!("| {code} |")), "exit status {code}");
    }
    for v in [
        "UMM_ROOT",
        "UMM_FAKE_REBOOT",
        "UMM_FAKE_SYSTEMD",
        "UMM_FAKE_SYSTEMD_DEFAULT",
        "UMM_FAKE_SYSTEMD_RESULT",
        "UMM_FAKE_SYSTEMD_FAILED",
        "UMM_TRANSITION",
        "UMM_REASON",
        "UMM_FAKE_PANIC",
        umm_core::tasks::ENV_TASK_PATH,
    ] {
        assert!(man.contains(&format!("`{v}")), "umm.8.md lacks {v}");
    }
}

/// Every key of a full status (request, command result, history, problems)
/// is listed in docs/status-json.md.
#[test]
fn every_json_field_is_documented() {
    let root = umm_testsupport::FakeRoot::new();
    root.write(
        "var/lib/umm/state",
        "version = 1\n[request]\nrequested_at = 7\nrequested_by = \"root\"\ncommand = [\"true\"]\n\
         [command_result]\nrequest = 7\ncommand = [\"true\"]\nstarted = 8\nfinished = 9\nexit_status = 0\noutput_file = \"/var/lib/umm/command.out\"\n\
         [[history]]\ntime = 1\nfrom = \"unknown\"\nto = \"normal\"\nreason = \"boot\"\n",
    );
    let o = Command::new(BIN)
        .args(["status", "--json"])
        .env("UMM_ROOT", root.path())
        .output()
        .unwrap();
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    let doc = doc("status-json.md");
    let mut keys = Vec::new();
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let name = format!("{prefix}{k}");
                    out.push(name.clone());
                    walk(&format!("{name}."), v, out);
                }
            }
            Value::Array(a) => {
                if let Some(first) = a.first() {
                    walk(&format!("{}[].", prefix.trim_end_matches('.')), first, out);
                }
            }
            _ => {}
        }
    }
    walk("", &j, &mut keys);
    assert!(keys.contains(&"command_result.exit_status".to_string()));
    assert!(keys.contains(&"problems[].level".to_string()), "{keys:?}");
    for k in keys {
        assert!(
            doc.contains(&format!("| `{k}` |")),
            "docs/status-json.md lacks `{k}`"
        );
    }
}
