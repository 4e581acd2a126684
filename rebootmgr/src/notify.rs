//! Notifications (docs/rebootmgr.md, "Notifications"): on reboot starting,
//! node back and healthy, task failed and slot stuck, a webhook (a JSON POST
//! whose `text` field Slack and Mattermost show, plus structured fields) and
//! the Consul user event `chat_escalation`; and, while this node holds its
//! reboot slot, an Alertmanager silence of its alerts held as a lease: a
//! short `endsAt`, renewed while rebootmgr runs with the slot, so it lapses
//! by itself when rebootmgr dies or the node never comes back, and expired
//! when the slot is released.
//!
//! Nothing here may block or fail the reboot logic: every request has a
//! bounded timeout and its failure is logged only.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use umm_coord::consul::Consul;
use umm_core::fsutil::{format_time, now_unix};

/// The Consul event (the Python tool's name) for a chat bot to relay.
pub const CHAT_ESCALATION: &str = "chat_escalation";
/// Who the silences say created them; only these are renewed or expired.
pub const CREATED_BY: &str = "rebootmgr";

/// The `[notify]` table of rebootmgr's config file (and the flags/env).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Webhook URL (http:// or https://); empty: no webhook.
    pub webhook_url: String,
    /// Time limit of one webhook or Alertmanager request.
    pub timeout: String,
    /// Fire `chat_escalation` on every event (a failed task fires it always).
    pub chat_escalation: bool,
    /// Alertmanager base URL (e.g. http://alertmanager:9093); empty: no silence.
    pub alertmanager_url: String,
    /// The label the silence matches on.
    pub silence_label: String,
    /// Its value; empty: this node's name.
    pub silence_value: String,
    /// How long one renewal keeps the silence: longer than a reboot plus the
    /// timer's period, so a node that comes back renews it in time.
    pub silence_lease: String,
}

pub const DEFAULT_TIMEOUT: &str = "5s";
pub const DEFAULT_SILENCE_LABEL: &str = "node";
pub const DEFAULT_SILENCE_LEASE: &str = "30min";
/// The longest request time limit.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook_url: String::new(),
            timeout: DEFAULT_TIMEOUT.into(),
            chat_escalation: true,
            alertmanager_url: String::new(),
            silence_label: DEFAULT_SILENCE_LABEL.into(),
            silence_value: String::new(),
            silence_lease: DEFAULT_SILENCE_LEASE.into(),
        }
    }
}

/// Command-line values for [`NotifyConfig`] (None: not given).
#[derive(Debug, Clone, Default)]
pub struct NotifyFlags {
    pub webhook_url: Option<String>,
    pub timeout: Option<String>,
    pub no_chat_escalation: bool,
    pub alertmanager_url: Option<String>,
    pub silence_label: Option<String>,
    pub silence_value: Option<String>,
    pub silence_lease: Option<String>,
}

/// The environment variable of each setting (a flag wins over it).
pub const ENV: &[(&str, &str)] = &[
    ("webhook_url", "REBOOTMGR_WEBHOOK_URL"),
    ("timeout", "REBOOTMGR_NOTIFY_TIMEOUT"),
    ("alertmanager_url", "REBOOTMGR_ALERTMANAGER_URL"),
    ("silence_label", "REBOOTMGR_SILENCE_LABEL"),
    ("silence_value", "REBOOTMGR_SILENCE_VALUE"),
    ("silence_lease", "REBOOTMGR_SILENCE_LEASE"),
];

impl NotifyConfig {
    /// Flags, else the environment, else `self`.
    pub fn with_overrides(self, f: NotifyFlags) -> Self {
        self.with_overrides_from(f, |var| std::env::var(var).ok())
    }

