//! A small blocking client for the parts of Consul's HTTP API that rebootmgr
//! and umm's coordination use: KV (with CAS and sessions), sessions, health,
//! catalog, agent members and node maintenance.
//!
//! Everything that comes back from Consul is decoded defensively: a missing or
//! odd field is an error naming the request, never a panic.

use serde_json::{json, Value};
use std::fmt;
use std::time::Duration;

use crate::tls::ConsulSettings;

#[derive(Debug)]
pub enum ConsulError {
    /// No HTTP answer at all (connection refused, timeout, DNS).
    Unreachable { url: String, err: String },
    /// An HTTP answer with an unexpected status.
    Http {
        what: String,
        status: u16,
        body: String,
    },
    /// An answer we could not understand.
    Decode { what: String, err: String },
    /// The client could not be set up (a CA or key file, a bad variable).
    Config { err: String },
}

impl fmt::Display for ConsulError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsulError::Unreachable { url, err } => {
                write!(f, "Consul unreachable at {url}: {err}")
            }
            ConsulError::Http { what, status, body } => {
                write!(f, "Consul {what}: HTTP {status}: {}", body.trim())
            }
            ConsulError::Decode { what, err } => {
                write!(f, "Consul {what}: unexpected answer: {err}")
            }
            ConsulError::Config { err } => write!(f, "Consul client setup: {err}"),
        }
    }
}

impl std::error::Error for ConsulError {}

pub type Result<T> = std::result::Result<T, ConsulError>;

/// One KV entry as Consul returns it (value already base64-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    pub value: Vec<u8>,
    pub modify_index: u64,
    pub session: Option<String>,
}

impl KvEntry {
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }
}

/// A service instance with its checks, from `/v1/health/service/<name>`.
#[derive(Debug, Clone)]
pub struct ServiceInstance {
    pub node: String,
    pub service_id: String,
    pub service: String,
    pub tags: Vec<String>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub node: String,
    pub check_id: String,
    pub name: String,
    pub status: String,
    pub service_id: String,
    pub output: String,
    pub notes: String,
}

#[derive(Debug, Clone)]
pub struct NodeService {
    pub id: String,
    pub service: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Serf status: 1 alive, 2 leaving, 3 left, 4 failed.
    pub status: i64,
}

/// A server in Consul's Raft configuration, with autopilot's view of its
/// health (`/v1/operator/raft/configuration` + `/v1/operator/autopilot/health`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftServer {
    pub node: String,
    pub voter: bool,
    /// Autopilot says healthy; a server missing from autopilot's list is not.
    pub healthy: bool,
}

/// The check Consul adds to a node in maintenance.
pub const NODE_MAINTENANCE_CHECK: &str = "_node_maintenance";

#[derive(Clone)]
pub struct Consul {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl fmt::Debug for Consul {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consul").field("base", &self.base).finish()
    }
}

pub const DEFAULT_ADDR: &str = "http://127.0.0.1:8500";

