//! A small blocking client for the Nova compute API (v2.1), only the calls
//! the drain needs (listed in docs/compute-host.md "REST calls").
//!
//! Authentication: a token (`OS_TOKEN`, sent as `X-Auth-Token`) with the
//! compute endpoint in `OS_ENDPOINT` (openstackclient's `admin_token`
//! convention), or Keystone v3 password auth (`OS_AUTH_URL`, `OS_USERNAME`,
//! `OS_PASSWORD`, `OS_PROJECT_NAME`, `OS_USER_DOMAIN_NAME`,
//! `OS_PROJECT_DOMAIN_NAME`, `OS_REGION_NAME`, `OS_INTERFACE`): the token and
//! the compute endpoint then come from Keystone's catalog.
//! The microversion is negotiated: the server's maximum, capped at
//! [`WANT_MICROVERSION`], and at least [`MIN_MICROVERSION`].

use serde_json::{json, Value};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Newest microversion the drain speaks (Zed's maximum is 2.93).
pub const WANT_MICROVERSION: (u32, u32) = (2, 88);
/// 2.53: services are addressed by UUID and disabled with a reason in one PUT.
pub const MIN_MICROVERSION: (u32, u32) = (2, 53);

#[derive(Debug)]
pub enum NovaError {
    /// A service (Nova, Keystone, Placement, Masakari) could not be reached.
    Unreachable {
        service: &'static str,
        url: String,
        err: String,
    },
    /// A service answered with an unexpected status.
    Http {
        service: &'static str,
        what: String,
        status: u16,
        body: String,
    },
    /// A response or the configuration was not what we need.
    Invalid(String),
}

impl fmt::Display for NovaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NovaError::Unreachable { service, url, err } => {
                write!(f, "cannot reach {service} at {url}: {err}")
            }
            NovaError::Http {
                service,
                what,
                status,
                body,
            } => {
                let body: String = body.chars().take(400).collect();
                write!(f, "{what}: {service} answered HTTP {status}: {body}")
            }
            NovaError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for NovaError {}

pub type Result<T> = std::result::Result<T, NovaError>;

/// Where Nova is and how to authenticate.
#[derive(Clone, Default)]
pub struct Auth {
    /// Compute endpoint, e.g. `http://127.0.0.1:8774/v2.1`.
    pub endpoint: Option<String>,
    pub token: Option<String>,
    pub auth_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub project_name: Option<String>,
    /// `OS_PROJECT_ID`: scopes to the project by id (then its name and domain are not needed).
    pub project_id: Option<String>,
    pub user_domain: Option<String>,
    pub project_domain: Option<String>,
    /// `OS_USER_DOMAIN_ID`, `OS_PROJECT_DOMAIN_ID` (devstack's and Horizon's openrc set these):
    /// they win over the domain names.
    pub user_domain_id: Option<String>,
    pub project_domain_id: Option<String>,
    pub region: Option<String>,
    pub interface: Option<String>,
    /// Placement endpoint (the capacity precheck); with Keystone it comes from the catalog.
    pub placement: Option<String>,
    /// Masakari endpoint (`on_maintenance`); with Keystone the catalog's `instance-ha`.
    pub masakari: Option<String>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // never the token or the password
        f.debug_struct("Auth")
            .field("endpoint", &self.endpoint)
            .field("auth_url", &self.auth_url)
            .finish()
    }
}

impl Auth {
    /// From the `OS_*` environment (see the module docs).
    pub fn from_env() -> Auth {
        let v = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
        Auth {
            endpoint: v("OS_ENDPOINT").or_else(|| v("OS_COMPUTE_API")),
            token: v("OS_TOKEN").or_else(|| v("OS_AUTH_TOKEN")),
            auth_url: v("OS_AUTH_URL"),
            username: v("OS_USERNAME"),
            password: v("OS_PASSWORD"),
            project_name: v("OS_PROJECT_NAME"),
            project_id: v("OS_PROJECT_ID").or_else(|| v("OS_TENANT_ID")),
            user_domain: v("OS_USER_DOMAIN_NAME"),
            project_domain: v("OS_PROJECT_DOMAIN_NAME"),
            user_domain_id: v("OS_USER_DOMAIN_ID"),
            project_domain_id: v("OS_PROJECT_DOMAIN_ID"),
            region: v("OS_REGION_NAME"),
            interface: v("OS_INTERFACE"),
            placement: v("OS_PLACEMENT_ENDPOINT"),
            masakari: v("OS_MASAKARI_ENDPOINT"),
        }
    }
}