    /// [`Self::with_overrides`] with `getenv` for the environment (tests).
    pub fn with_overrides_from(
        mut self,
        f: NotifyFlags,
        getenv: impl Fn(&str) -> Option<String>,
    ) -> Self {
        let env = |key: &str| {
            ENV.iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| getenv(v))
        };
        for (key, flag, field) in [
            ("webhook_url", f.webhook_url, &mut self.webhook_url),
            ("timeout", f.timeout, &mut self.timeout),
            (
                "alertmanager_url",
                f.alertmanager_url,
                &mut self.alertmanager_url,
            ),
            ("silence_label", f.silence_label, &mut self.silence_label),
            ("silence_value", f.silence_value, &mut self.silence_value),
            ("silence_lease", f.silence_lease, &mut self.silence_lease),
        ] {
            if let Some(v) = flag.or_else(|| env(key)) {
                *field = v;
            }
        }
        if f.no_chat_escalation {
            self.chat_escalation = false;
        }
        self
    }

    /// Checks the values and makes the notifier of `node`. Errors name the
    /// setting and say what is expected.
    pub fn notifier(&self, node: &str) -> Result<Notifier, String> {
        let timeout = bounded("timeout", &self.timeout, MAX_TIMEOUT)?;
        let webhook = url("webhook_url", &self.webhook_url)?;
        let alertmanager = url("alertmanager_url", &self.alertmanager_url)?
            .map(|base| {
                label(&self.silence_label)?;
                Ok::<_, String>(Alertmanager {
                    base: base.trim_end_matches('/').to_string(),
                    label: self.silence_label.clone(),
                    value: if self.silence_value.is_empty() {
                        node.to_string()
                    } else {
                        self.silence_value.clone()
                    },
                    lease: bounded(
                        "silence_lease",
                        &self.silence_lease,
                        umm_core::duration::MAX,
                    )?,
                    node: node.to_string(),
                })
            })
            .transpose()?;
        let https = webhook
            .iter()
            .chain(alertmanager.iter().map(|a| &a.base))
            .any(|u| u.starts_with("https://"));
        Ok(Notifier {
            node: node.to_string(),
            webhook,
            chat_escalation: self.chat_escalation,
            alertmanager,
            timeout,
            https,
        })
    }

    /// Every value checked, whether or not it is used (the config file's
    /// `[notify]` table: `rebootmgr check-config` reports any bad one).
    pub fn check(&self) -> Result<(), String> {
        bounded("timeout", &self.timeout, MAX_TIMEOUT)?;
        url("webhook_url", &self.webhook_url)?;
        url("alertmanager_url", &self.alertmanager_url)?;
        label(&self.silence_label)?;
        bounded(
            "silence_lease",
            &self.silence_lease,
            umm_core::duration::MAX,
        )?;
        Ok(())
    }
}

fn label(s: &str) -> Result<(), String> {
    if valid_label(s) {
        return Ok(());
    }
    Err(format!(
        "notify: silence_label '{s}' is not a Prometheus label name (letters, digits, _)"
    ))
}

fn bounded(key: &str, text: &str, max: Duration) -> Result<Duration, String> {
    match umm_core::duration::parse(text) {
        Ok(d) if d >= Duration::from_secs(1) && d <= max => Ok(d),
        Ok(_) => Err(format!(
            "notify: {key} '{text}': expected 1s to {}",
            umm_core::duration::format(max)
        )),
        Err(e) => Err(format!("notify: {key} '{text}': {e}")),
    }
}

fn url(key: &str, text: &str) -> Result<Option<String>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.starts_with("http://") || text.starts_with("https://") {
        return Ok(Some(text.to_string()));
    }
    Err(format!(
        "notify: {key} '{text}': expected an http:// or https:// URL (or empty for none)"
    ))
}

fn valid_label(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What happened, as the webhook's `event` field says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    RebootStarting,
    BackHealthy,
    TaskFailed,
    SlotStuck,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::RebootStarting => "reboot_starting",
            Event::BackHealthy => "back_healthy",
            Event::TaskFailed => "task_failed",
            Event::SlotStuck => "slot_stuck",
        }
    }
}

/// The resolved settings of one run. The default sends nothing but the
/// `chat_escalation` events.
#[derive(Debug, Clone)]
pub struct Notifier {
    node: String,
    webhook: Option<String>,
    chat_escalation: bool,
    alertmanager: Option<Alertmanager>,
    timeout: Duration,
    /// A URL is https://: certificates are checked against the system's CA
    /// bundle, as for Consul (umm_coord::tls).
    https: bool,
}

impl Default for Notifier {
    fn default() -> Self {
        NotifyConfig::default()
            .notifier("")
            .expect("the defaults are valid")
    }
}

/// The `chat_escalation` payload: "(<node>) (<group>) <message>" (the
/// Python tool's; `(<group>) ` only for a grouped node).
pub fn chat_body(node: &str, group: Option<&str>, message: &str) -> String {
    match group {
        Some(g) => format!("({node}) ({g}) {message}"),
        None => format!("({node}) {message}"),
    }
}

impl Notifier {
    fn agent(&self) -> ureq::Agent {
        let b = ureq::AgentBuilder::new()
            .timeout_connect(self.timeout)
            .timeout(self.timeout);
        if !self.https {
            return b.build();
        }
        match umm_coord::tls::client_config(&umm_coord::tls::TlsSettings::default()) {
            Ok(tls) => b.tls_config(tls).build(),
            Err(e) => {
                log::warn!("notify: the system CA bundle: {e}; using the built-in public roots");
                b.build()
            }
        }
    }