impl Consul {
    /// `addr` like `http://127.0.0.1:8500` or `127.0.0.1:8500`.
    pub fn new(addr: &str, token: Option<String>) -> Consul {
        let addr = addr.trim().trim_end_matches('/');
        let base = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(3))
            .timeout(Duration::from_secs(15))
            .build();
        Consul {
            base,
            token: token.filter(|t| !t.is_empty()),
            agent,
        }
    }

    /// From Consul's environment variables (`CONSUL_HTTP_ADDR`,
    /// `CONSUL_HTTP_TOKEN[_FILE]`, `CONSUL_CACERT`, ...: [`crate::tls`]),
    /// `addr` overriding the address.
    pub fn from_env(addr: Option<&str>) -> Result<Consul> {
        let s = ConsulSettings::from_env().map_err(|err| ConsulError::Config { err })?;
        let over = ConsulSettings {
            addr: addr.map(str::to_string),
            ..Default::default()
        };
        Consul::with_settings(&s.overlay(&over))
    }

    /// A client for these settings: HTTPS when the address says `https://`.
    pub fn with_settings(s: &ConsulSettings) -> Result<Consul> {
        let config = |err| ConsulError::Config { err };
        let token = s.resolve_token().map_err(config)?;
        let mut c = Consul::new(s.addr.as_deref().unwrap_or(DEFAULT_ADDR), token);
        if c.base.starts_with("https://") {
            let tls = crate::tls::client_config(&s.tls).map_err(config)?;
            c.agent = ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(3))
                .timeout(Duration::from_secs(15))
                .tls_config(tls)
                .build();
        } else if !c.base.starts_with("http://") {
            return Err(config(format!(
                "address {:?}: only http:// and https:// are supported",
                c.base
            )));
        }
        Ok(c)
    }

    pub fn addr(&self) -> &str {
        &self.base
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        what: &str,
    ) -> Result<(u16, String)> {
        let url = format!("{}{}", self.base, read_mode(method, path));
        let mut req = self.agent.request(method, &url);
        if let Some(t) = &self.token {
            req = req.set("X-Consul-Token", t);
        }
        let res = match body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        match res {
            Ok(r) => {
                let status = r.status();
                let text = r.into_string().map_err(|e| ConsulError::Decode {
                    what: what.to_string(),
                    err: e.to_string(),
                })?;
                Ok((status, text))
            }
            Err(ureq::Error::Status(status, r)) => {
                Ok((status, r.into_string().unwrap_or_default()))
            }
            Err(ureq::Error::Transport(t)) => Err(ConsulError::Unreachable {
                err: transport_hint(&url, &t),
                url,
            }),
        }
    }

    /// A request that must answer 200; returns the parsed JSON body.
    fn json(&self, method: &str, path: &str, body: Option<&str>, what: &str) -> Result<Value> {
        let (status, text) = self.request(method, path, body, what)?;
        if status != 200 {
            return Err(ConsulError::Http {
                what: what.to_string(),
                status,
                body: text,
            });
        }
        parse(&text, what)
    }

    // ---- KV ----

    pub fn kv_get(&self, key: &str) -> Result<Option<KvEntry>> {
        let what = format!("GET kv {key}");
        let (status, text) =
            self.request("GET", &format!("/v1/kv/{}", enc_key(key)), None, &what)?;
        match status {
            404 => Ok(None),
            200 => Ok(decode_kv_list(&parse(&text, &what)?, &what)?
                .into_iter()
                .next()),
            _ => Err(ConsulError::Http {
                what,
                status,
                body: text,
            }),
        }
    }

    pub fn kv_list(&self, prefix: &str) -> Result<Vec<KvEntry>> {
        let what = format!("GET kv {prefix}?recurse");
        let (status, text) = self.request(
            "GET",
            &format!("/v1/kv/{}?recurse", enc_key(prefix)),
            None,
            &what,
        )?;
        match status {
            404 => Ok(Vec::new()),
            200 => decode_kv_list(&parse(&text, &what)?, &what),
            _ => Err(ConsulError::Http {
                what,
                status,
                body: text,
            }),
        }
    }

    fn kv_put_q(&self, key: &str, value: &[u8], query: &str) -> Result<bool> {
        let what = format!("PUT kv {key}{query}");
        let body = String::from_utf8_lossy(value);
        let v = self.json(
            "PUT",
            &format!("/v1/kv/{}{}", enc_key(key), query),
            Some(&body),
            &what,
        )?;
        v.as_bool().ok_or_else(|| ConsulError::Decode {
            what,
            err: format!("expected true/false, got {v}"),
        })
    }

    pub fn kv_put(&self, key: &str, value: &str) -> Result<()> {
        self.kv_put_q(key, value.as_bytes(), "")?;
        Ok(())
    }

    /// Check-and-set: `index` 0 means "only if the key does not exist".
    pub fn kv_cas(&self, key: &str, value: &str, index: u64) -> Result<bool> {
        self.kv_put_q(key, value.as_bytes(), &format!("?cas={index}"))
    }

    pub fn kv_acquire(&self, key: &str, value: &str, session: &str) -> Result<bool> {
        self.kv_put_q(key, value.as_bytes(), &format!("?acquire={}", enc(session)))
    }

    pub fn kv_delete(&self, key: &str) -> Result<()> {
        let what = format!("DELETE kv {key}");
        self.json("DELETE", &format!("/v1/kv/{}", enc_key(key)), None, &what)?;
        Ok(())
    }

    /// Deletes only if unchanged since `index`.
    pub fn kv_delete_cas(&self, key: &str, index: u64) -> Result<bool> {
        let what = format!("DELETE kv {key}?cas={index}");
        let v = self.json(
            "DELETE",
            &format!("/v1/kv/{}?cas={index}", enc_key(key)),
            None,
            &what,
        )?;
        Ok(v.as_bool().unwrap_or(false))
    }

    /// One check-and-set transaction (`PUT /v1/txn`): `true` when every
    /// operation applied, `false` when Consul rolled it back (a check failed).
    pub fn txn(&self, ops: &[Value]) -> Result<bool> {
        let what = "PUT txn".to_string();
        let body = Value::Array(ops.to_vec()).to_string();
        let (status, text) = self.request("PUT", "/v1/txn", Some(&body), &what)?;
        match status {
            200 => Ok(true),
            409 => {
                log::debug!("transaction rolled back: {text}");
                Ok(false)
            }
            _ => Err(ConsulError::Http {
                what,
                status,
                body: text,
            }),
        }
    }

    /// Fires a user event (`PUT /v1/event/fire/<name>`) with `payload`.
    pub fn event_fire(&self, name: &str, payload: &str) -> Result<()> {
        let what = format!("fire event {name}");
        self.json(
            "PUT",
            &format!("/v1/event/fire/{name}"),
            Some(payload),
            &what,
        )
        .map(drop)
    }

    // ---- sessions ----

    /// A session with only a TTL (no serfHealth check: the node's own reboot
    /// must not be what releases its slot), deleting its keys when it expires.
    pub fn session_create(&self, name: &str, ttl: Duration) -> Result<String> {
        let body = json!({
            "Name": name,
            "TTL": format!("{}s", ttl.as_secs().max(10)),
            "Behavior": "delete",
            "LockDelay": "0s",
            "Checks": [],
        })
        .to_string();
        let what = "create session";
        let v = self.json("PUT", "/v1/session/create", Some(&body), what)?;
        str_field(&v, "ID", what)
    }

    /// Ok(false) when the session no longer exists.
    pub fn session_renew(&self, id: &str) -> Result<bool> {
        let what = format!("renew session {id}");
        let (status, text) = self.request(
            "PUT",
            &format!("/v1/session/renew/{}", enc(id)),
            None,
            &what,
        )?;
        match status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(ConsulError::Http {
                what,
                status,
                body: text,
            }),
        }
    }

    pub fn session_exists(&self, id: &str) -> Result<bool> {
        let what = format!("session info {id}");
        let v = self.json("GET", &format!("/v1/session/info/{}", enc(id)), None, &what)?;
        Ok(v.as_array().is_some_and(|a| !a.is_empty()))
    }

    pub fn session_destroy(&self, id: &str) -> Result<()> {
        let what = format!("destroy session {id}");
        self.json(
            "PUT",
            &format!("/v1/session/destroy/{}", enc(id)),
            None,
            &what,
        )?;
        Ok(())
    }

    // ---- agent / catalog / health ----

    pub fn agent_node_name(&self) -> Result<String> {
        let what = "agent self";
        let v = self.json("GET", "/v1/agent/self", None, what)?;
        v.get("Config")
            .and_then(|c| c.get("NodeName"))
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ConsulError::Decode {
                what: what.into(),
                err: "no Config.NodeName".into(),
            })
    }

    pub fn members(&self) -> Result<Vec<Member>> {
        let what = "agent members";
        let v = self.json("GET", "/v1/agent/members", None, what)?;
        let arr = v.as_array().ok_or_else(|| ConsulError::Decode {
            what: what.into(),
            err: "not a list".into(),
        })?;
        arr.iter()
            .map(|m| {
                Ok(Member {
                    name: str_field(m, "Name", what)?,
                    status: m.get("Status").and_then(Value::as_i64).unwrap_or(0),
                })
            })
            .collect()
    }

    /// The Raft configuration: every server, and whether it votes
    /// (`healthy` is left false: see [`Consul::autopilot_healthy`]). Needs
    /// `operator:read`.
    pub fn raft_configuration(&self) -> Result<Vec<RaftServer>> {
        let what = "raft configuration";
        let cfg = self.json("GET", "/v1/operator/raft/configuration", None, what)?;
        let servers = cfg
            .get("Servers")
            .and_then(Value::as_array)
            .ok_or_else(|| ConsulError::Decode {
                what: what.into(),
                err: "no Servers list".into(),
            })?;
        servers
            .iter()
            .map(|s| {
                Ok(RaftServer {
                    node: str_field(s, "Node", what)?,
                    voter: s.get("Voter").and_then(Value::as_bool).unwrap_or(false),
                    healthy: false,
                })
            })
            .collect()
    }

    /// Names of the servers autopilot reports healthy. Consul answers 429
    /// (with the same body) while the cluster as a whole is unhealthy: that
    /// is an answer, not an error.
    pub fn autopilot_healthy(&self) -> Result<Vec<String>> {
        let what = "autopilot health";
        let (status, text) = self.request("GET", "/v1/operator/autopilot/health", None, what)?;
        if status != 200 && status != 429 {
            return Err(ConsulError::Http {
                what: what.to_string(),
                status,
                body: text,
            });
        }
        let v = parse(&text, what)?;
        Ok(v.get("Servers")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter(|s| s.get("Healthy").and_then(Value::as_bool) == Some(true))
                    .filter_map(|s| s.get("Name").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The Raft configuration with autopilot's health of each server.
    pub fn raft_servers(&self) -> Result<Vec<RaftServer>> {
        let mut servers = self.raft_configuration()?;
        let healthy = self.autopilot_healthy()?;
        for s in &mut servers {
            s.healthy = healthy.contains(&s.node);
        }
        Ok(servers)
    }

    /// `/v1/catalog/node/<node>`; `None` when Consul does not know the node.
    fn catalog_node(&self, node: &str, what: &str) -> Result<Option<Value>> {
        let (status, text) = self.request(
            "GET",
            &format!("/v1/catalog/node/{}", enc(node)),
            None,
            what,
        )?;
        match status {
            404 => Ok(None),
            200 => parse(&text, what).map(Some),
            _ => Err(ConsulError::Http {
                what: what.to_string(),
                status,
                body: text,
            }),
        }
    }

    /// Services registered on `node` (catalog view, so it works for nodes
    /// registered without an agent too). Empty when the node is unknown.
    pub fn node_services(&self, node: &str) -> Result<Vec<NodeService>> {
        let what = format!("catalog node {node}");
        let Some(v) = self.catalog_node(node, &what)? else {
            return Ok(Vec::new());
        };
        let Some(services) = v.get("Services").and_then(Value::as_object) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<NodeService> = services
            .values()
            .map(|s| {
                Ok(NodeService {
                    id: str_field(s, "ID", &what)?,
                    service: str_field(s, "Service", &what)?,
                    tags: tags(s),
                })
            })
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Every instance of `service` cluster-wide, with node and service checks.
    pub fn service_health(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        let what = format!("health service {service}");
        let v = self.json(
            "GET",
            &format!("/v1/health/service/{}", enc(service)),
            None,
            &what,
        )?;
        decode_service_health(&v, &what)
    }

    /// Checks on `node` (node-level and service-level).
    pub fn node_checks(&self, node: &str) -> Result<Vec<Check>> {
        let what = format!("health node {node}");
        let v = self.json(
            "GET",
            &format!("/v1/health/node/{}", enc(node)),
            None,
            &what,
        )?;
        v.as_array()
            .map(|cs| cs.iter().map(|c| decode_check(c, &what)).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Node maintenance through the local agent (the agent's own node).
    pub fn agent_maintenance(&self, enable: bool, reason: &str) -> Result<()> {
        let what = format!("agent maintenance enable={enable}");
        let path = format!(
            "/v1/agent/maintenance?enable={enable}&reason={}",
            enc(reason)
        );
        let (status, text) = self.request("PUT", &path, None, &what)?;
        if status != 200 {
            return Err(ConsulError::Http {
                what,
                status,
                body: text,
            });
        }
        Ok(())
    }

    /// Node maintenance for a node that has no agent of its own (simulated
    /// nodes, catalog-registered externals): the same `_node_maintenance`
    /// check, written through the catalog.
    pub fn catalog_maintenance(&self, node: &str, enable: bool, reason: &str) -> Result<()> {
        let what = format!("catalog maintenance {node} enable={enable}");
        if enable {
            // Never create a node by registering its maintenance check.
            let addr = self
                .node_address(node)?
                .ok_or_else(|| ConsulError::Decode {
                    what: what.clone(),
                    err: format!("node {node} is not in the catalog"),
                })?;
            let body = json!({
                "Node": node,
                "Address": addr,
                "SkipNodeUpdate": true,
                "Check": {
                    "Node": node,
                    "CheckID": NODE_MAINTENANCE_CHECK,
                    "Name": "Node Maintenance Mode",
                    "Notes": reason,
                    "Status": "critical",
                }
            })
            .to_string();
            self.json("PUT", "/v1/catalog/register", Some(&body), &what)?;
        } else {
            let body = json!({"Node": node, "CheckID": NODE_MAINTENANCE_CHECK}).to_string();
            self.json("PUT", "/v1/catalog/deregister", Some(&body), &what)?;
        }
        Ok(())
    }

    /// The node's address in the catalog; `None` when the node is unknown.
    pub fn node_address(&self, node: &str) -> Result<Option<String>> {
        let what = format!("catalog node {node}");
        let Some(v) = self.catalog_node(node, &what)? else {
            return Ok(None);
        };
        Ok(v.get("Node")
            .and_then(|n| n.get("Address"))
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// Maintenance for `node`: through the agent when it is the agent's own
    /// node (so the agent keeps it across anti-entropy), else the catalog.
    pub fn set_node_maintenance(&self, node: &str, enable: bool, reason: &str) -> Result<()> {
        if self.agent_node_name()? == node {
            self.agent_maintenance(enable, reason)
        } else {
            self.catalog_maintenance(node, enable, reason)
        }
    }

    /// Registers a catalog node with services (used by tests and the benchmark).
    pub fn catalog_register(&self, body: &Value) -> Result<()> {
        self.json(
            "PUT",
            "/v1/catalog/register",
            Some(&body.to_string()),
            "catalog register",
        )?;
        Ok(())
    }
}

/// The local agent's own checks and user events: how rebootmgr reports a
/// reboot slot that is stuck (docs/rebootmgr.md, "Stuck slots").
impl Consul {
    fn put_ok(&self, path: &str, body: Option<&str>, what: &str) -> Result<()> {
        let (status, text) = self.request("PUT", path, body, what)?;
        if status != 200 {
            return Err(ConsulError::Http {
                what: what.to_string(),
                status,
                body: text,
            });
        }
        Ok(())
    }

    /// Output of the local agent's check `id`; `None` when it is not registered.
    pub fn agent_check_output(&self, id: &str) -> Result<Option<String>> {
        let v = self.json("GET", "/v1/agent/checks", None, "GET agent checks")?;
        Ok(v.get(id).map(|c| {
            c.get("Output")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        }))
    }

    /// Registers (or re-registers) on the local agent a service `id` whose
    /// only check (also `id`, a TTL check) is critical with `output`: an
    /// alarm that shows in Consul's health views but belongs to no service
    /// that rebootmgr's health gate counts (a node check would block every
    /// peer's reboot). The TTL is long: it stays critical until deregistered.
    pub fn agent_alarm(&self, id: &str, name: &str, output: &str) -> Result<()> {
        let what = format!("agent alarm {id}");
        let reg = json!({"ID": id, "Name": id, "Check": {
            "CheckID": id, "Name": name, "TTL": "8760h", "Status": "critical"}})
        .to_string();
        self.put_ok("/v1/agent/service/register", Some(&reg), &what)?;
        let upd = json!({"Status": "critical", "Output": output}).to_string();
        self.put_ok(
            &format!("/v1/agent/check/update/{}", enc(id)),
            Some(&upd),
            &what,
        )
    }

    pub fn agent_alarm_clear(&self, id: &str) -> Result<()> {
        self.put_ok(
            &format!("/v1/agent/service/deregister/{}", enc(id)),
            None,
            &format!("deregister agent alarm {id}"),
        )
    }

    /// The reason of `node`'s Consul node maintenance (`_node_maintenance`
    /// check's notes); `None` when the node is not in maintenance. Read
    /// where [`set_node_maintenance`](Self::set_node_maintenance) writes:
    /// for the local agent's own node, the agent itself. Its catalog entry
    /// lags behind it after the agent starts (anti-entropy), and the agent
    /// ignores an "enable" while its own check exists: deciding from the
    /// catalog once left a reboot loop announced with the reason of the
    /// reboot before it (CI, tests/fleet/test_mm_announced.py).
    pub fn node_maintenance_reason(&self, node: &str) -> Result<Option<String>> {
        if self.agent_node_name()? == node {
            let v = self.json("GET", "/v1/agent/checks", None, "GET agent checks")?;
            return Ok(v.get(NODE_MAINTENANCE_CHECK).map(|c| {
                c.get("Notes")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            }));
        }
        Ok(self
            .node_checks(node)?
            .into_iter()
            .find(|c| c.check_id == NODE_MAINTENANCE_CHECK)
            .map(|c| c.notes))
    }
}

/// Consul's answer as JSON, or a decode error naming what was asked.
pub fn parse(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| ConsulError::Decode {
        what: what.to_string(),
        err: e.to_string(),
    })
}

fn str_field(v: &Value, field: &str, what: &str) -> Result<String> {
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ConsulError::Decode {
            what: what.to_string(),
            err: format!("missing string field {field}"),
        })
}

fn tags(v: &Value) -> Vec<String> {
    v.get("Tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>> {
    v.as_array().ok_or_else(|| ConsulError::Decode {
        what: what.to_string(),
        err: "not a list".into(),
    })
}

/// `/v1/health/service/<name>`'s answer: every instance with its checks.
/// Pure (also what the fuzz target `consul_health` runs).
pub fn decode_service_health(v: &Value, what: &str) -> Result<Vec<ServiceInstance>> {
    let arr = list(v, what)?;
    arr.iter()
        .map(|e| {
            let node = e
                .get("Node")
                .map(|n| str_field(n, "Node", what))
                .transpose()?
                .unwrap_or_default();
            let svc = e.get("Service").cloned().unwrap_or(Value::Null);
            let checks = e
                .get("Checks")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| decode_check(c, what))
                        .collect::<Result<Vec<_>>>()
                })
                .transpose()?
                .unwrap_or_default();
            Ok(ServiceInstance {
                node,
                service_id: str_field(&svc, "ID", what)?,
                service: str_field(&svc, "Service", what)?,
                tags: tags(&svc),
                checks,
            })
        })
        .collect()
}

fn decode_check(c: &Value, what: &str) -> Result<Check> {
    let s = |f: &str| {
        c.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(Check {
        node: s("Node"),
        check_id: str_field(c, "CheckID", what)?,
        name: s("Name"),
        status: str_field(c, "Status", what)?,
        service_id: s("ServiceID"),
        output: s("Output"),
        notes: s("Notes"),
    })
}

/// A KV listing (`?recurse`), values base64-decoded. Pure (fuzzed too).
pub fn decode_kv_list(v: &Value, what: &str) -> Result<Vec<KvEntry>> {
    let arr = list(v, what)?;
    arr.iter()
        .map(|e| {
            let value = match e.get("Value").and_then(Value::as_str) {
                Some(b64) => base64_decode(b64).ok_or_else(|| ConsulError::Decode {
                    what: what.to_string(),
                    err: "bad base64 in Value".into(),
                })?,
                None => Vec::new(),
            };
            Ok(KvEntry {
                key: str_field(e, "Key", what)?,
                value,
                modify_index: e.get("ModifyIndex").and_then(Value::as_u64).unwrap_or(0),
                session: e.get("Session").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

/// Percent-encodes a KV key, keeping `/` as the path separator.
/// Reads of replicated state (KV, catalog, health, sessions) are Consul's
/// `consistent` reads: the leader confirms with a quorum that it still leads
/// before it answers. A default read may be answered by a leader that has
/// just been elected and not yet applied its log, so right after the servers
/// restart a node's config or the stop flag can read as missing (seen in the
/// fleet test with all servers restarted mid-rollout: exit 104, "config is
/// missing", for a node whose config was there). A consistent read in that
/// window fails with HTTP 500 ("Not ready to serve consistent reads"), which
/// is a try-later outcome, not a verdict. Agent, status and operator
/// endpoints answer from the local agent or ignore the parameter.
pub fn read_mode(method: &str, path: &str) -> String {
    const REPLICATED: [&str; 4] = ["/v1/kv/", "/v1/catalog/", "/v1/health/", "/v1/session/"];
    if method != "GET" || !REPLICATED.iter().any(|p| path.starts_with(p)) {
        return path.to_string();
    }
    let sep = if path.contains('?') { '&' } else { '?' };
    format!("{path}{sep}consistent")
}

fn enc_key(key: &str) -> String {
    key.split('/').map(enc).collect::<Vec<_>>().join("/")
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Standard base64 with padding (values in `/v1/txn` operations).
pub fn base64_encode(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let trimmed: &[u8] = {
        let mut end = bytes.len();
        while end > 0 && bytes[end - 1] == b'=' {
            end -= 1;
        }
        &bytes[..end]
    };
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.chunks(4) {
        if chunk.len() == 1 {
            return None;
        }
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        out.push((acc >> 16) as u8);
        if chunk.len() > 2 {
            out.push((acc >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

/// A transport error (without ureq's repeated URL), with what to check
/// when TLS is why.
fn transport_hint(url: &str, t: &ureq::Transport) -> String {
    let mut text = match t.message() {
        Some(m) => m.to_string(),
        None => t.kind().to_string(),
    };
    if let Some(src) = std::error::Error::source(t) {
        let src = src.to_string();
        if !text.contains(&src) {
            text = format!("{text}: {src}");
        }
    }
    let lower = text.to_lowercase();
    if !url.starts_with("https://") {
        if lower.contains("connection reset") || lower.contains("unexpected eof") {
            text.push_str(
                " (does the agent speak HTTPS only? then use https:// in CONSUL_HTTP_ADDR)",
            );
        }
        return text;
    }
    if lower.contains("received fatal alert") {
        text.push_str(" (TLS: the agent refused this client: with verify_incoming it wants a client certificate signed by its CA: CONSUL_CLIENT_CERT/CONSUL_CLIENT_KEY (client_cert/client_key))");
    } else if lower.contains("certificate") {
        text.push_str(" (TLS: the agent's certificate is not trusted: check that CONSUL_CACERT/CONSUL_CAPATH (ca_file/ca_path) name the CA that signed it, and CONSUL_TLS_SERVER_NAME (tls_server_name))");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicated_state_is_read_consistently() {
        let table = [
            (
                "GET",
                "/v1/kv/service/rebootmgr/stop",
                "/v1/kv/service/rebootmgr/stop?consistent",
            ),
            ("GET", "/v1/kv/a?recurse", "/v1/kv/a?recurse&consistent"),
            (
                "GET",
                "/v1/catalog/node/n1",
                "/v1/catalog/node/n1?consistent",
            ),
            (
                "GET",
                "/v1/health/service/x",
                "/v1/health/service/x?consistent",
            ),
            (
                "GET",
                "/v1/session/info/abc",
                "/v1/session/info/abc?consistent",
            ),
            ("GET", "/v1/agent/self", "/v1/agent/self"),
            (
                "GET",
                "/v1/operator/raft/configuration",
                "/v1/operator/raft/configuration",
            ),
            ("PUT", "/v1/kv/a?cas=3", "/v1/kv/a?cas=3"),
            ("DELETE", "/v1/kv/a", "/v1/kv/a"),
        ];
        for (method, path, want) in table {
            assert_eq!(read_mode(method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("").unwrap(), b"");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert_eq!(base64_decode("Zm8=").unwrap(), b"fo");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        for v in ["", "f", "fo", "foo", "foob", "{\"a\": 1}"] {
            assert_eq!(
                base64_decode(&base64_encode(v.as_bytes())).unwrap(),
                v.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(
            base64_decode("eyJlbmFibGVkIjp0cnVlfQ==").unwrap(),
            br#"{"enabled":true}"#
        );
        assert!(base64_decode("Z").is_none());
        assert!(base64_decode("Zm9v!").is_none());
    }

    #[test]
    fn keys_are_encoded_but_keep_slashes() {
        assert_eq!(
            enc_key("service/rebootmgr/nodes/a b/config"),
            "service/rebootmgr/nodes/a%20b/config"
        );
        assert_eq!(enc("x?y&z"), "x%3Fy%26z");
    }
}