/// A service record (`GET /os-services`).
#[derive(Debug, Clone)]
pub struct Service {
    pub id: String,
    pub host: String,
    pub status: String,
    pub state: String,
    pub disabled_reason: Option<String>,
}

/// A server as the drain sees it (`GET /servers/detail`).
#[derive(Debug, Clone, Default)]
pub struct Server {
    pub id: String,
    pub name: String,
    pub status: String,
    pub host: Option<String>,
    pub task_state: Option<String>,
    pub fault: Option<String>,
    /// The flavor's vCPUs and RAM (MiB), embedded in the server since 2.47.
    pub vcpus: u64,
    pub ram_mb: u64,
}

/// A hypervisor (`GET /os-hypervisors/detail`, 2.53+): its id is the compute
/// node's UUID, which is also its resource provider's UUID in Placement.
#[derive(Debug, Clone)]
pub struct Hypervisor {
    pub id: String,
    pub hostname: String,
    pub host: String,
}

/// A host in a Masakari failover segment.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MasakariHost {
    pub segment: String,
    pub uuid: String,
    #[serde(default)]
    pub on_maintenance: bool,
}

/// Free capacity of one resource provider (Placement inventories − usages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Free {
    pub vcpus: u64,
    pub ram_mb: u64,
}

/// A migration record (`GET /os-migrations`, `GET /servers/{id}/migrations`).
#[derive(Debug, Clone)]
pub struct Migration {
    pub id: u64,
    pub server: String,
    pub status: String,
    pub source: Option<String>,
    pub dest: Option<String>,
    pub created_at: String,
    pub updated_at: Option<String>,
}

/// Migration statuses that mean "still in flight".
pub fn migration_in_flight(status: &str) -> bool {
    !matches!(
        status,
        "completed" | "done" | "error" | "failed" | "cancelled" | "confirmed" | "reverted"
    )
}

#[derive(Clone)]
pub struct Nova {
    base: String,
    /// Shared by the clones: a token renewed by one is the one all send.
    token: Arc<Mutex<String>>,
    microversion: String,
    agent: ureq::Agent,
    placement: Option<String>,
    masakari: Option<String>,
    /// Keystone password credentials: a token refused with 401 (it expired during a drain
    /// longer than Keystone's token lifetime, 1 h by default) is renewed once with them.
    reauth: Option<Auth>,
}

impl fmt::Debug for Nova {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nova")
            .field("base", &self.base)
            .field("microversion", &self.microversion)
            .finish()
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
}

const NOVA: &str = "Nova";
const PLACEMENT: &str = "Placement";
const MASAKARI: &str = "Masakari";
const KEYSTONE: &str = "Keystone";

fn transport(
    service: &'static str,
    url: &str,
    e: ureq::Error,
) -> std::result::Result<(u16, String), NovaError> {
    match e {
        ureq::Error::Status(status, r) => Ok((status, r.into_string().unwrap_or_default())),
        ureq::Error::Transport(t) => Err(NovaError::Unreachable {
            service,
            url: url.to_string(),
            err: t.to_string(),
        }),
    }
}

fn parse_version(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_string)
}

impl Nova {
    /// Authenticates (token or Keystone password) and negotiates the microversion.
    pub fn connect(auth: &Auth) -> Result<Nova> {
        let agent = agent();
        let mut placement = auth.placement.clone();
        let mut masakari = auth.masakari.clone();
        let mut reauth = None;
        let (token, endpoint) = match (&auth.token, &auth.password) {
            (Some(t), _) => {
                let ep = auth.endpoint.clone().ok_or_else(|| {
                    NovaError::Invalid(
                        "OS_TOKEN is set but OS_ENDPOINT is not: give the compute endpoint \
                         (e.g. OS_ENDPOINT=http://controller:8774/v2.1)"
                            .into(),
                    )
                })?;
                (t.clone(), ep)
            }
            (None, Some(_)) => {
                let (token, endpoint, cat) = keystone_password(&agent, auth)?;
                placement = placement.or(cat.placement);
                masakari = masakari.or(cat.masakari);
                reauth = Some(auth.clone());
                (token, endpoint)
            }
            (None, None) => {
                return Err(NovaError::Invalid(
                    "no OpenStack credentials: set OS_TOKEN and OS_ENDPOINT, or OS_AUTH_URL, \
                     OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME"
                        .into(),
                ))
            }
        };
        let mut nova = Nova {
            base: endpoint.trim_end_matches('/').to_string(),
            token: Arc::new(Mutex::new(token)),
            microversion: format!("{}.{}", MIN_MICROVERSION.0, MIN_MICROVERSION.1),
            agent,
            placement: placement.map(|p| p.trim_end_matches('/').to_string()),
            masakari: masakari.map(|p| p.trim_end_matches('/').to_string()),
            reauth,
        };
        nova.negotiate()?;
        Ok(nova)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn microversion(&self) -> &str {
        &self.microversion
    }

    fn negotiate(&mut self) -> Result<()> {
        let v = self.get("/", "compute API version")?;
        let max = v
            .pointer("/version/version")
            .and_then(Value::as_str)
            .and_then(parse_version)
            .ok_or_else(|| {
                NovaError::Invalid(format!(
                    "{} does not look like the Nova v2.1 endpoint (no version.version in GET /)",
                    self.base
                ))
            })?;
        if max < MIN_MICROVERSION {
            return Err(NovaError::Invalid(format!(
                "Nova at {} supports microversions up to {}.{}; the drain needs {}.{}",
                self.base, max.0, max.1, MIN_MICROVERSION.0, MIN_MICROVERSION.1
            )));
        }
        let use_ = max.min(WANT_MICROVERSION);
        self.microversion = format!("{}.{}", use_.0, use_.1);
        Ok(())
    }

    fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, String)> {
        self.request_at(&self.microversion, method, path, body)
    }