    /// Fires `chat_escalation` (unless turned off) and posts the webhook
    /// about `node` (this node, or the stuck one). Failures are logged.
    pub fn send(&self, c: &Consul, ev: Event, node: &str, group: Option<&str>, message: &str) {
        if self.chat_escalation {
            if let Err(e) = c.event_fire(CHAT_ESCALATION, &chat_body(node, group, message)) {
                log::error!("failed to fire the {CHAT_ESCALATION} event: {e}");
            }
        }
        self.webhook(ev, node, group, message);
    }

    /// Posts the webhook only (a failed task fires `chat_escalation` itself).
    pub fn webhook(&self, ev: Event, node: &str, group: Option<&str>, message: &str) {
        let Some(url) = &self.webhook else {
            return;
        };
        let now = now_unix();
        let body = json!({
            "text": format!("rebootmgr: {}", chat_body(node, group, message)),
            "event": ev.name(),
            "node": node,
            "group": group,
            "message": message,
            "reported_by": self.node,
            "time": now,
            "time_utc": format_time(now),
        });
        let started = Instant::now();
        match self
            .agent()
            .post(url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
        {
            Ok(_) => log::info!("webhook: {} sent", ev.name()),
            Err(e) => log::warn!(
                "webhook {}: {} not sent after {:.1} s: {}",
                redact(url),
                ev.name(),
                started.elapsed().as_secs_f64(),
                short(&e)
            ),
        }
    }

    /// While the slot is held: creates or renews the silence now and keeps
    /// renewing it in the background until the lease is dropped or stopped.
    /// None without an Alertmanager.
    pub fn hold_silence(&self) -> Option<Lease> {
        let am = self.alertmanager.clone()?;
        let agent = self.agent();
        match am.renew(&agent) {
            Ok(id) => log::info!(
                "alertmanager: silence {id} for {}=\"{}\" until {} from now",
                am.label,
                am.value,
                umm_core::duration::format(am.lease)
            ),
            Err(e) => log::warn!("alertmanager: could not set the silence: {e}"),
        }
        let quit = Arc::new(AtomicBool::new(false));
        let q2 = quit.clone();
        let every = (am.lease / 3).max(Duration::from_secs(1));
        let handle = std::thread::spawn(move || loop {
            let until = umm_core::duration::deadline(Instant::now(), every);
            while !q2.load(Ordering::SeqCst) && Instant::now() < until {
                std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
            }
            if q2.load(Ordering::SeqCst) {
                return;
            }
            if let Err(e) = am.renew(&agent) {
                log::warn!("alertmanager: could not renew the silence: {e}");
            }
        });
        Some(Lease {
            quit,
            handle: Some(handle),
        })
    }

    /// The slot is held on across a reboot: the renewing stops, the silence
    /// stays until its `endsAt` (renewed last right before the reboot).
    pub fn keep_silence(&self, lease: Option<Lease>) {
        drop(lease);
    }

    /// One renewal (or creation) of the silence, no background renewing:
    /// right before the reboot command (so the whole lease covers the
    /// reboot), and for a run that ends with the slot still held and no
    /// work to do (the landing zone's exit 9).
    pub fn renew_silence(&self) {
        if let Some(am) = &self.alertmanager {
            if let Err(e) = am.renew(&self.agent()) {
                log::warn!("alertmanager: could not renew the silence: {e}");
            }
        }
    }

    /// The slot was released: the renewing stops and the silence is expired.
    pub fn release_silence(&self, lease: Option<Lease>) {
        let (Some(lease), Some(am)) = (lease, &self.alertmanager) else {
            return;
        };
        drop(lease);
        match am.expire(&self.agent()) {
            Ok(0) => {}
            Ok(n) => log::info!("alertmanager: {n} silence(s) of this node expired"),
            Err(e) => {
                log::warn!("alertmanager: could not expire the silence (it lapses by itself): {e}")
            }
        }
    }
}

/// The background renewal of a silence; dropping it stops the renewing (the
/// silence then lapses at its `endsAt`).
pub struct Lease {
    quit: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

/// Alertmanager API v2: the silence `label="value"` made by rebootmgr.
#[derive(Debug, Clone)]
struct Alertmanager {
    base: String,
    label: String,
    value: String,
    lease: Duration,
    node: String,
}

impl Alertmanager {
    fn matchers(&self) -> Value {
        json!([{"name": self.label, "value": self.value, "isRegex": false, "isEqual": true}])
    }

