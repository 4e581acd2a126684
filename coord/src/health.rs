//! Cluster health as rebootmgr sees it: the services on this node tagged
//! `rebootmgr` (plus the phase tag), every instance of them cluster-wide, and
//! every Consul member alive. The rules are a pure function so they are
//! tested without Consul; `check_*` fetch and apply them.

use crate::consul::{Consul, ConsulError, RaftServer, ServiceInstance, NODE_MAINTENANCE_CHECK};
use std::collections::BTreeMap;

/// One reason the cluster cannot lose this node now, structured for
/// `rebootmgr status --json` (docs/rebootmgr-status-json.md); `message` is
/// the text the run prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    /// `check` (a failing check of an instance), `min_passing`,
    /// `max_failing`, `quorum` (a `quorum=N` service), `bad_tag`, `member`
    /// (a Consul member failed or leaving), `consul_quorum` (Consul's Raft).
    pub kind: &'static str,
    pub service: Option<String>,
    pub node: Option<String>,
    /// The check's id (`kind` `check` only).
    pub check: Option<String>,
    /// The check's status (`kind` `check` only).
    pub status: Option<String>,
    pub message: String,
}

impl Blocker {
    fn new(kind: &'static str, service: Option<&str>, message: String) -> Blocker {
        Blocker {
            kind,
            service: service.map(str::to_string),
            node: None,
            check: None,
            status: None,
            message,
        }
    }
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn messages(b: Vec<Blocker>) -> Vec<String> {
    b.into_iter().map(|b| b.message).collect()
}

/// Per-service rules, from the tags of the service on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    pub min_passing: Option<usize>,
    pub max_failing: Option<usize>,
    pub ignore_maintenance: bool,
    /// `local_only`: only this node's own instance counts (node-local
    /// conditions like `dkms status` or a running package update).
    pub local_only: bool,
    /// `quorum=N`: the service is a majority-quorum cluster of N members
    /// (galera, zookeeper, etcd, rabbitmq quorum queues). This node may go
    /// down only if its peers' passing instances still make a majority of N.
    /// An extra rule: the count tags (or "every instance passes") still apply.
    pub quorum: Option<usize>,
    /// Nodes whose failing checks are ignored (the Python tool's whitelist,
    /// `service/rebootmgr/ignore_failed_checks`); not read from tags. Never
    /// for `quorum=N`: a whitelisted member that is down is still missing
    /// from the majority.
    pub ignore_nodes: Vec<String>,
}

impl Rules {
    /// Unparseable numbers are reported, never silently ignored: a typo in
    /// `min_passing=` must not make a single gateway rebootable.
    pub fn from_tags(tags: &[String]) -> Result<Rules, String> {
        let mut r = Rules::default();
        for t in tags {
            if t == "ignore_maintenance" {
                r.ignore_maintenance = true;
            } else if t == "local_only" {
                r.local_only = true;
            } else if let Some(n) = t.strip_prefix("min_passing=") {
                r.min_passing = Some(n.trim().parse().map_err(|_| format!("bad tag {t:?}"))?);
            } else if let Some(n) = t.strip_prefix("max_failing=") {
                r.max_failing = Some(n.trim().parse().map_err(|_| format!("bad tag {t:?}"))?);
            } else if let Some(n) = t.strip_prefix("quorum=") {
                match n.trim().parse() {
                    Ok(n) if n > 0 => r.quorum = Some(n),
                    _ => {
                        return Err(format!(
                            "bad tag {t:?}: quorum=N needs the cluster size N (a number >= 1)"
                        ))
                    }
                }
            }
        }
        Ok(r)
    }