    fn request_at(
        &self,
        microversion: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        let url = format!("{}{}", self.base, path);
        self.send(
            NOVA,
            &url,
            ("X-OpenStack-Nova-API-Version", microversion),
            method,
            body,
        )
    }

    /// One request with the token and a version header; the status and body.
    /// With Keystone password credentials, a 401 (the token expired) renews the
    /// token and sends the request once more: a 401 comes from the service's
    /// authentication middleware, before the request did anything.
    fn send(
        &self,
        service: &'static str,
        url: &str,
        version: (&str, &str),
        method: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        let sent = self.token();
        let (status, text) = self.send_once(service, url, version, method, body)?;
        let Some(auth) = self.reauth.as_ref().filter(|_| status == 401) else {
            return Ok((status, text));
        };
        {
            let mut token = self.token.lock().unwrap_or_else(|p| p.into_inner());
            // another clone may have renewed it meanwhile
            if *token == sent {
                *token = keystone_password(&self.agent, auth)?.0;
                eprintln!(
                    "{service} refused the Keystone token (HTTP 401, expired?): authenticated again"
                );
            }
        }
        self.send_once(service, url, version, method, body)
    }

    fn token(&self) -> String {
        self.token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn send_once(
        &self,
        service: &'static str,
        url: &str,
        version: (&str, &str),
        method: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String)> {
        let req = self
            .agent
            .request(method, url)
            .set("X-Auth-Token", &self.token())
            .set(version.0, version.1)
            .set("Accept", "application/json");
        let res = match body {
            Some(b) => req
                .set("Content-Type", "application/json")
                .send_string(&b.to_string()),
            None => req.call(),
        };
        match res {
            Ok(r) => {
                let status = r.status();
                Ok((status, r.into_string().unwrap_or_default()))
            }
            Err(e) => transport(service, url, e),
        }
    }

    fn expect(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
        what: &str,
    ) -> Result<Value> {
        let (status, text) = self.request(method, path, body)?;
        if !ok.contains(&status) {
            return Err(NovaError::Http {
                service: NOVA,
                what: what.to_string(),
                status,
                body: text,
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text)
            .map_err(|e| NovaError::Invalid(format!("{what}: Nova sent invalid JSON: {e}")))
    }

    fn get(&self, path: &str, what: &str) -> Result<Value> {
        self.expect("GET", path, None, &[200], what)
    }

    /// The nova-compute service of exactly `host` (never a substring match:
    /// compute1 is not compute10).
    pub fn compute_service(&self, host: &str) -> Result<Service> {
        let v = self.get(
            &format!("/os-services?binary=nova-compute&host={}", enc(host)),
            "list compute services",
        )?;
        let all: Vec<Service> = v
            .get("services")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(service).collect())
            .unwrap_or_default();
        let mut exact: Vec<Service> = all.into_iter().filter(|s| s.host == host).collect();
        match exact.len() {
            1 => Ok(exact.remove(0)),
            0 => Err(NovaError::Invalid(format!(
                "Nova has no nova-compute service on host {host:?} (exact match; see GET /os-services?binary=nova-compute)"
            ))),
            n => Err(NovaError::Invalid(format!(
                "Nova has {n} nova-compute services on host {host:?}: refusing to guess"
            ))),
        }
    }

    pub fn compute_services(&self) -> Result<Vec<Service>> {
        let v = self.get("/os-services?binary=nova-compute", "list compute services")?;
        Ok(v.get("services")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(service).collect())
            .unwrap_or_default())
    }

    pub fn set_service(&self, id: &str, disabled_reason: Option<&str>) -> Result<Service> {
        let body = match disabled_reason {
            Some(r) => json!({"status": "disabled", "disabled_reason": r}),
            None => json!({"status": "enabled"}),
        };
        let v = self.expect(
            "PUT",
            &format!("/os-services/{}", enc(id)),
            Some(&body),
            &[200],
            "update compute service",
        )?;
        Ok(service(v.get("service").unwrap_or(&Value::Null)))
    }

    /// All servers Nova places on exactly `host` (every project).
    pub fn servers_on(&self, host: &str) -> Result<Vec<Server>> {
        let v = self.get(
            &format!("/servers/detail?all_tenants=1&host={}", enc(host)),
            "list servers on host",
        )?;
        Ok(v.get("servers")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(server).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|s| s.host.as_deref() == Some(host))
            .collect())
    }

