//! OpenStack credentials: the `OS_*` environment, or a cloud of a
//! `clouds.yaml` (openstacksdk's convention; docs/compute-host.md "Nova
//! connection"). The file is read through `umm_core::fsutil` with the config
//! trust rule (root-owned, not writable by group or others, nor any directory
//! above it: it holds a password), and its errors never echo its text.

use crate::nova::Auth;
use std::path::{Path, PathBuf};
use umm_core::fsutil::{self, Policy};
use umm_core::paths::Root;
use yaml_rust2::{Yaml, YamlLoader};

/// Where `clouds.yaml` is looked for, in order, unless `OS_CLIENT_CONFIG_FILE`
/// names one. Not the current directory (openstacksdk's first place): root's
/// current directory is wherever it happens to be.
pub fn standard_paths() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        v.push(PathBuf::from(home).join(".config/openstack/clouds.yaml"));
    }
    v.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    v
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|s| !s.is_empty())
}

/// The credentials to use: with `OS_CLOUD` set, or with neither `OS_TOKEN`
/// nor `OS_PASSWORD` in the environment, a cloud of the first `clouds.yaml`
/// found (`OS_CLOUD`, or its only cloud); the environment's `OS_*` values
/// fill what the cloud does not set. Otherwise the environment alone.
pub fn auth(root: &Root) -> Result<Auth, String> {
    let from_env = Auth::from_env();
    let cloud = env("OS_CLOUD");
    if cloud.is_none() && (from_env.token.is_some() || from_env.password.is_some()) {
        return Ok(from_env);
    }
    let (froot, paths) = match env("OS_CLIENT_CONFIG_FILE") {
        // named in the environment: a path of the running system, not under UMM_ROOT
        Some(p) => (Root::default(), vec![PathBuf::from(p)]),
        None => (root.clone(), standard_paths()),
    };
    for p in &paths {
        let text = fsutil::read_text(&froot, p, &Policy::CONFIG)
            .map_err(|e| format!("cannot read the OpenStack credentials: {e}"))?;
        if let Some(text) = text {
            let auth = parse(&text, cloud.as_deref(), p)?;
            return Ok(merge(auth, from_env));
        }
    }
    match cloud {
        Some(c) => Err(format!(
            "OS_CLOUD={c} but there is no clouds.yaml ({}): create one, or unset OS_CLOUD and \
             give OS_TOKEN + OS_ENDPOINT or OS_AUTH_URL, OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        None => Ok(from_env),
    }
}

/// The cloud's settings, the environment's where the cloud has none. A domain (name or
/// id), and the project (name or id), are taken whole from one side: a cloud's
/// `user_domain_name` is never paired with the environment's `OS_USER_DOMAIN_ID`.
fn merge(c: Auth, e: Auth) -> Auth {
    let (user_domain, user_domain_id) = if c.user_domain.is_some() || c.user_domain_id.is_some() {
        (c.user_domain, c.user_domain_id)
    } else {
        (e.user_domain, e.user_domain_id)
    };
    let (project_name, project_id) = if c.project_name.is_some() || c.project_id.is_some() {
        (c.project_name, c.project_id)
    } else {
        (e.project_name, e.project_id)
    };
    let (project_domain, project_domain_id) =
        if c.project_domain.is_some() || c.project_domain_id.is_some() {
            (c.project_domain, c.project_domain_id)
        } else {
            (e.project_domain, e.project_domain_id)
        };
    Auth {
        endpoint: c.endpoint.or(e.endpoint),
        token: c.token.or(e.token),
        auth_url: c.auth_url.or(e.auth_url),
        username: c.username.or(e.username),
        password: c.password.or(e.password),
        project_name,
        project_id,
        user_domain,
        project_domain,
        user_domain_id,
        project_domain_id,
        region: c.region.or(e.region),
        interface: c.interface.or(e.interface),
        placement: c.placement.or(e.placement),
        masakari: c.masakari.or(e.masakari),
    }
}

fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) if !s.is_empty() => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

/// One cloud of a clouds.yaml text (`cloud`, or the only one). Errors name
/// the file and the cloud, never a value.
pub fn parse(yaml: &str, cloud: Option<&str>, path: &Path) -> Result<Auth, String> {
    let docs = YamlLoader::load_from_str(yaml).map_err(|e| {
        format!(
            "{}: not valid YAML (line {}, column {}); fix the file",
            path.display(),
            e.marker().line(),
            e.marker().col() + 1
        )
    })?;
    let clouds = docs
        .first()
        .map(|d| &d["clouds"])
        .and_then(Yaml::as_hash)
        .ok_or_else(|| format!("{}: no 'clouds:' mapping", path.display()))?;
    let names: Vec<String> = clouds.keys().filter_map(text).collect();
    let (name, c) = match cloud {
        Some(n) => (
            n.to_string(),
            clouds.get(&Yaml::String(n.to_string())).ok_or_else(|| {
                format!(
                    "{}: no cloud named {n:?} (OS_CLOUD); it has: {}",
                    path.display(),
                    names.join(", ")
                )
            })?,
        ),
        None if clouds.len() == 1 => {
            let (k, v) = clouds.iter().next().expect("one cloud");
            (text(k).unwrap_or_default(), v)
        }
        None => {
            return Err(format!(
                "{}: {} clouds ({}): set OS_CLOUD to the one to use",
                path.display(),
                clouds.len(),
                names.join(", ")
            ))
        }
    };
    if c.as_hash().is_none() {
        return Err(format!(
            "{}: cloud {name:?} is not a mapping",
            path.display()
        ));
    }
    let a = &c["auth"];
    let kind = text(&c["auth_type"]).unwrap_or_else(|| "password".into());
    let token_kind = matches!(kind.as_str(), "token" | "admin_token" | "v3token");
    if !token_kind && !matches!(kind.as_str(), "password" | "v3password") {
        return Err(format!(
            "{}: cloud {name:?}: its auth_type is not supported (password, v3password, token, \
             admin_token)",
            path.display()
        ));
    }
    Ok(Auth {
        endpoint: text(&c["compute_endpoint_override"]).or_else(|| text(&a["endpoint"])),
        token: if token_kind { text(&a["token"]) } else { None },
        auth_url: text(&a["auth_url"]),
        username: text(&a["username"]),
        password: if token_kind {
            None
        } else {
            text(&a["password"])
        },
        project_name: text(&a["project_name"]),
        project_id: text(&a["project_id"]),
        user_domain: text(&a["user_domain_name"]).or_else(|| text(&a["domain_name"])),
        project_domain: text(&a["project_domain_name"]).or_else(|| text(&a["domain_name"])),
        user_domain_id: text(&a["user_domain_id"]).or_else(|| text(&a["domain_id"])),
        project_domain_id: text(&a["project_domain_id"]).or_else(|| text(&a["domain_id"])),
        region: text(&c["region_name"]),
        interface: text(&c["interface"]),
        placement: text(&c["placement_endpoint_override"]),
        masakari: text(&c["instance_ha_endpoint_override"]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const Y: &str = "
clouds:
  prod:
    auth:
      auth_url: https://keystone.example:5000/v3
      username: umm
      password: s3cret
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
  lab:
    auth_type: admin_token
    auth:
      endpoint: http://127.0.0.1:8774/v2.1
      token: admin:admin
    placement_endpoint_override: http://127.0.0.1:8778
";

    #[test]
    fn password_and_token_clouds() {
        let p = Path::new("/etc/openstack/clouds.yaml");
        let a = parse(Y, Some("prod"), p).unwrap();
        assert_eq!(a.password.as_deref(), Some("s3cret"));
        assert_eq!(
            a.auth_url.as_deref(),
            Some("https://keystone.example:5000/v3")
        );
        assert_eq!(a.region.as_deref(), Some("RegionOne"));
        assert_eq!(a.interface.as_deref(), Some("internal"));
        assert!(a.token.is_none());
        let l = parse(Y, Some("lab"), p).unwrap();
        assert_eq!(l.token.as_deref(), Some("admin:admin"));
        assert_eq!(l.endpoint.as_deref(), Some("http://127.0.0.1:8774/v2.1"));
        assert_eq!(l.placement.as_deref(), Some("http://127.0.0.1:8778"));
        assert!(l.password.is_none());
    }

    #[test]
    fn which_cloud_and_errors_never_echo_values() {
        let p = Path::new("/etc/openstack/clouds.yaml");
        let e = parse(Y, None, p).unwrap_err();
        assert!(e.contains("set OS_CLOUD") && e.contains("prod, lab"), "{e}");
        let e = parse(Y, Some("nope"), p).unwrap_err();
        assert!(e.contains("no cloud named \"nope\""), "{e}");
        let one =
            "clouds:\n  only:\n    auth_type: token\n    auth: {token: t, endpoint: http://x}\n";
        assert_eq!(parse(one, None, p).unwrap().token.as_deref(), Some("t"));
        let e = parse("clouds: [password: s3cret\n", None, p).unwrap_err();
        assert!(
            e.contains("not valid YAML (line") && !e.contains("s3cret"),
            "{e}"
        );
        let e = parse("clouds:\n  x:\n    auth_type: s3cret-kind\n", None, p).unwrap_err();
        assert!(e.contains("not supported") && !e.contains("s3cret"), "{e}");
        assert!(parse("x: 1\n", None, p)
            .unwrap_err()
            .contains("no 'clouds:'"));
    }

    #[test]
    fn domain_and_project_ids_and_merge() {
        let p = Path::new("/etc/openstack/clouds.yaml");
        let y = "clouds:\n  c:\n    auth: {auth_url: http://k/v3, username: u, password: p, \
                 project_id: 0123abcd, user_domain_id: dom1}\n";
        let c = parse(y, None, p).unwrap();
        assert_eq!(c.project_id.as_deref(), Some("0123abcd"));
        assert_eq!(c.user_domain_id.as_deref(), Some("dom1"));
        let env = Auth {
            project_name: Some("envproj".into()),
            project_domain_id: Some("default".into()),
            user_domain: Some("EnvDomain".into()),
            region: Some("RegionTwo".into()),
            ..Auth::default()
        };
        let m = merge(c, env);
        // the cloud's project and user domain, whole; the rest from the environment
        assert_eq!(m.project_id.as_deref(), Some("0123abcd"));
        assert_eq!(m.project_name, None);
        assert_eq!(m.user_domain_id.as_deref(), Some("dom1"));
        assert_eq!(m.user_domain, None);
        assert_eq!(m.project_domain_id.as_deref(), Some("default"));
        assert_eq!(m.region.as_deref(), Some("RegionTwo"));
    }
}
