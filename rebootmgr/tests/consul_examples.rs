//! The shipped examples for the seed's constraints stay valid: Consul accepts
//! the service definitions, rebootmgr reads their tags as intended, and the
//! scripts are syntactically valid shell.

use umm_testsupport as support;

use std::path::PathBuf;
use std::process::Command;
use umm_coord::health::Rules;

fn examples() -> PathBuf {
    umm_testsupport::repo().join("examples/rebootmgr")
}

fn service_defs() -> Vec<(String, serde_json::Value)> {
    let mut v: Vec<_> = std::fs::read_dir(examples().join("consul.d"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            (
                name,
                serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
            )
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn consul_accepts_the_service_definitions() {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(examples().join("consul.d")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    std::fs::write(
        dir.path().join("agent.json"),
        r#"{"data_dir": "/tmp/unused", "bind_addr": "127.0.0.1", "enable_local_script_checks": true}"#,
    )
    .unwrap();
    let out = Command::new(support::consul_bin())
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "consul validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tags_express_the_constraints() {
    let defs = service_defs();
    let rules = |name: &str| {
        let (_, v) = defs
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("{name}.json missing"));
        let tags: Vec<String> = v["service"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        assert!(
            tags.iter().any(|t| t == "rebootmgr"),
            "{name} not tagged rebootmgr"
        );
        let script = v["service"]["check"]["args"][0].as_str().unwrap();
        let local = examples()
            .join("checks")
            .join(script.rsplit('/').next().unwrap());
        assert!(
            local.exists(),
            "{name}: check script {} not shipped",
            local.display()
        );
        Rules::from_tags(&tags).unwrap()
    };
    assert_eq!(rules("gateway").min_passing, Some(2));
    assert_eq!(rules("controller").min_passing, Some(3));
    for all_must_pass in ["galera", "zookeeper", "cassandra", "rabbitmq", "storage"] {
        assert_eq!(rules(all_must_pass), Rules::default(), "{all_must_pass}");
    }
    assert!(rules("dkms").local_only);
    assert!(rules("package-update").local_only);
}

#[test]
fn scripts_parse_and_are_executable() {
    use std::os::unix::fs::PermissionsExt;
    for dir in ["checks", "pre_boot_tasks", "post_boot_tasks"] {
        for e in std::fs::read_dir(examples().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert!(
                mode & 0o111 != 0 && mode & 0o022 == 0,
                "{}: mode {mode:o}",
                p.display()
            );
            let st = Command::new("sh").arg("-n").arg(&p).status().unwrap();
            assert!(st.success(), "sh -n {}", p.display());
        }
    }
}