    /// One server; `None` when it no longer exists.
    pub fn server(&self, id: &str) -> Result<Option<Server>> {
        let (status, text) = self.request("GET", &format!("/servers/{}", enc(id)), None)?;
        match status {
            200 => {
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| NovaError::Invalid(format!("server {id}: invalid JSON: {e}")))?;
                Ok(Some(server(v.get("server").unwrap_or(&Value::Null))))
            }
            404 => Ok(None),
            _ => Err(NovaError::Http {
                service: NOVA,
                what: format!("show server {id}"),
                status,
                body: text,
            }),
        }
    }

    /// Asks for a live migration; the scheduler picks the destination.
    pub fn live_migrate(&self, id: &str) -> Result<()> {
        let body = json!({"os-migrateLive": {"host": null, "block_migration": "auto"}});
        self.expect(
            "POST",
            &format!("/servers/{}/action", enc(id)),
            Some(&body),
            &[202],
            &format!("live-migrate server {id}"),
        )
        .map(|_| ())
    }

    /// In-flight migrations of one server.
    pub fn server_migrations(&self, id: &str) -> Result<Vec<Migration>> {
        let v = self.get(
            &format!("/servers/{}/migrations", enc(id)),
            &format!("migrations of server {id}"),
        )?;
        Ok(migrations(&v, Some(id)))
    }

    /// Live-migration records with `source` as the source compute.
    pub fn live_migrations_from(&self, source: &str) -> Result<Vec<Migration>> {
        self.migrations_from(source, Some("live-migration"))
    }

    /// Migration records (of `kind`: `live-migration`, `migration`; `None`: every
    /// kind) with `source` as the source compute.
    pub fn migrations_from(&self, source: &str, kind: Option<&str>) -> Result<Vec<Migration>> {
        let kind = kind
            .map(|k| format!("migration_type={}&", enc(k)))
            .unwrap_or_default();
        let v = self.get(
            &format!("/os-migrations?{kind}source_compute={}", enc(source)),
            "list migrations",
        )?;
        Ok(migrations(&v, None)
            .into_iter()
            .filter(|m| m.source.as_deref() == Some(source))
            .collect())
    }

    /// Every migration record Nova has (all hosts, all kinds): the total in
    /// flight across hosts is counted from it.
    pub fn all_migrations(&self) -> Result<Vec<Migration>> {
        let v = self.get("/os-migrations", "list migrations")?;
        Ok(migrations(&v, None))
    }

    /// Cold-migrates a server (the scheduler picks the destination); it ends in
    /// VERIFY_RESIZE and needs [`Nova::confirm_resize`].
    pub fn cold_migrate(&self, id: &str) -> Result<()> {
        self.expect(
            "POST",
            &format!("/servers/{}/action", enc(id)),
            Some(&json!({"migrate": null})),
            &[202],
            &format!("migrate server {id}"),
        )
        .map(|_| ())
    }

    pub fn confirm_resize(&self, id: &str) -> Result<()> {
        self.expect(
            "POST",
            &format!("/servers/{}/action", enc(id)),
            Some(&json!({"confirmResize": null})),
            &[202, 204],
            &format!("confirm the migration of server {id}"),
        )
        .map(|_| ())
    }

    /// Asked at 2.87 at most: from 2.88 on the detail list carries each
    /// hypervisor's uptime, an RPC to every nova-compute, and one dead compute
    /// makes the whole list fail (HTTP 500 MessagingTimeout; seen in the lab).
    pub fn hypervisors(&self) -> Result<Vec<Hypervisor>> {
        let mv = parse_version(&self.microversion)
            .unwrap_or(MIN_MICROVERSION)
            .min((2, 87));
        let what = "list hypervisors";
        let (status, text) = self.request_at(
            &format!("{}.{}", mv.0, mv.1),
            "GET",
            "/os-hypervisors/detail",
            None,
        )?;
        if status != 200 {
            return Err(NovaError::Http {
                service: NOVA,
                what: what.into(),
                status,
                body: text,
            });
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| NovaError::Invalid(format!("{what}: Nova sent invalid JSON: {e}")))?;
        Ok(v.get("hypervisors")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|h| Hypervisor {
                        id: id_of(h),
                        hostname: s(h, "hypervisor_hostname").unwrap_or_default(),
                        host: h
                            .pointer("/service/host")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    pub fn placement_endpoint(&self) -> Option<&str> {
        self.placement.as_deref()
    }

    fn placement_get(&self, path: &str, what: &str) -> Result<Value> {
        let base = self.placement.as_deref().ok_or_else(|| {
            NovaError::Invalid(
                "no Placement endpoint: set OS_PLACEMENT_ENDPOINT (or use Keystone auth, whose \
                 catalog lists it)"
                    .into(),
            )
        })?;
        self.other(PLACEMENT, "placement 1.0", base, "GET", path, None, what)
    }

    /// A JSON call to another OpenStack service with the same token
    /// (`OpenStack-API-Version: <version>`); 200 expected.
    #[allow(clippy::too_many_arguments)]
    fn other(
        &self,
        service: &'static str,
        version: &str,
        base: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value> {
        let url = format!("{base}{path}");
        let (status, text) = self.send(
            service,
            &url,
            ("OpenStack-API-Version", version),
            method,
            body,
        )?;
        if status != 200 {
            return Err(NovaError::Http {
                service,
                what: what.to_string(),
                status,
                body: text,
            });
        }
        serde_json::from_str(&text)
            .map_err(|e| NovaError::Invalid(format!("{what}: invalid JSON: {e}")))
    }

    /// Whether a Masakari endpoint is configured.
    pub fn has_masakari(&self) -> bool {
        self.masakari.is_some()
    }

    pub fn masakari_endpoint(&self) -> Option<&str> {
        self.masakari.as_deref()
    }

    /// Masakari's hosts named exactly `host`, in every failover segment:
    /// `GET /segments`, `GET /segments/{id}/hosts`.
    pub fn masakari_hosts(&self, host: &str) -> Result<Vec<MasakariHost>> {
        let Some(base) = self.masakari.as_deref() else {
            return Ok(Vec::new());
        };
        const V: &str = "instance-ha 1.0";
        let segs = self.other(
            MASAKARI,
            V,
            base,
            "GET",
            "/segments",
            None,
            "list Masakari segments",
        )?;
        let mut out = Vec::new();
        for seg in segs
            .get("segments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(sid) = s(seg, "uuid") else { continue };
            let hosts = self.other(
                MASAKARI,
                V,
                base,
                "GET",
                &format!("/segments/{}/hosts", enc(&sid)),
                None,
                &format!("list the hosts of Masakari segment {sid}"),
            )?;
            for h in hosts
                .get("hosts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if s(h, "name").as_deref() == Some(host) {
                    out.push(MasakariHost {
                        segment: sid.clone(),
                        uuid: s(h, "uuid").unwrap_or_default(),
                        on_maintenance: h
                            .get("on_maintenance")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    });
                }
            }
        }
        Ok(out)
    }

    /// `PUT /segments/{segment}/hosts/{uuid}` `{"host": {"on_maintenance": on}}`.
    pub fn masakari_set(&self, h: &MasakariHost, on: bool) -> Result<()> {
        let base = self
            .masakari
            .as_deref()
            .ok_or_else(|| NovaError::Invalid("no Masakari endpoint".into()))?;
        self.other(
            MASAKARI,
            "instance-ha 1.0",
            base,
            "PUT",
            &format!("/segments/{}/hosts/{}", enc(&h.segment), enc(&h.uuid)),
            Some(&json!({"host": {"on_maintenance": on}})),
            "set Masakari's on_maintenance",
        )
        .map(|_| ())
    }

    /// Free vCPU and RAM of one resource provider:
    /// `(total − reserved) × allocation_ratio − used`, per resource class.
    pub fn placement_free(&self, rp: &str) -> Result<Free> {
        let inv = self.placement_get(
            &format!("/resource_providers/{}/inventories", enc(rp)),
            &format!("inventories of resource provider {rp}"),
        )?;
        let usage = self.placement_get(
            &format!("/resource_providers/{}/usages", enc(rp)),
            &format!("usages of resource provider {rp}"),
        )?;
        Ok(Free {
            vcpus: free_of(&inv, &usage, "VCPU"),
            ram_mb: free_of(&inv, &usage, "MEMORY_MB"),
        })
    }

    pub fn abort_migration(&self, server: &str, mig: u64) -> Result<()> {
        self.expect(
            "DELETE",
            &format!("/servers/{}/migrations/{mig}", enc(server)),
            None,
            &[202],
            &format!("abort migration {mig} of server {server}"),
        )
        .map(|_| ())
    }

    pub fn force_complete(&self, server: &str, mig: u64) -> Result<()> {
        self.expect(
            "POST",
            &format!("/servers/{}/migrations/{mig}/action", enc(server)),
            Some(&json!({"force_complete": null})),
            &[202],
            &format!("force-complete migration {mig} of server {server}"),
        )
        .map(|_| ())
    }
}

/// An `id` that is a UUID string (2.53+) or a number (older records).
fn id_of(v: &Value) -> String {
    v.get("id")
        .map(|i| {
            i.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| i.to_string())
        })
        .unwrap_or_default()
}

fn service(v: &Value) -> Service {
    Service {
        id: id_of(v),
        host: s(v, "host").unwrap_or_default(),
        status: s(v, "status").unwrap_or_default(),
        state: s(v, "state").unwrap_or_default(),
        disabled_reason: s(v, "disabled_reason"),
    }
}

fn server(v: &Value) -> Server {
    Server {
        id: s(v, "id").unwrap_or_default(),
        name: s(v, "name").unwrap_or_default(),
        status: s(v, "status").unwrap_or_default(),
        host: s(v, "OS-EXT-SRV-ATTR:host"),
        task_state: s(v, "OS-EXT-STS:task_state"),
        fault: v.get("fault").and_then(|f| s(f, "message")),
        vcpus: v
            .pointer("/flavor/vcpus")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        ram_mb: v
            .pointer("/flavor/ram")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

fn free_of(inv: &Value, usage: &Value, class: &str) -> u64 {
    let Some(i) = inv.pointer(&format!("/inventories/{class}")) else {
        return 0;
    };
    let n = |k: &str| i.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let ratio = i
        .get("allocation_ratio")
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let used = usage
        .pointer(&format!("/usages/{class}"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let cap = ((n("total") - n("reserved")) * ratio).floor();
    (cap - used).max(0.0) as u64
}

fn migrations(v: &Value, server: Option<&str>) -> Vec<Migration> {
    v.get("migrations")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|m| Migration {
                    id: m.get("id").and_then(Value::as_u64).unwrap_or(0),
                    server: s(m, "instance_uuid")
                        .or_else(|| server.map(str::to_string))
                        .unwrap_or_default(),
                    status: s(m, "status").unwrap_or_default(),
                    source: s(m, "source_compute"),
                    dest: s(m, "dest_compute"),
                    created_at: s(m, "created_at").unwrap_or_default(),
                    updated_at: s(m, "updated_at"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Percent-encodes a path segment or query value.
fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The body of Keystone's `POST /v3/auth/tokens`: the user by name in its domain
/// (`OS_USER_DOMAIN_ID`, else `OS_USER_DOMAIN_NAME`, else `Default`), scoped to the
/// project `OS_PROJECT_ID`, or `OS_PROJECT_NAME` in its domain (`OS_PROJECT_DOMAIN_ID`,
/// else `OS_PROJECT_DOMAIN_NAME`, else `Default`).
fn password_body(a: &Auth) -> Result<Value> {
    let need = |v: &Option<String>, k: &str| {
        v.clone().ok_or_else(|| {
            NovaError::Invalid(format!(
                "Keystone password auth needs {k} (OS_PASSWORD is set)"
            ))
        })
    };
    let domain = |id: &Option<String>, name: &Option<String>| match (id, name) {
        (Some(id), _) => json!({ "id": id }),
        (None, Some(n)) => json!({ "name": n }),
        (None, None) => json!({"name": "Default"}),
    };
    let project = match &a.project_id {
        Some(id) => json!({ "id": id }),
        None => json!({
            "name": need(&a.project_name, "OS_PROJECT_NAME (or OS_PROJECT_ID)")?,
            "domain": domain(&a.project_domain_id, &a.project_domain),
        }),
    };
    Ok(json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": need(&a.username, "OS_USERNAME")?,
            "domain": domain(&a.user_domain_id, &a.user_domain),
            "password": need(&a.password, "OS_PASSWORD")?,
        }}},
        "scope": {"project": project},
    }}))
}

/// The URL of the catalog's first `kind` endpoint with this interface (`public`,
/// `internal`, `admin`; `publicURL` etc. as v2 spelled them) and, if given, region.
fn catalog_url(token: &Value, kind: &str, iface: &str, region: Option<&str>) -> Option<String> {
    let iface = iface.strip_suffix("URL").unwrap_or(iface);
    token
        .pointer("/token/catalog")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|svc| svc.get("type").and_then(Value::as_str) == Some(kind))
        .flat_map(|svc| {
            svc.get("endpoints")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .find(|e| {
            e.get("interface").and_then(Value::as_str) == Some(iface)
                && region.is_none_or(|r| {
                    e.get("region_id")
                        .or_else(|| e.get("region"))
                        .and_then(Value::as_str)
                        == Some(r)
                })
        })
        .and_then(|e| s(&e, "url"))
}

/// Keystone v3 password authentication: returns the token and the compute
/// endpoint from the catalog (`OS_ENDPOINT` overrides the latter).
fn keystone_password(agent: &ureq::Agent, a: &Auth) -> Result<(String, String, Catalog)> {
    let auth_url = a.auth_url.clone().ok_or_else(|| {
        NovaError::Invalid("Keystone password auth needs OS_AUTH_URL (OS_PASSWORD is set)".into())
    })?;
    let body = password_body(a)?;
    let base = auth_url.trim_end_matches('/');
    let url = if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    };
    let res = agent
        .post(&url)
        .set("Content-Type", "application/json")
        .send_string(&body.to_string());
    let r = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(401, _)) => {
            return Err(NovaError::Invalid(format!(
                "Keystone at {url} refused the credentials (HTTP 401): check OS_USERNAME, \
                 OS_PASSWORD, OS_PROJECT_NAME (or OS_PROJECT_ID) and their domains \
                 (OS_USER_DOMAIN_NAME/_ID, OS_PROJECT_DOMAIN_NAME/_ID; default Default)"
            )))
        }
        Err(e) => {
            return transport(KEYSTONE, &url, e).and_then(|(status, body)| {
                Err(NovaError::Http {
                    service: KEYSTONE,
                    what: "Keystone password authentication".into(),
                    status,
                    body,
                })
            })
        }
    };
    let token = r
        .header("X-Subject-Token")
        .map(str::to_string)
        .ok_or_else(|| NovaError::Invalid("Keystone answered without X-Subject-Token".into()))?;
    let v: Value = serde_json::from_str(&r.into_string().unwrap_or_default())
        .map_err(|e| NovaError::Invalid(format!("Keystone sent invalid JSON: {e}")))?;
    let iface = a.interface.as_deref().unwrap_or("public");
    let find = |kind: &str| catalog_url(&v, kind, iface, a.region.as_deref());
    let cat = Catalog {
        placement: find("placement"),
        masakari: find("instance-ha"),
    };
    if let Some(ep) = &a.endpoint {
        return Ok((token, ep.clone(), cat));
    }
    let ep = find("compute").ok_or_else(|| {
        NovaError::Invalid(format!(
            "Keystone's catalog has no {} compute endpoint{}: set OS_ENDPOINT (or \
             OS_INTERFACE, OS_REGION_NAME)",
            iface.strip_suffix("URL").unwrap_or(iface),
            a.region
                .as_deref()
                .map(|r| format!(" in region {r}"))
                .unwrap_or_default()
        ))
    })?;
    Ok((token, ep, cat))
}

