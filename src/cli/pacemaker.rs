//! `[pacemaker]` for `umm on`/`umm off`: where a Pacemaker/corosync cluster
//! runs on the node, `umm on` puts the node in Pacemaker **standby** and
//! waits until its resources run elsewhere before the reboot into
//! maintenance mode, so the HA peers see a node that was taken out of
//! service, not a failed one (docs/pacemaker.md). After `umm off` (and `umm
//! off reboot`) `umm boot coordination-leave` (umm-coordination.service,
//! restarted until it succeeds) takes the node out of standby once its
//! pacemaker is back in the cluster. Pacemaker's own CLI does the work
//! (crm_mon, crm_node, crm_attribute), each call bounded by a timeout.

use super::CliError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use umm_core::config::Loaded;
use umm_core::fsutil;
use umm_core::paths::Root;
use umm_core::tasks;

pub const CRM_MON: &str = "/usr/sbin/crm_mon";
pub const CRM_NODE: &str = "/usr/sbin/crm_node";
pub const CRM_ATTRIBUTE: &str = "/usr/sbin/crm_attribute";
/// Written by `umm on` once it set the standby (its content: `node=NAME`);
/// removed when the standby is taken away again.
pub const STANDBY_NOTE: &str = "pacemaker-standby";
/// One crm_* call; crm_mon answers in well under a second on a live cluster.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// crm_mon's exit status when it cannot reach the cluster (CRM_EX_UNAVAILABLE:
/// pacemaker is not running on this node).
const CRM_EX_UNAVAILABLE: i32 = 69;
const CRM_EX_NOT_CONNECTED: i32 = 102;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enabled {
    /// Act when pacemaker runs on this node (its CLI is installed and answers).
    Auto,
    Yes,
    No,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutQuorum {
    Refuse,
    Proceed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacemakerConfig {
    pub enabled: Enabled,
    /// How long `umm on` waits for the node's resources to stop here.
    pub timeout: Duration,
    pub without_quorum: WithoutQuorum,
}

impl Default for PacemakerConfig {
    fn default() -> Self {
        PacemakerConfig {
            enabled: Enabled::Auto,
            timeout: Duration::from_secs(120),
            without_quorum: WithoutQuorum::Refuse,
        }
    }
}

impl PacemakerConfig {
    /// The table's keys over the defaults (an absent table: the defaults).
    pub fn from_table(t: Option<&toml::Table>) -> Result<PacemakerConfig, String> {
        let mut c = PacemakerConfig::default();
        for (k, v) in t.into_iter().flatten() {
            let bad =
                |want: &str| format!("[pacemaker] {k}: expected {want}, got {}", v.type_str());
            match k.as_str() {
                "enabled" => {
                    c.enabled = match (v.as_bool(), v.as_str()) {
                        (Some(true), _) => Enabled::Yes,
                        (Some(false), _) => Enabled::No,
                        (_, Some("auto")) => Enabled::Auto,
                        _ => return Err(bad("true, false or \"auto\"")),
                    }
                }
                "timeout" => {
                    c.timeout = umm_core::duration::parse(
                        v.as_str().ok_or_else(|| bad("a duration like \"120s\""))?,
                    )
                    .map_err(|e| format!("[pacemaker] timeout: {e}"))?
                }
                "without_quorum" => {
                    c.without_quorum = match v.as_str() {
                        Some("refuse") => WithoutQuorum::Refuse,
                        Some("proceed") => WithoutQuorum::Proceed,
                        _ => return Err(bad("\"refuse\" or \"proceed\"")),
                    }
                }
                _ => return Err(format!("[pacemaker]: unknown key {k:?}")),
            }
        }
        Ok(c)
    }
}

fn config(loaded: &Loaded) -> Result<PacemakerConfig, CliError> {
    PacemakerConfig::from_table(loaded.config.pacemaker.as_ref()).map_err(|e| {
        CliError::failed(format!(
            "{e} (in {}); fix it, or set enabled = false in [pacemaker]; nothing changed",
            loaded.origin("pacemaker")
        ))
    })
}

/// A crm_* call that must succeed: its stdout, or what went wrong.
fn crm(tool: &str, args: &[&str]) -> Result<String, String> {
    let shown = format!("{tool} {}", args.join(" "));
    let out = tasks::run_program(Path::new(tool), args, CALL_TIMEOUT)
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    match out.status {
        None => Err(format!("{shown} did not answer in {CALL_TIMEOUT:?}")),
        Some(st) if st.success() => Ok(out.stdout),
        Some(st) => Err(format!(
            "{shown} failed ({st}): {}",
            out.stderr.trim().lines().last().unwrap_or("no message")
        )),
    }
}

/// The attributes of the first `<tag …>` element of `xml` whose attributes
/// satisfy `pick`. crm_mon's XML is generated (attributes in double quotes,
/// `&quot;`-escaped), so this scan is enough for the few values read here.
fn element(
    xml: &str,
    tag: &str,
    pick: impl Fn(&[(String, String)]) -> bool,
) -> Option<Vec<(String, String)>> {
    let open = format!("<{tag} ");
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let end = body.find('>').unwrap_or(body.len());
        let mut attrs = Vec::new();
        let mut s = &body[..end];
        while let Some(eq) = s.find("=\"") {
            let name = s[..eq].trim().to_string();
            let after = &s[eq + 2..];
            let close = after.find('"').unwrap_or(after.len());
            attrs.push((
                name,
                after[..close].replace("&quot;", "\"").replace("&amp;", "&"),
            ));
            s = after.get(close + 1..).unwrap_or("");
        }
        if pick(&attrs) {
            return Some(attrs);
        }
        rest = &body[end..];
    }
    None
}

fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The cluster as this node's pacemaker sees it (crm_mon --output-as=xml).
struct Cluster {
    xml: String,
}

impl Cluster {
    /// `Ok(None)`: pacemaker does not run on this node.
    fn query() -> Result<Option<Cluster>, String> {
        let args = ["--one-shot", "--output-as=xml"];
        let out = tasks::run_program(Path::new(CRM_MON), &args, CALL_TIMEOUT)
            .map_err(|e| format!("cannot run {CRM_MON}: {e}"))?;
        match out.status.map(|s| s.code()) {
            None => Err(format!("{CRM_MON} did not answer in {CALL_TIMEOUT:?}")),
            // crm_mon exits 0 with only an <errors> list when it reaches
            // pacemakerd but not the CIB.
            Some(Some(0)) if out.stdout.contains("<nodes>") => {
                Ok(Some(Cluster { xml: out.stdout }))
            }
            Some(Some(0)) => Err(format!(
                "{CRM_MON} --one-shot listed no nodes: {}",
                out.stdout
                    .split("<error>")
                    .nth(1)
                    .and_then(|e| e.split("</error>").next())
                    .unwrap_or("no error given")
            )),
            Some(Some(CRM_EX_UNAVAILABLE | CRM_EX_NOT_CONNECTED)) => Ok(None),
            Some(c) => Err(format!(
                "{CRM_MON} --one-shot failed ({c:?}): {}",
                out.stderr.trim().lines().last().unwrap_or("no message")
            )),
        }
    }

    fn quorate(&self) -> bool {
        element(&self.xml, "current_dc", |_| true).is_some_and(|a| {
            attr(&a, "present") == Some("true") && attr(&a, "with_quorum") == Some("true")
        })
    }

    fn node(&self, name: &str) -> Option<Vec<(String, String)>> {
        element(&self.xml, "node", |a| {
            attr(a, "name") == Some(name) && attr(a, "id").is_some()
        })
    }

    /// Resources still active on `name` (crm_mon's `resources_running`).
    fn running_on(&self, name: &str) -> Option<u64> {
        self.node(name)?
            .iter()
            .find(|(k, _)| k == "resources_running")?
            .1
            .parse()
            .ok()
    }
}

fn node_name() -> Result<String, String> {
    let n = crm(CRM_NODE, &["-n"])?.trim().to_string();
    if n.is_empty() || n.chars().any(|c| c.is_control() || c == '"') {
        return Err(format!("{CRM_NODE} -n gave no usable node name"));
    }
    Ok(n)
}

fn note_path(root: &Root, loaded: &Loaded) -> PathBuf {
    root.path(loaded.config.state_dir.join(STANDBY_NOTE))
}

fn standby(node: &str, on: bool) -> Result<(), String> {
    let mut args = vec!["--node", node, "--name", "standby", "--lifetime", "forever"];
    args.extend(if on {
        ["--update", "on"].as_slice()
    } else {
        ["--delete"].as_slice()
    });
    crm(CRM_ATTRIBUTE, &args).map(|_| ())
}

fn standby_is_on(node: &str) -> Result<bool, String> {
    let args = [
        "--node",
        node,
        "--name",
        "standby",
        "--lifetime",
        "forever",
        "--query",
        "--quiet",
    ];
    let out = tasks::run_program(Path::new(CRM_ATTRIBUTE), &args, CALL_TIMEOUT)
        .map_err(|e| format!("cannot run {CRM_ATTRIBUTE}: {e}"))?;
    match out.status {
        None => Err(format!(
            "{CRM_ATTRIBUTE} --query did not answer in {CALL_TIMEOUT:?}"
        )),
        // No such attribute: exit status 105 (CRM_EX_NOSUCH), no standby.
        Some(st) if !st.success() => Ok(false),
        Some(_) => Ok(matches!(out.stdout.trim(), "on" | "true" | "yes" | "1")),
    }
}

/// `umm on`, after the pre-on hooks and before anything is saved: standby,
/// and wait until this node runs no resource. Every failure undoes the
/// standby it set: nothing changed.
pub fn enter(root: &Root, loaded: &Loaded) -> Result<(), CliError> {
    let cfg = config(loaded)?;
    let fail = |e: String| {
        CliError::refused(format!(
            "[pacemaker]: {e}; nothing changed. Fix the cluster and retry, or set enabled = false in [pacemaker] to enter maintenance mode without Pacemaker standby"
        ))
    };
    if cfg.enabled == Enabled::No {
        return Ok(());
    }
    if !Path::new(CRM_MON).exists() {
        if cfg.enabled == Enabled::Yes {
            return Err(fail(format!(
                "enabled = true, but {CRM_MON} is not installed"
            )));
        }
        return Ok(());
    }
    let cluster =
        match Cluster::query().map_err(fail)? {
            Some(c) => c,
            None if cfg.enabled == Enabled::Auto => {
                crate::outln!(
                    "[pacemaker]: pacemaker is installed but does not run on this node; no standby"
                );
                return Ok(());
            }
            None => return Err(fail(
                "enabled = true, but pacemaker does not run on this node (crm_mon cannot connect)"
                    .into(),
            )),
        };
    let node = node_name().map_err(fail)?;
    if !cluster.quorate() {
        match cfg.without_quorum {
            WithoutQuorum::Refuse => {
                return Err(fail(format!(
                    "the cluster partition of {node} has no quorum (crm_mon: no DC with quorum), so standby could not move its resources to a quorate partition. Bring the other nodes back, or set without_quorum = \"proceed\""
                )))
            }
            WithoutQuorum::Proceed => {
                crate::outln!("[pacemaker]: the partition of {node} has no quorum; going on (without_quorum = \"proceed\")")
            }
        }
    }
    if standby_is_on(&node).map_err(fail)? {
        crate::outln!(
            "[pacemaker]: {node} is already in standby (set by someone else: left as it is)"
        );
        return Ok(());
    }
    let note = note_path(root, loaded);
    fsutil::write_atomic(&note, format!("node={node}\n").as_bytes(), 0o644)
        .map_err(|e| fail(format!("cannot write {}: {e}", note.display())))?;
    if let Err(e) = standby(&node, true).and_then(|()| wait_resources_gone(&node, cfg.timeout)) {
        return Err(match undo_standby(&node, &note) {
            Ok(()) => fail(format!("{e}; the standby is undone")),
            Err(u) => CliError::failed(format!(
                "[pacemaker]: {e}; undoing the standby failed too ({u}): run 'crm_attribute --node {node} --name standby --delete'. No maintenance mode was requested"
            )),
        });
    }
    crate::outln!("[pacemaker]: {node} is in standby; its resources run elsewhere");
    Ok(())
}

fn wait_resources_gone(node: &str, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    let deadline = umm_core::duration::deadline(start, timeout);
    loop {
        let running = Cluster::query()?
            .ok_or("pacemaker stopped answering on this node")?
            .running_on(node);
        if running == Some(0) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} resource(s) still active on {node} after {timeout:?} (timeout in [pacemaker])",
                running.map_or("some".to_string(), |n| n.to_string())
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Takes away the standby `umm on` set (called when entering failed, or
/// after a cancelled request).
fn undo_standby(node: &str, note: &Path) -> Result<(), String> {
    standby(node, false)?;
    std::fs::remove_file(note).map_err(|e| format!("cannot remove {}: {e}", note.display()))
}

/// Someone is asked to take the standby away (`umm off`).
pub fn standby_pending(root: &Root, loaded: &Loaded) -> bool {
    note_path(root, loaded).exists()
}

/// `umm off` of a request whose reboot never happened: pacemaker runs, so
/// the standby is taken away now.
pub fn leave_now(root: &Root, loaded: &Loaded) {
    match leave(root, loaded) {
        Ok(Some(node)) => crate::outln!("[pacemaker]: {node} is out of standby"),
        Ok(None) => {}
        Err(e) => crate::errln!(
            "umm: [pacemaker]: {e}; the node stays in standby: run 'systemctl restart umm-coordination.service' to retry"
        ),
    }
}

/// After `umm off` (in normal operation only): once this node's pacemaker
/// is back in the cluster, take away the standby `umm on` set. `Ok(None)`:
/// nothing to do. An error makes umm-coordination.service fail and retry.
pub fn leave(root: &Root, loaded: &Loaded) -> Result<Option<String>, String> {
    let note = note_path(root, loaded);
    let abs = loaded.config.state_dir.join(STANDBY_NOTE);
    let text = match umm_core::fsutil::read_text(root, &abs, &umm_core::fsutil::Policy::STATE) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(None),
        Err(e) => return Err(format!("the standby note: {e}")),
    };
    let Some(node) = text
        .lines()
        .find_map(|l| l.strip_prefix("node="))
        .map(str::to_string)
    else {
        let _ = std::fs::remove_file(&note);
        return Err(format!(
            "{} has no node=: removed; check the node's standby with crm_mon",
            note.display()
        ));
    };
    let cluster = Cluster::query()?.ok_or_else(|| {
        format!("pacemaker does not run (yet); {node} stays in standby until it does")
    })?;
    let online = cluster
        .node(&node)
        .is_some_and(|a| attr(&a, "online") == Some("true"));
    if !online || !cluster.quorate() {
        return Err(format!(
            "{node} is not back in a quorate cluster yet (crm_mon: online {online}, quorum {}); it stays in standby until it is",
            cluster.quorate()
        ));
    }
    undo_standby(&node, &note)?;
    if standby_is_on(&node)? {
        return Err(format!(
            "{node} still shows standby after crm_attribute --delete"
        ));
    }
    Ok(Some(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(s: &str) -> toml::Table {
        s.parse().unwrap()
    }

    #[test]
    fn keys_and_errors() {
        let c = PacemakerConfig::from_table(Some(&table(
            "enabled = true\ntimeout = \"5min\"\nwithout_quorum = \"proceed\"",
        )))
        .unwrap();
        assert_eq!(c.enabled, Enabled::Yes);
        assert_eq!(c.timeout, Duration::from_secs(300));
        assert_eq!(c.without_quorum, WithoutQuorum::Proceed);
        assert_eq!(
            PacemakerConfig::from_table(None).unwrap(),
            PacemakerConfig::default()
        );
        for bad in [
            "enabled = \"yes\"",
            "timeout = 5",
            "without_quorum = \"ignore\"",
            "node = \"x\"",
        ] {
            let e = PacemakerConfig::from_table(Some(&table(bad))).unwrap_err();
            assert!(e.starts_with("[pacemaker]"), "{bad}: {e}");
        }
    }

    #[test]
    fn reads_crm_mons_xml() {
        let xml = r#"<pacemaker-result api-version="2.30" request="crm_mon --one-shot --output-as=xml">
  <summary>
    <current_dc present="true" version="2.1.5" name="pm2" id="2" with_quorum="true" mixed_version="false"/>
  </summary>
  <nodes>
    <node name="pm1" id="1" online="true" standby="true" standby_onfail="false" maintenance="false" pending="false" unclean="false" resources_running="1" type="member"/>
    <node name="pm2" id="2" online="true" standby="false" resources_running="0" type="member"/>
  </nodes>
  <resources>
    <resource id="dummy" resource_agent="ocf:pacemaker:Dummy" role="Started" active="true" nodes_running_on="1">
      <node name="pm1" id="1" cached="true"/>
    </resource>
  </resources>
</pacemaker-result>"#;
        let c = Cluster { xml: xml.into() };
        assert!(c.quorate());
        assert_eq!(c.running_on("pm1"), Some(1));
        assert_eq!(c.running_on("pm2"), Some(0));
        assert_eq!(c.running_on("pm3"), None);
        let c = Cluster {
            xml: xml.replace("with_quorum=\"true\"", "with_quorum=\"false\""),
        };
        assert!(!c.quorate());
    }
}