    /// Our active or pending silences: (id, startsAt).
    fn ours(&self, agent: &ureq::Agent) -> Result<Vec<(String, String)>, String> {
        let url = format!("{}/api/v2/silences", self.base);
        let v: Value = agent
            .get(&url)
            .call()
            .map_err(|e| short(&e))?
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| format!("GET {}: the answer is not JSON", redact(&url)))?;
        let want = self.matchers();
        Ok(v.as_array()
            .into_iter()
            .flatten()
            .filter(|s| {
                s["createdBy"] == CREATED_BY
                    && matches!(s["status"]["state"].as_str(), Some("active" | "pending"))
                    && same_matchers(&s["matchers"], &want)
            })
            .filter_map(|s| {
                Some((
                    s["id"].as_str()?.to_string(),
                    s["startsAt"].as_str()?.to_string(),
                ))
            })
            .collect())
    }

    /// Creates the silence, or moves the `endsAt` of ours (same id, same
    /// `startsAt`: Alertmanager updates an active silence in place only
    /// then). Returns its id.
    fn renew(&self, agent: &ureq::Agent) -> Result<String, String> {
        let now = now_unix();
        let ends = rfc3339(now.saturating_add(self.lease.as_secs()));
        let mut body = json!({
            "matchers": self.matchers(),
            "startsAt": rfc3339(now),
            "endsAt": ends,
            "createdBy": CREATED_BY,
            "comment": format!(
                "rebootmgr: {} holds its reboot slot; a lease renewed while it does, it lapses by itself \
                 (renewed every {} for {})",
                self.node,
                umm_core::duration::format((self.lease / 3).max(Duration::from_secs(1))),
                umm_core::duration::format(self.lease)
            ),
        });
        if let Some((id, starts)) = self.ours(agent)?.into_iter().next() {
            body["id"] = json!(id);
            body["startsAt"] = json!(starts);
        }
        let url = format!("{}/api/v2/silences", self.base);
        let v: Value = agent
            .post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .map_err(|e| short(&e))?
            .into_string()
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| format!("POST {}: the answer is not JSON", redact(&url)))?;
        v["silenceID"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("POST {}: no silenceID in {v}", redact(&url)))
    }

    /// Expires every silence of ours; returns how many.
    fn expire(&self, agent: &ureq::Agent) -> Result<usize, String> {
        let ours = self.ours(agent)?;
        for (id, _) in &ours {
            agent
                .delete(&format!("{}/api/v2/silence/{id}", self.base))
                .call()
                .map_err(|e| short(&e))?;
        }
        Ok(ours.len())
    }
}