/// The other endpoints the drain uses, from Keystone's catalog.
struct Catalog {
    placement: Option<String>,
    masakari: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_statuses() {
        for s in [
            "queued",
            "preparing",
            "running",
            "post-migrating",
            "accepted",
        ] {
            assert!(migration_in_flight(s), "{s}");
        }
        for s in ["completed", "error", "failed", "cancelled"] {
            assert!(!migration_in_flight(s), "{s}");
        }
    }

    #[test]
    fn placement_free_capacity() {
        let inv = json!({"inventories": {
            "VCPU": {"total": 8, "reserved": 2, "allocation_ratio": 4.0},
            "MEMORY_MB": {"total": 4096, "reserved": 512, "allocation_ratio": 1.5}}});
        let usage = json!({"usages": {"VCPU": 10, "MEMORY_MB": 5000}});
        assert_eq!(free_of(&inv, &usage, "VCPU"), 14);
        assert_eq!(free_of(&inv, &usage, "MEMORY_MB"), 376);
        assert_eq!(free_of(&inv, &json!({"usages": {"VCPU": 99}}), "VCPU"), 0);
        assert_eq!(free_of(&inv, &usage, "DISK_GB"), 0);
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(enc("compute1"), "compute1");
        assert_eq!(enc("a b&c"), "a%20b%26c");
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.93"), Some((2, 93)));
        assert!(parse_version("2.9").unwrap() < (2, 53));
        assert_eq!(parse_version("x"), None);
    }