    fn merge(&mut self, o: &Rules) {
        // Several local instances of one service: the strictest rule wins.
        self.ignore_maintenance &= o.ignore_maintenance;
        self.local_only &= o.local_only;
        self.min_passing = self.min_passing.max(o.min_passing);
        self.quorum = self.quorum.max(o.quorum);
        self.max_failing = match (self.max_failing, o.max_failing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Failing checks of one instance, as "check on node: status" (the
/// whitelist applied).
fn failing_checks(inst: &ServiceInstance, rules: &Rules, self_node: &str) -> Vec<Blocker> {
    if rules.ignore_nodes.contains(&inst.node) {
        return Vec::new();
    }
    failing_checks_of(inst, rules, self_node)
}

/// Failing checks of one instance, whitelist or not.
fn failing_checks_of(inst: &ServiceInstance, rules: &Rules, self_node: &str) -> Vec<Blocker> {
    // `ignore_maintenance` counts on this node's instance (rules) and, as in
    // the Python tool, on the instance of the node in maintenance.
    let ignore_maintenance =
        rules.ignore_maintenance || inst.tags.iter().any(|t| t == "ignore_maintenance");
    inst.checks
        .iter()
        .filter(|c| c.status != "passing")
        .filter(|c| {
            // Our own maintenance is the reboot (or umm) itself, never a reason
            // to block ourselves.
            !(c.check_id == NODE_MAINTENANCE_CHECK && (ignore_maintenance || c.node == self_node))
        })
        .map(|c| Blocker {
            kind: "check",
            service: Some(inst.service.clone()),
            node: Some(inst.node.clone()),
            check: Some(c.check_id.clone()),
            status: Some(c.status.clone()),
            message: format!("{} ({}) on {}: {}", c.name, c.check_id, inst.node, c.status),
        })
        .collect()
}

/// Blockers for one service: empty when healthy under `rules`.
/// Without count tags every instance must pass; with `min_passing=N` at least
/// N must pass, with `max_failing=N` at most N may fail (both when both).
pub fn evaluate(
    service: &str,
    rules: &Rules,
    instances: &[ServiceInstance],
    self_node: &str,
) -> Vec<String> {
    messages(evaluate_blockers(service, rules, instances, self_node))
}

/// [`evaluate`], structured.
pub fn evaluate_blockers(
    service: &str,
    rules: &Rules,
    instances: &[ServiceInstance],
    self_node: &str,
) -> Vec<Blocker> {
    let mut passing = 0;
    let mut failing = Vec::new();
    let instances: Vec<&ServiceInstance> = instances
        .iter()
        .filter(|i| !rules.local_only || i.node == self_node)
        .collect();
    for inst in &instances {
        let f = failing_checks(inst, rules, self_node);
        if f.is_empty() {
            passing += 1;
        } else {
            failing.extend(f);
        }
    }
    let failing_instances = instances.len() - passing;
    let listed = |failing: &[Blocker]| {
        failing
            .iter()
            .map(|b| b.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let svc = Some(service);
    let mut out = Vec::new();
    if let Some(size) = rules.quorum {
        let peers_passing = instances
            .iter()
            .filter(|i| i.node != self_node && failing_checks_of(i, rules, self_node).is_empty())
            .count();
        let majority = size / 2 + 1;
        if peers_passing < majority {
            out.push(Blocker::new("quorum", svc, format!(
                "service {service}: quorum={size} needs {majority} passing members while {self_node} is down, {peers_passing} of its peers pass{}",
                if failing.is_empty() { String::new() } else { format!(" ({})", listed(&failing)) }
            )));
        }
    }
    if rules.min_passing.is_none() && rules.max_failing.is_none() {
        out.extend(failing.into_iter().map(|mut b| {
            b.message = format!("service {service}: {}", b.message);
            b
        }));
        return out;
    }
    if let Some(min) = rules.min_passing {
        if passing < min {
            out.push(Blocker::new(
                "min_passing",
                svc,
                format!("service {service}: {passing} instance(s) passing, min_passing={min}"),
            ));
        }
    }
    if let Some(max) = rules.max_failing {
        if failing_instances > max {
            out.push(Blocker::new(
                "max_failing",
                svc,
                format!(
                    "service {service}: {failing_instances} instance(s) failing, max_failing={max} ({})",
                    listed(&failing)
                ),
            ));
        }
    }
    out
}

/// Services on `node` carrying any of `tags`, with their merged rules.
pub fn relevant_services(
    c: &Consul,
    node: &str,
    tags: &[&str],
) -> Result<BTreeMap<String, Result<Rules, String>>, ConsulError> {
    let mut out: BTreeMap<String, Result<Rules, String>> = BTreeMap::new();
    for s in c.node_services(node)? {
        if !s.tags.iter().any(|t| tags.contains(&t.as_str())) {
            continue;
        }
        let r = Rules::from_tags(&s.tags);
        match (out.get_mut(&s.service), r) {
            (Some(Ok(existing)), Ok(r)) => existing.merge(&r),
            (Some(_), Err(e)) => {
                out.insert(s.service.clone(), Err(e));
            }
            (Some(Err(_)), Ok(_)) => {}
            (None, r) => {
                out.insert(s.service.clone(), r);
            }
        }
    }
    Ok(out)
}

/// Blockers from the services relevant to `node` (empty = healthy).
pub fn check_services(c: &Consul, node: &str, tags: &[&str]) -> Result<Vec<String>, ConsulError> {
    check_services_ignoring(c, node, tags, &[])
}

/// [`check_services`], ignoring the failing checks of the nodes in
/// `ignore_nodes` (the whitelist).
pub fn check_services_ignoring(
    c: &Consul,
    node: &str,
    tags: &[&str],
    ignore_nodes: &[String],
) -> Result<Vec<String>, ConsulError> {
    service_blockers(c, node, tags, ignore_nodes).map(messages)
}

/// [`check_services_ignoring`], structured.
pub fn service_blockers(
    c: &Consul,
    node: &str,
    tags: &[&str],
    ignore_nodes: &[String],
) -> Result<Vec<Blocker>, ConsulError> {
    let mut out = Vec::new();
    for (service, rules) in relevant_services(c, node, tags)? {
        match rules {
            Ok(mut rules) => out.extend(evaluate_blockers(
                &service,
                {
                    rules.ignore_nodes = ignore_nodes.to_vec();
                    &rules
                },
                &c.service_health(&service)?,
                node,
            )),
            Err(e) => out.push(Blocker::new(
                "bad_tag",
                Some(&service),
                format!("service {service}: {e}"),
            )),
        }
    }
    Ok(out)
}

/// Only this node's own instances of its relevant services (umm's "my checks
/// pass again" before leaving maintenance).
pub fn check_own_services(
    c: &Consul,
    node: &str,
    tags: &[&str],
) -> Result<Vec<String>, ConsulError> {
    let mut out = Vec::new();
    for (service, rules) in relevant_services(c, node, tags)? {
        let rules = rules.unwrap_or_default();
        for inst in c
            .service_health(&service)?
            .iter()
            .filter(|i| i.node == node)
        {
            out.extend(
                failing_checks(inst, &rules, node)
                    .into_iter()
                    .map(|f| format!("service {service}: {f}")),
            );
        }
    }
    Ok(out)
}

/// Members that are neither alive nor cleanly left, but for those named in
/// `ignore` (the whitelist).
pub fn check_members(c: &Consul, ignore: &[String]) -> Result<Vec<String>, ConsulError> {
    member_blockers(c, ignore).map(messages)
}

/// [`check_members`], structured.
pub fn member_blockers(c: &Consul, ignore: &[String]) -> Result<Vec<Blocker>, ConsulError> {
    Ok(c.members()?
        .into_iter()
        .filter(|m| m.status != 1 && m.status != 3)
        .filter(|m| !ignore.contains(&m.name))
        .map(|m| {
            let st = match m.status {
                2 => "leaving",
                4 => "failed",
                _ => "not alive",
            };
            Blocker {
                node: Some(m.name.clone()),
                ..Blocker::new("member", None, format!("Consul member {} is {st}", m.name))
            }
        })
        .collect())
}

/// Consul's own quorum: may the cluster lose `node` now? Empty when it may.
///
/// A node that is not a voting server cannot cost the Raft quorum anything.
/// A voter may go down only if the other healthy voters still form a majority
/// of the voters in the Raft configuration. A server that died and was then
/// reaped by autopilot (`cleanup_dead_servers`; it shows `left` in the
/// members list) is no longer in the configuration, so the configuration is
/// smaller and the majority of it is just as strict: with 3 servers and one
/// reaped, the remaining 2 need both. A single-server cluster has no quorum
/// to keep (its KV is unavailable while it reboots whatever rebootmgr does):
/// nothing blocks there.
pub fn evaluate_quorum(servers: &[RaftServer], node: &str) -> Vec<String> {
    let voters: Vec<&RaftServer> = servers.iter().filter(|s| s.voter).collect();
    if voters.len() <= 1 || !voters.iter().any(|s| s.node == node) {
        return Vec::new();
    }
    let majority = voters.len() / 2 + 1;
    let healthy_peers: Vec<&str> = voters
        .iter()
        .filter(|s| s.healthy && s.node != node)
        .map(|s| s.node.as_str())
        .collect();
    if healthy_peers.len() >= majority {
        return Vec::new();
    }
    let unhealthy: Vec<&str> = voters
        .iter()
        .filter(|s| !s.healthy && s.node != node)
        .map(|s| s.node.as_str())
        .collect();
    vec![format!(
        "Consul quorum: {node} is one of {} voting servers; while it is down {} healthy peer(s) would remain ({}) and the Raft quorum needs {majority}{}",
        voters.len(),
        healthy_peers.len(),
        if healthy_peers.is_empty() { "none".to_string() } else { healthy_peers.join(", ") },
        if unhealthy.is_empty() {
            " (a server that went down and was removed by autopilot no longer counts)".to_string()
        } else {
            format!("; unhealthy: {}", unhealthy.join(", "))
        }
    )]
}

/// Blockers from Consul's own quorum (see [`evaluate_quorum`]).
pub fn check_quorum(c: &Consul, node: &str) -> Result<Vec<String>, ConsulError> {
    let mut config = c.raft_configuration()?;
    let voters = config.iter().filter(|s| s.voter).count();
    if voters > 1 && config.iter().any(|s| s.voter && s.node == node) {
        // A voter of a real cluster: who would stay healthy is autopilot's view.
        // (Otherwise there is nothing to ask autopilot.)
        let healthy = c.autopilot_healthy()?;
        for s in &mut config {
            s.healthy = healthy.contains(&s.node);
        }
    }
    Ok(evaluate_quorum(&config, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consul::Check;

    fn inst(node: &str, checks: &[(&str, &str)]) -> ServiceInstance {
        ServiceInstance {
            node: node.into(),
            service_id: "s".into(),
            service: "s".into(),
            tags: vec![],
            checks: checks
                .iter()
                .map(|(id, st)| Check {
                    node: node.into(),
                    check_id: (*id).into(),
                    name: (*id).into(),
                    status: (*st).into(),
                    service_id: String::new(),
                    output: String::new(),
                    notes: String::new(),
                })
                .collect(),
        }
    }

    fn tags(t: &[&str]) -> Rules {
        Rules::from_tags(&t.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn all_must_pass_by_default() {
        let ok = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "passing")]),
        ];
        assert!(evaluate("s", &Rules::default(), &ok, "a").is_empty());
        let bad = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "warning")]),
        ];
        let e = evaluate("s", &Rules::default(), &bad, "a");
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("on b: warning"), "{e:?}");
    }

    #[test]
    fn maintenance_counts_unless_ignored_or_our_own() {
        let m = [
            inst("a", &[]),
            inst("b", &[(NODE_MAINTENANCE_CHECK, "critical")]),
        ];
        assert_eq!(evaluate("s", &Rules::default(), &m, "a").len(), 1);
        assert!(evaluate("s", &tags(&["ignore_maintenance"]), &m, "a").is_empty());
        assert!(evaluate("s", &Rules::default(), &m, "b").is_empty());
        // As in the Python tool: the tag on the instance of the node in
        // maintenance counts too.
        let mut tagged = m.clone();
        tagged[1].tags = vec!["ignore_maintenance".into()];
        assert!(evaluate("s", &Rules::default(), &tagged, "a").is_empty());
        // Only the maintenance check: its other failing checks still block.
        tagged[1]
            .checks
            .extend(inst("b", &[("c", "critical")]).checks);
        assert_eq!(evaluate("s", &Rules::default(), &tagged, "a").len(), 1);
    }

    #[test]
    fn whitelisted_nodes_do_not_block_but_still_miss_from_a_quorum() {
        let v = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "critical")]),
            inst("c", &[("c", "passing")]),
        ];
        let mut r = Rules {
            ignore_nodes: vec!["b".into()],
            ..Default::default()
        };
        assert_eq!(evaluate("s", &Rules::default(), &v, "a").len(), 1);
        assert!(evaluate("s", &r, &v, "a").is_empty());
        r.max_failing = Some(0);
        assert!(evaluate("s", &r, &v, "a").is_empty());
        // quorum=3 with b down: a may not go, whitelist or not.
        r.quorum = Some(3);
        assert_eq!(evaluate("s", &r, &v, "a").len(), 1);
    }

    #[test]
    fn min_passing_and_max_failing() {
        let one = [inst("gw1", &[("c", "passing")])];
        assert_eq!(
            evaluate("gw", &tags(&["min_passing=2"]), &one, "gw1").len(),
            1
        );
        let two = [
            inst("gw1", &[("c", "passing")]),
            inst("gw2", &[("c", "passing")]),
        ];
        assert!(evaluate("gw", &tags(&["min_passing=2"]), &two, "gw1").is_empty());
        let three = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "passing")]),
            inst("c", &[("c", "critical")]),
        ];
        assert!(evaluate("s", &tags(&["max_failing=1"]), &three, "a").is_empty());
        assert_eq!(
            evaluate("s", &tags(&["max_failing=0"]), &three, "a").len(),
            1
        );
        assert_eq!(
            evaluate("s", &tags(&["min_passing=3"]), &three, "a").len(),
            1
        );
        assert!(evaluate("s", &tags(&["min_passing=2", "max_failing=1"]), &three, "a").is_empty());
    }

    #[test]
    fn local_only_looks_at_our_instance() {
        let v = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "critical")]),
        ];
        assert!(evaluate("s", &tags(&["local_only"]), &v, "a").is_empty());
        assert_eq!(evaluate("s", &tags(&["local_only"]), &v, "b").len(), 1);
    }

    #[test]
    fn bad_count_tag_is_an_error() {
        assert!(Rules::from_tags(&["min_passing=two".to_string()]).is_err());
        assert!(Rules::from_tags(&["quorum=0".to_string()]).is_err());
        assert!(Rules::from_tags(&["quorum=".to_string()]).is_err());
    }

    #[test]
    fn service_quorum_keeps_a_majority_of_the_declared_size() {
        let q3 = tags(&["quorum=3"]);
        let all = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "passing")]),
            inst("c", &[("c", "passing")]),
        ];
        assert!(evaluate("galera", &q3, &all, "a").is_empty());
        let one_down = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "passing")]),
            inst("c", &[("c", "critical")]),
        ];
        let e = evaluate("galera", &q3, &one_down, "a");
        assert!(e.iter().any(|b| b.contains("quorum=3 needs 2")), "{e:?}");
        // ... also when failing members are tolerated otherwise.
        let e = evaluate(
            "galera",
            &tags(&["quorum=3", "max_failing=1"]),
            &one_down,
            "a",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("1 of its peers pass"), "{e:?}");
        // The failing member itself may go as far as the quorum is concerned
        // (its peers still make 2 of 3); max_failing says whether failing
        // members are tolerated at all.
        let q3_tolerant = tags(&["quorum=3", "max_failing=1"]);
        assert!(evaluate("galera", &q3_tolerant, &one_down, "c").is_empty());
        assert_eq!(evaluate("galera", &q3, &one_down, "c").len(), 1);
        // A deregistered member does not shrink the declared size.
        let two_left = [
            inst("a", &[("c", "passing")]),
            inst("b", &[("c", "passing")]),
        ];
        assert_eq!(evaluate("galera", &q3, &two_left, "a").len(), 1);
        let q5 = tags(&["quorum=5"]);
        let five: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| inst(n, &[("c", "passing")]))
            .collect();
        assert!(evaluate("zk", &q5, &five, "a").is_empty());
        // 5-node ensemble with one member down: another may go (3 of 5 stay)
        // when failing members are tolerated, a third may not.
        let q5_tolerant = tags(&["quorum=5", "max_failing=2"]);
        let mut one_failed = five.clone();
        one_failed[4] = inst("e", &[("c", "critical")]);
        assert!(evaluate("zk", &q5_tolerant, &one_failed, "a").is_empty());
        let mut two_failed = one_failed.clone();
        two_failed[3] = inst("d", &[("c", "critical")]);
        assert_eq!(evaluate("zk", &q5_tolerant, &two_failed, "a").len(), 1);
    }

    fn raft(v: &[(&str, bool, bool)]) -> Vec<RaftServer> {
        v.iter()
            .map(|(n, voter, healthy)| RaftServer {
                node: (*n).into(),
                voter: *voter,
                healthy: *healthy,
            })
            .collect()
    }

    #[test]
    fn consul_quorum_table() {
        // (servers as (node, voter, healthy), the node asking, blocked)
        type Case<'a> = (&'a [(&'a str, bool, bool)], &'a str, bool);
        let cases: &[Case] = &[
            (
                &[("s1", true, true), ("s2", true, true), ("s3", true, true)],
                "s1",
                false,
            ),
            // one server failed, not yet reaped
            (
                &[("s1", true, true), ("s2", true, true), ("s3", true, false)],
                "s1",
                true,
            ),
            // ... the failed one itself may reboot (its peers keep 2 of 3)
            (
                &[("s1", true, true), ("s2", true, true), ("s3", true, false)],
                "s3",
                false,
            ),
            // one server reaped by autopilot: 2 voters left, both needed
            (&[("s1", true, true), ("s2", true, true)], "s1", true),
            // a client never costs the quorum anything
            (&[("s1", true, true), ("s2", true, true)], "client1", false),
            // a non-voter neither
            (
                &[("s1", true, true), ("s2", true, true), ("s3", false, true)],
                "s3",
                false,
            ),
            // single-server cluster: nothing to keep
            (&[("s1", true, true)], "s1", false),
            (
                &[
                    ("s1", true, true),
                    ("s2", true, true),
                    ("s3", true, true),
                    ("s4", true, true),
                    ("s5", true, false),
                ],
                "s1",
                false,
            ),
            (
                &[
                    ("s1", true, true),
                    ("s2", true, true),
                    ("s3", true, true),
                    ("s4", true, false),
                    ("s5", true, false),
                ],
                "s1",
                true,
            ),
        ];
        for (servers, node, blocked) in cases {
            let b = evaluate_quorum(&raft(servers), node);
            assert_eq!(!b.is_empty(), *blocked, "{servers:?} {node}: {b:?}");
            if *blocked {
                assert!(b[0].contains("Raft quorum"), "{b:?}");
            }
        }
    }
}