fn same_matchers(got: &Value, want: &Value) -> bool {
    let key = |m: &Value| {
        (
            m["name"].as_str().map(str::to_string),
            m["value"].as_str().map(str::to_string),
            m["isRegex"].as_bool().unwrap_or(false),
            m["isEqual"].as_bool().unwrap_or(true),
        )
    };
    match (got.as_array(), want.as_array()) {
        (Some(g), Some(w)) => g.len() == w.len() && g.iter().zip(w).all(|(a, b)| key(a) == key(b)),
        _ => false,
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
fn rfc3339(unix: u64) -> String {
    let [y, mo, d, h, mi, s] = umm_core::duration::utc_parts(unix);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A URL for a log line: no user info or query (they may hold a token).
fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    format!("{scheme}://{host}/…")
}

/// A ureq error without the URL (it may hold a token).
fn short(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Status(code, r) => format!("HTTP {code} {}", r.status_text()),
        ureq::Error::Transport(t) => t
            .message()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{:?}", t.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_table() {
        let d = NotifyConfig::default();
        assert_eq!(d.timeout, "5s");
        assert_eq!(d.silence_label, "node");
        assert_eq!(d.silence_lease, "30min");
        assert!(d.chat_escalation && d.webhook_url.is_empty() && d.alertmanager_url.is_empty());
        let c: NotifyConfig = toml::from_str(
            "webhook_url = \"http://127.0.0.1:1/h\"\nsilence_label = \"instance\"\nsilence_value = \"n1:9100\"",
        )
        .unwrap();
        let n = c.notifier("n1").unwrap();
        let am = n.alertmanager.clone();
        assert!(am.is_none());
        assert_eq!(n.webhook.as_deref(), Some("http://127.0.0.1:1/h"));
        assert!(toml::from_str::<NotifyConfig>("webhook = \"x\"").is_err());
    }

    #[test]
    fn a_flag_wins_over_the_environment_which_wins_over_the_file() {
        // Only this test touches these variables.
        std::env::set_var("REBOOTMGR_SILENCE_LABEL", "instance");
        std::env::set_var("REBOOTMGR_WEBHOOK_URL", "http://127.0.0.1:1/env");
        let file = NotifyConfig {
            silence_label: "host".into(),
            silence_lease: "1h".into(),
            ..Default::default()
        };
        let c = file.clone().with_overrides(NotifyFlags {
            webhook_url: Some("http://127.0.0.1:1/flag".into()),
            no_chat_escalation: true,
            ..Default::default()
        });
        std::env::remove_var("REBOOTMGR_SILENCE_LABEL");
        std::env::remove_var("REBOOTMGR_WEBHOOK_URL");
        assert_eq!(c.silence_label, "instance");
        assert_eq!(c.webhook_url, "http://127.0.0.1:1/flag");
        assert_eq!(c.silence_lease, "1h");
        assert!(!c.chat_escalation);
        assert_eq!(
            file.with_overrides(NotifyFlags::default()).silence_label,
            "host"
        );
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut c = NotifyConfig {
            alertmanager_url: "http://am:9093/".into(),
            ..Default::default()
        };
        let n = c.notifier("n1").unwrap();
        let am = n.alertmanager.unwrap();
        assert_eq!(
            (am.base.as_str(), am.value.as_str()),
            ("http://am:9093", "n1")
        );
        assert_eq!(am.lease, Duration::from_secs(1800));
        c.silence_lease = "30".into();
        let e = c.notifier("n1").unwrap_err();
        assert!(e.contains("silence_lease"), "{e}");
        c.silence_lease = "1h".into();
        c.silence_label = "in-stance".into();
        assert!(c.notifier("n1").unwrap_err().contains("silence_label"));
        c.silence_label = "node".into();
        c.timeout = "10min".into();
        assert!(c.notifier("n1").unwrap_err().contains("timeout"));
        c.timeout = "5s".into();
        c.webhook_url = "hooks.example/x".into();
        assert!(c.notifier("n1").unwrap_err().contains("webhook_url"));
    }

    /// docs/rebootmgr.md states every default of the notifications as the
    /// code has it, and docs/metrics.md the metrics file's.
    #[test]
    fn the_documented_defaults_are_the_codes() {
        // Words, not lines: a phrase may be wrapped.
        let doc = include_str!("../../docs/rebootmgr.md")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for (env, default) in [
            ("REBOOTMGR_NOTIFY_TIMEOUT", DEFAULT_TIMEOUT),
            ("REBOOTMGR_SILENCE_LABEL", DEFAULT_SILENCE_LABEL),
            ("REBOOTMGR_SILENCE_LEASE", DEFAULT_SILENCE_LEASE),
        ] {
            let want = format!("env `{env}`, default `{default}`");
            assert!(doc.contains(&want), "docs/rebootmgr.md lacks {want}");
        }
        assert!(doc.contains(&format!(
            "at most `{}`",
            umm_core::duration::format(MAX_TIMEOUT)
        )));
        for (_, env) in ENV {
            assert!(doc.contains(env), "docs/rebootmgr.md lacks {env}");
        }
        let metrics = include_str!("../../docs/metrics.md");
        for f in [
            crate::metrics::DEFAULT_FILE,
            umm_core::config::DEFAULT_METRICS_FILE,
        ] {
            assert!(
                metrics.contains(&format!("| `{f}` |")),
                "docs/metrics.md lacks {f}"
            );
        }
        assert!(doc.contains(crate::metrics::ENV_FILE));
        // The key table of "Configuration files": every key of both tables
        // with its default, as the vendor file has them.
        for t in [
            toml::Table::try_from(NotifyConfig::default()).unwrap(),
            toml::Table::try_from(crate::metrics::MetricsConfig::default()).unwrap(),
        ] {
            for (k, v) in t {
                let want = format!("`{k} = {v}`");
                assert!(doc.contains(&want), "docs/rebootmgr.md lacks {want}");
            }
        }
    }

    #[test]
    fn times_and_redaction() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            redact("https://user:tok@hooks.example:8443/services/T/B?x=1"),
            "https://hooks.example:8443/…"
        );
        assert_eq!(
            chat_body("n1", Some("g"), "rebooting n1"),
            "(n1) (g) rebooting n1"
        );
        assert_eq!(chat_body("n1", None, "m"), "(n1) m");
    }
}