    #[test]
    fn keystone_password_body() {
        let a = Auth {
            username: Some("umm".into()),
            password: Some("pw".into()),
            project_name: Some("admin".into()),
            ..Auth::default()
        };
        let b = password_body(&a).unwrap();
        assert_eq!(
            b.pointer("/auth/identity/password/user/domain"),
            Some(&json!({"name": "Default"}))
        );
        assert_eq!(
            b.pointer("/auth/scope/project"),
            Some(&json!({"name": "admin", "domain": {"name": "Default"}}))
        );
        let ids = Auth {
            user_domain: Some("Ignored".into()),
            user_domain_id: Some("default".into()),
            project_domain_id: Some("default".into()),
            ..a.clone()
        };
        let b = password_body(&ids).unwrap();
        assert_eq!(
            b.pointer("/auth/identity/password/user/domain"),
            Some(&json!({"id": "default"}))
        );
        assert_eq!(
            b.pointer("/auth/scope/project/domain"),
            Some(&json!({"id": "default"}))
        );
        let pid = Auth {
            project_name: None,
            project_id: Some("0a1b".into()),
            ..a.clone()
        };
        assert_eq!(
            password_body(&pid).unwrap().pointer("/auth/scope/project"),
            Some(&json!({"id": "0a1b"}))
        );
        let none = Auth {
            project_name: None,
            ..a
        };
        let e = password_body(&none).unwrap_err().to_string();
        assert!(e.contains("OS_PROJECT_NAME"), "{e}");
        assert!(!format!("{ids:?}").contains("pw"));
    }

    #[test]
    fn catalog_interface_and_region() {
        let t = json!({"token": {"catalog": [
            {"type": "identity", "endpoints": [
                {"interface": "public", "region_id": "RegionOne", "url": "http://k/v3"}]},
            {"type": "compute", "endpoints": [
                {"interface": "admin", "region_id": "RegionOne", "url": "http://a/v2.1"},
                {"interface": "public", "region_id": "RegionTwo", "url": "http://two/v2.1"},
                {"interface": "public", "region_id": "RegionOne", "url": "http://one/v2.1"},
                {"interface": "internal", "region": "RegionOne", "url": "http://int/v2.1"}]}]}});
        let u = |i, r| catalog_url(&t, "compute", i, r);
        assert_eq!(
            u("public", Some("RegionOne")).as_deref(),
            Some("http://one/v2.1")
        );
        assert_eq!(
            u("publicURL", Some("RegionTwo")).as_deref(),
            Some("http://two/v2.1")
        );
        assert_eq!(u("public", None).as_deref(), Some("http://two/v2.1"));
        assert_eq!(
            u("internalURL", Some("RegionOne")).as_deref(),
            Some("http://int/v2.1")
        );
        assert_eq!(u("admin", None).as_deref(), Some("http://a/v2.1"));
        assert_eq!(u("admin", Some("RegionTwo")), None);
        assert_eq!(catalog_url(&t, "placement", "public", None), None);
    }

    #[test]
    fn errors_name_the_service() {
        let e = NovaError::Http {
            service: MASAKARI,
            what: "list Masakari segments".into(),
            status: 403,
            body: "{}".into(),
        };
        assert_eq!(
            e.to_string(),
            "list Masakari segments: Masakari answered HTTP 403: {}"
        );
        let e = NovaError::Unreachable {
            service: KEYSTONE,
            url: "http://k/v3/auth/tokens".into(),
            err: "refused".into(),
        };
        assert_eq!(
            e.to_string(),
            "cannot reach Keystone at http://k/v3/auth/tokens: refused"
        );
    }
}
