//! The drain: enter (disable → migrate → wait empty → in-maintenance), leave
//! (re-enable only umm's own disable), retry, abort. docs/compute-host.md.

use crate::nova::{migration_in_flight, Free, Nova, NovaError, Server};
use crate::state::{HostState, Kind, Mode, Requested, ServerProgress, Step, Store};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;
use umm_core::fsutil::{self, Wait};

/// Prefix of every disabled_reason umm sets: `umm:<UTC time>:<why>`.
pub const REASON_PREFIX: &str = "umm:";

/// Which servers the drain moves.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// Live-migrate ACTIVE servers; the host must end empty.
    Active,
    /// Migrate nothing: only stop scheduling.
    None,
}

/// What happens to SHUTOFF servers.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Shutoff {
    /// Cold-migrate them (migrate, then confirm resize); they stay SHUTOFF, the host ends empty.
    Migrate,
    /// Leave them on the host; they do not keep it from maintenance.
    Leave,
}

/// What happens to a live migration still running at its timeout.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OnTimeout {
    /// Cancel it (the server stays on the host; it counts as a failed attempt).
    Abort,
    /// Pause the guest and finish it (`force_complete`).
    ForceComplete,
}

/// The drain's knobs; defaults in [`Policy::default`] and docs/compute-host.md.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct Policy {
    pub servers: Selection,
    /// Live migrations in flight from this host at once.
    pub max_in_flight: u32,
    /// Seconds one live migration may take before `on_timeout`.
    pub migration_timeout: u64,
    pub on_timeout: OnTimeout,
    /// Seconds the whole drain may take; at it the drain fails (mode error)
    /// and the host stays disabled.
    pub deadline: u64,
    /// Extra attempts per server after a failed migration.
    pub retries: u32,
    /// Seconds the host must stay empty before it is in maintenance.
    pub settle: u64,
    /// Milliseconds between polls of Nova.
    pub poll_ms: u64,
    /// Migrations in flight across all hosts (Nova's records), `None`: no limit.
    pub max_total: Option<u32>,
    pub shutoff: Shutoff,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            servers: Selection::Active,
            max_in_flight: 2,
            migration_timeout: 600,
            on_timeout: OnTimeout::Abort,
            deadline: 3600,
            retries: 1,
            settle: 30,
            poll_ms: 2000,
            max_total: None,
            shutoff: Shutoff::Migrate,
        }
    }
}

#[derive(Debug)]
pub enum DrainError {
    Nova(NovaError),
    /// Local trouble (state file, lock, bad input): nothing was changed in Nova by this step.
    Local(String),
    /// The drain ended in mode error; the state says why.
    Failed(String),
    /// Another umm process drives this host.
    Busy(String),
    /// A precheck refused to start (nothing was changed).
    Refused(String),
}

impl std::fmt::Display for DrainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DrainError::Nova(e) => e.fmt(f),
            DrainError::Local(m)
            | DrainError::Failed(m)
            | DrainError::Busy(m)
            | DrainError::Refused(m) => f.write_str(m),
        }
    }
}

impl From<NovaError> for DrainError {
    fn from(e: NovaError) -> Self {
        DrainError::Nova(e)
    }
}

type Result<T> = std::result::Result<T, DrainError>;

fn local<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> DrainError + '_ {
    move |e| DrainError::Local(format!("{what}: {e}"))
}

pub fn rfc3339(unix: u64) -> String {
    let [y, m, d, hh, mm, ss] = umm_core::duration::utc_parts(unix);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// Whether a service's disabled_reason is umm's own.
pub fn is_umm_reason(reason: Option<&str>) -> bool {
    reason.is_some_and(|r| r.starts_with(REASON_PREFIX))
}

pub struct Drain<'a> {
    pub nova: &'a Nova,
    pub store: &'a Store,
    /// Progress lines go here (stdout for the CLI).
    pub out: &'a mut dyn FnMut(&str),
}

/// Holds the per-host lock.
struct Held(#[allow(dead_code)] fsutil::Lock);

impl Drain<'_> {
    fn say(&mut self, msg: String) {
        (self.out)(&msg);
    }

    fn lock(&self, host: &str, wait: Wait) -> Result<Held> {
        fsutil::lock_exclusive(&self.store.lock_path(host), wait)
            .map(Held)
            .map_err(|e| match e {
                fsutil::LockError::Busy => DrainError::Busy(format!(
                    "another umm process is driving host {host} (lock {}): wait for it, or \
                     'umm host abort {host}'",
                    self.store.lock_path(host).display()
                )),
                other => DrainError::Local(other.to_string()),
            })
    }

    fn save(&self, st: &mut HostState) -> Result<()> {
        self.store
            .save(st)
            .map_err(local("cannot write the drain state"))
    }

    /// The capacity precheck: can the servers the policy moves fit on the
    /// other enabled, up compute hosts? Free vCPU and RAM per host from
    /// Placement (inventory − usage, allocation ratios applied), servers placed
    /// largest first on the host with the most free RAM that fits.
    pub fn capacity(&self, host: &str, policy: &Policy) -> Result<Capacity> {
        let servers = self.nova.servers_on(host)?;
        let mut need: Vec<&Server> = servers
            .iter()
            .filter(|s| initial(policy, s).0 == Step::Pending)
            .collect();
        let targets: Vec<String> = self
            .nova
            .compute_services()?
            .into_iter()
            .filter(|s| s.host != host && s.status == "enabled" && s.state == "up")
            .map(|s| s.host)
            .collect();
        let hvs = self.nova.hypervisors()?;
        let mut free = Vec::new();
        for t in &targets {
            let mut f = Free::default();
            for hv in hvs.iter().filter(|h| &h.host == t) {
                let one = self.nova.placement_free(&hv.id)?;
                f.vcpus += one.vcpus;
                f.ram_mb += one.ram_mb;
            }
            free.push((t.clone(), f));
        }
        let mut cap = Capacity {
            servers: need.len(),
            need: Free {
                vcpus: need.iter().map(|s| s.vcpus).sum(),
                ram_mb: need.iter().map(|s| s.ram_mb).sum(),
            },
            free: Free {
                vcpus: free.iter().map(|(_, f)| f.vcpus).sum(),
                ram_mb: free.iter().map(|(_, f)| f.ram_mb).sum(),
            },
            hosts: free.len(),
            unplaced: Vec::new(),
        };
        need.sort_by_key(|s| std::cmp::Reverse((s.ram_mb, s.vcpus)));
        for s in need {
            let best = free
                .iter_mut()
                .filter(|(_, f)| f.vcpus >= s.vcpus && f.ram_mb >= s.ram_mb)
                .max_by_key(|(_, f)| (f.ram_mb, f.vcpus));
            match best {
                Some((_, f)) => {
                    f.vcpus -= s.vcpus;
                    f.ram_mb -= s.ram_mb;
                }
                None => cap
                    .unplaced
                    .push(format!("{} ({} vCPU, {} MiB)", s.id, s.vcpus, s.ram_mb)),
            }
        }
        Ok(cap)
    }

    /// The plan `enter --dry-run` prints: reads Nova, changes nothing.
    pub fn plan(&mut self, host: &str, policy: &Policy) -> Result<String> {
        let svc = self.nova.compute_service(host)?;
        let servers = self.nova.servers_on(host)?;
        let mut p = String::new();
        let _ = writeln!(
            p,
            "Nova {} (microversion {}), Placement {}, Masakari {}",
            self.nova.base(),
            self.nova.microversion(),
            self.nova.placement_endpoint().unwrap_or("none"),
            self.nova.masakari_endpoint().unwrap_or("none")
        );
        let _ = writeln!(
            p,
            "host {host}: nova-compute {} ({}){}",
            svc.status,
            svc.state,
            svc.disabled_reason
                .as_deref()
                .map(|r| format!(", disabled_reason {r:?}"))
                .unwrap_or_default()
        );
        if self.nova.has_masakari() {
            match self.nova.masakari_hosts(host) {
                Ok(hs) if hs.is_empty() => {
                    let _ = writeln!(p, "Masakari knows no host {host} in any segment");
                }
                Ok(hs) => {
                    for h in hs {
                        let _ = writeln!(
                            p,
                            "Masakari segment {} host {}: {}",
                            h.segment,
                            h.uuid,
                            if h.on_maintenance {
                                "already on_maintenance: would be left alone"
                            } else {
                                "would set on_maintenance"
                            }
                        );
                    }
                }
                Err(e) => {
                    let _ = writeln!(p, "Masakari: {e}; enter would fail on it");
                }
            }
        }
        if svc.status == "enabled" {
            let _ = writeln!(
                p,
                "would disable it with disabled_reason \"umm:<now>:<why>\""
            );
        } else if is_umm_reason(svc.disabled_reason.as_deref()) {
            let _ = writeln!(p, "already disabled by umm: would resume");
        } else {
            let _ = writeln!(
                p,
                "already disabled by someone else: would drain, and 'leave' would keep it disabled"
            );
        }
        let (mv, skip): (Vec<&Server>, Vec<&Server>) = servers
            .iter()
            .partition(|s| initial(policy, s).0 == Step::Pending);
        let _ = writeln!(
            p,
            "would migrate {} server(s) (ACTIVE live, SHUTOFF {}), at most {} in flight{}, \
             timeout {} s ({:?} at it), {} retr{}:",
            mv.len(),
            match policy.shutoff {
                Shutoff::Migrate => "cold",
                Shutoff::Leave => "left",
            },
            policy.max_in_flight,
            policy
                .max_total
                .map(|t| format!(" ({t} across all hosts)"))
                .unwrap_or_default(),
            policy.migration_timeout,
            policy.on_timeout,
            policy.retries,
            if policy.retries == 1 { "y" } else { "ies" }
        );
        for s in &mv {
            let how = match initial(policy, s).1 {
                Kind::Live => "live",
                Kind::Cold => "cold",
            };
            let _ = writeln!(p, "  {} {} {} ({how})", s.id, s.name, s.status);
        }
        if policy.servers != Selection::None {
            match self.capacity(host, policy) {
                Ok(c) => {
                    let _ = writeln!(p, "{}", c.summary());
                    if !c.unplaced.is_empty() {
                        let _ = writeln!(p, "{}", c.refusal(host));
                    }
                }
                Err(e) => {
                    let _ = writeln!(p, "capacity precheck impossible: {e}");
                }
            }
        }
        if !skip.is_empty() {
            let _ = writeln!(p, "would leave {} server(s) on the host:", skip.len());
            for s in &skip {
                let _ = writeln!(p, "  {} {} {}", s.id, s.name, s.status);
            }
            if policy.servers != Selection::None {
                let _ = writeln!(
                    p,
                    "so the host would not end empty: the drain would end in mode error"
                );
            }
        }
        let _ = write!(
            p,
            "then wait until the host stays empty for {} s (deadline {} s)",
            policy.settle, policy.deadline
        );
        Ok(p)
    }

    /// enter: disable, migrate, wait empty. Resumes a state left by a killed
    /// run. A fresh drain first runs the capacity precheck unless `force`.
    pub fn enter(
        &mut self,
        host: &str,
        why: &str,
        policy: &Policy,
        force: bool,
    ) -> Result<HostState> {
        let _held = self.lock(host, Wait::No)?;
        let _ = std::fs::remove_file(self.store.abort_path(host));
        let now = fsutil::now_unix();
        let loaded = self.store.load(host).map_err(DrainError::Local)?;
        let fresh = !matches!(&loaded, Some(st) if st.requested == Requested::Maintenance && st.mode != Mode::Active);
        if fresh && policy.servers != Selection::None {
            match self.capacity(host, policy) {
                Ok(c) if c.unplaced.is_empty() => self.say(format!("{host}: {}", c.summary())),
                Ok(c) if force => self.say(format!(
                    "{host}: {}; {} server(s) do not fit: going on anyway (--force)",
                    c.summary(),
                    c.unplaced.len()
                )),
                Ok(c) => {
                    return Err(DrainError::Refused(format!(
                        "{host}: {}; {}",
                        c.summary(),
                        c.refusal(host)
                    )))
                }
                Err(e) if force => self.say(format!(
                    "{host}: capacity precheck impossible ({e}): going on anyway (--force)"
                )),
                Err(e) => {
                    return Err(DrainError::Refused(format!(
                        "{host}: capacity precheck impossible: {e}; nothing was changed \
                         (--force drains without it)"
                    )))
                }
            }
        }
        let mut st = match loaded {
            Some(st) if st.requested == Requested::Maintenance && st.mode != Mode::Active => {
                self.say(format!(
                    "{host}: resuming the drain started {} (mode {})",
                    rfc3339(st.started),
                    st.mode.as_str()
                ));
                if st.mode == Mode::InMaintenance {
                    return Ok(st);
                }
                if st.mode == Mode::Error {
                    return Err(DrainError::Failed(format!(
                        "{host} is in mode error: {}; 'umm host retry {host}' or 'umm host abort {host}' first",
                        st.error.as_deref().unwrap_or("?")
                    )));
                }
                st
            }
            _ => HostState {
                host: host.to_string(),
                requested: Requested::Maintenance,
                mode: Mode::Disabling,
                why: why.to_string(),
                umm_disabled_reason: None,
                operator_disabled_reason: None,
                policy: policy.clone(),
                started: now,
                updated: now,
                empty_since: None,
                error: None,
                servers: Vec::new(),
                masakari: Vec::new(),
            },
        };
        if st.mode == Mode::Disabling {
            self.save(&mut st)?;
            self.disable(&mut st)?;
        }
        self.migrate(&mut st)
    }

    /// Masakari (if configured): `on_maintenance` on every segment's host of
    /// this name, so that Masakari does not evacuate a host in maintenance.
    fn masakari_on(&mut self, st: &mut HostState) -> Result<()> {
        if !self.nova.has_masakari() {
            return Ok(());
        }
        let hosts = self.nova.masakari_hosts(&st.host)?;
        if hosts.is_empty() {
            self.say(format!("{}: Masakari knows no host of this name", st.host));
        }
        for h in hosts {
            let mine = st
                .masakari
                .iter()
                .any(|m| m.segment == h.segment && m.uuid == h.uuid);
            if h.on_maintenance {
                self.say(if mine {
                    format!(
                        "{}: Masakari segment {}: on_maintenance already set by umm",
                        st.host, h.segment
                    )
                } else {
                    format!(
                        "{}: Masakari segment {}: already on_maintenance, not by umm: left alone \
                         ('leave' keeps it)",
                        st.host, h.segment
                    )
                });
                continue;
            }
            // recorded but not set: a resumed drain whose PUT did not happen (killed between)
            if !mine {
                st.masakari.push(h.clone());
                self.save(st)?; // before the PUT: leave clears it even after a crash
            }
            self.nova.masakari_set(&h, true)?;
            self.say(format!(
                "{}: Masakari segment {}: on_maintenance set",
                st.host, h.segment
            ));
        }
        Ok(())
    }

    fn disable(&mut self, st: &mut HostState) -> Result<()> {
        self.masakari_on(st)?;
        let svc = self.nova.compute_service(&st.host)?;
        if svc.status == "enabled" {
            let reason = format!("{REASON_PREFIX}{}:{}", rfc3339(fsutil::now_unix()), st.why);
            // record the intent first: a crash right after the PUT still knows it is ours
            st.umm_disabled_reason = Some(reason.clone());
            self.save(st)?;
            self.nova.set_service(&svc.id, Some(&reason))?;
            self.say(format!("{}: nova-compute disabled ({reason})", st.host));
        } else if is_umm_reason(svc.disabled_reason.as_deref()) {
            st.umm_disabled_reason = svc.disabled_reason.clone();
            self.say(format!("{}: nova-compute already disabled by umm", st.host));
        } else {
            st.operator_disabled_reason = Some(svc.disabled_reason.clone().unwrap_or_default());
            self.say(format!(
                "{}: nova-compute already disabled by the operator ({:?}); 'leave' will keep it disabled",
                st.host,
                svc.disabled_reason.as_deref().unwrap_or("")
            ));
        }
        st.mode = Mode::Migrating;
        self.save(st)
    }

    fn fail(&mut self, st: &mut HostState, msg: String) -> Result<HostState> {
        st.mode = Mode::Error;
        st.error = Some(msg.clone());
        self.save(st)?;
        Err(DrainError::Failed(format!(
            "{}: {msg}; the host stays disabled: 'umm host retry {}' or 'umm host abort {}'",
            st.host, st.host, st.host
        )))
    }

    fn migrate(&mut self, st: &mut HostState) -> Result<HostState> {
        let host = st.host.clone();
        let policy = st.policy.clone();
        if policy.servers == Selection::None {
            st.mode = Mode::InMaintenance;
            self.save(st)?;
            self.say(format!(
                "{host}: in maintenance (servers = none: nothing migrated)"
            ));
            return Ok(st.clone());
        }
        let mut said_total = false;
        loop {
            let now = fsutil::now_unix();
            if self.store.abort_path(&host).exists() {
                self.save(st)?;
                return Err(DrainError::Busy(format!(
                    "{host}: abort requested: stopping"
                )));
            }
            if now >= st.started + policy.deadline {
                let left = st.count(Step::Pending) + st.count(Step::Migrating);
                return self.fail(
                    st,
                    format!(
                        "deadline of {} s passed with {left} server(s) not yet moved",
                        policy.deadline
                    ),
                );
            }
            let on_host = self.nova.servers_on(&host)?;
            // new servers (first pass, or something landed despite the disable)
            for s in &on_host {
                let (step, kind, fault) = initial(&policy, s);
                match st.servers.iter_mut().find(|p| p.id == s.id) {
                    None => st.servers.push(ServerProgress {
                        id: s.id.clone(),
                        name: s.name.clone(),
                        step,
                        kind,
                        confirmed: false,
                        attempts: 0,
                        migration: None,
                        started: None,
                        timed_out: false,
                        dest: None,
                        fault,
                    }),
                    // came back, or its status changed (started, stopped)
                    Some(p)
                        if matches!(p.step, Step::Done | Step::Skipped | Step::Left)
                            && p.step != step =>
                    {
                        (p.step, p.kind, p.fault) = (step, kind, fault);
                    }
                    _ => {}
                }
            }
            self.reconcile(st)?;
            // in flight: ours, or Nova's own records (a restarted tool, someone else's migration)
            let nova_flight = self
                .nova
                .migrations_from(&host, None)?
                .into_iter()
                .filter(|m| migration_in_flight(&m.status))
                .count();
            let mut in_flight = st.count(Step::Migrating).max(nova_flight);
            let wants = in_flight < policy.max_in_flight as usize && st.count(Step::Pending) > 0;
            // the total across hosts: Nova's in-flight records of every host, counted
            // and acted on under a machine-wide lock (docs/compute-host.md)
            let mut total_room = usize::MAX;
            let total_lock = match policy.max_total {
                Some(max) if wants => {
                    let lock = fsutil::lock_exclusive(
                        &self.store.dir().join("max-total.lock"),
                        Wait::UpTo(Duration::from_secs(60)),
                    )
                    .map_err(|e| DrainError::Local(format!("max-total lock: {e}")))?;
                    let all = self.nova.all_migrations()?;
                    let total = all
                        .iter()
                        .filter(|m| migration_in_flight(&m.status))
                        .count();
                    total_room = (max as usize).saturating_sub(total);
                    if total_room == 0 && !said_total {
                        self.say(format!(
                            "{host}: {total} migration(s) in flight across all hosts \
                             (max-total {max}): waiting"
                        ));
                    }
                    said_total = total_room == 0;
                    Some((lock, all.iter().map(|m| m.id).max().unwrap_or(0)))
                }
                _ => None,
            };
            let mut requested = 0usize;
            while in_flight < policy.max_in_flight as usize && total_room > 0 {
                let Some(i) = st.servers.iter().position(|p| p.step == Step::Pending) else {
                    break;
                };
                let id = st.servers[i].id.clone();
                let kind = st.servers[i].kind;
                st.servers[i].attempts += 1;
                st.servers[i].started = Some(fsutil::now_unix());
                st.servers[i].timed_out = false;
                st.servers[i].confirmed = false;
                st.servers[i].migration = None;
                st.servers[i].step = Step::Migrating;
                // persisted before the request: a crash after it still knows it was asked
                self.save(st)?;
                let r = match kind {
                    Kind::Live => self.nova.live_migrate(&id),
                    Kind::Cold => self.nova.cold_migrate(&id),
                };
                match r {
                    Ok(()) => {
                        self.say(format!(
                            "{host}: {} {id} ({}), attempt {}",
                            match kind {
                                Kind::Live => "live-migrating",
                                Kind::Cold => "cold-migrating",
                            },
                            st.servers[i].name,
                            st.servers[i].attempts
                        ));
                        in_flight += 1;
                        total_room -= 1;
                        requested += 1;
                    }
                    Err(e) => {
                        let p = &mut st.servers[i];
                        p.fault = Some(e.to_string());
                        p.step = if p.attempts > policy.retries {
                            Step::Failed
                        } else {
                            Step::Pending
                        };
                        self.say(format!("{host}: {id}: migration refused: {e}"));
                        self.save(st)?;
                        if p_step(st, i) == Step::Pending {
                            break; // try again at the next poll
                        }
                    }
                }
            }
            // Nova's conductor creates the migration record after the API's 202: keep the
            // lock until the records of the requests made are there, so that the next
            // drain's count sees them (at most 10 s)
            if let Some((lock, max_id)) = total_lock {
                let started = requested;
                let end = std::time::Instant::now() + Duration::from_secs(10);
                while started > 0 && std::time::Instant::now() < end {
                    let new = self
                        .nova
                        .all_migrations()?
                        .iter()
                        .filter(|m| m.id > max_id)
                        .count();
                    if new >= started {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                drop(lock);
            }
            let busy = st.count(Step::Pending) + st.count(Step::Migrating);
            if busy == 0 {
                let failed: Vec<String> = st
                    .servers
                    .iter()
                    .filter(|p| p.step == Step::Failed)
                    .map(|p| format!("{} ({})", p.id, p.fault.as_deref().unwrap_or("?")))
                    .collect();
                if !failed.is_empty() {
                    return self.fail(
                        st,
                        format!(
                            "{} server(s) failed to migrate: {}",
                            failed.len(),
                            failed.join(", ")
                        ),
                    );
                }
                // SHUTOFF servers left by the policy do not count
                let left = |s: &Server| {
                    st.servers
                        .iter()
                        .any(|p| p.id == s.id && p.step == Step::Left)
                };
                let on_host: Vec<&Server> = on_host.iter().filter(|s| !left(s)).collect();
                if on_host.is_empty() {
                    let since = *st.empty_since.get_or_insert(now);
                    if now >= since + policy.settle {
                        st.mode = Mode::InMaintenance;
                        st.error = None;
                        self.save(st)?;
                        let kept = st.count(Step::Left);
                        self.say(format!(
                            "{host}: empty for {} s: in maintenance ({} server(s) moved{})",
                            policy.settle,
                            st.count(Step::Done),
                            if kept > 0 {
                                format!(", {kept} SHUTOFF server(s) left on the host")
                            } else {
                                String::new()
                            }
                        ));
                        return Ok(st.clone());
                    }
                } else if on_host.iter().all(|s| {
                    st.servers
                        .iter()
                        .any(|p| p.id == s.id && p.step == Step::Skipped)
                }) {
                    let names: Vec<String> = on_host
                        .iter()
                        .map(|s| format!("{} ({})", s.id, s.status))
                        .collect();
                    return self.fail(
                        st,
                        format!(
                            "host not empty: {} not selected for migration",
                            names.join(", ")
                        ),
                    );
                } else {
                    st.empty_since = None;
                }
            } else {
                st.empty_since = None;
            }
            self.save(st)?;
            std::thread::sleep(Duration::from_millis(policy.poll_ms));
        }
    }

    /// Updates every migrating server from Nova.
    fn reconcile(&mut self, st: &mut HostState) -> Result<()> {
        let host = st.host.clone();
        let policy = st.policy.clone();
        let now = fsutil::now_unix();
        for i in 0..st.servers.len() {
            if st.servers[i].step != Step::Migrating {
                continue;
            }
            let id = st.servers[i].id.clone();
            let Some(srv) = self.nova.server(&id)? else {
                let p = &mut st.servers[i];
                p.step = Step::Done;
                p.fault = Some("deleted during the drain".into());
                continue;
            };
            if st.servers[i].kind == Kind::Cold {
                self.reconcile_cold(st, i, &srv)?;
                continue;
            }
            let flight = self.nova.server_migrations(&id)?;
            if let Some(m) = flight.iter().find(|m| migration_in_flight(&m.status)) {
                let p = &mut st.servers[i];
                p.migration = Some(m.id);
                let started = p.started.unwrap_or(now);
                if !p.timed_out && now >= started + policy.migration_timeout {
                    p.timed_out = true;
                    let r = match policy.on_timeout {
                        OnTimeout::Abort => self.nova.abort_migration(&id, m.id),
                        OnTimeout::ForceComplete => self.nova.force_complete(&id, m.id),
                    };
                    let what = format!("{:?}", policy.on_timeout).to_lowercase();
                    match r {
                        Ok(()) => self.say(format!(
                            "{host}: {id}: migration {} still {} after {} s: {what}",
                            m.id, m.status, policy.migration_timeout
                        )),
                        Err(e) => self.say(format!(
                            "{host}: {id}: {what} of migration {} refused: {e}",
                            m.id
                        )),
                    }
                }
                continue;
            }
            let p = &mut st.servers[i];
            if moved_off(&srv, &host) && srv.task_state.is_none() {
                p.step = Step::Done;
                p.dest = srv.host.clone();
                p.fault = None;
                self.say(format!(
                    "{host}: {id} now on {}",
                    srv.host.as_deref().unwrap_or("?")
                ));
            } else if srv.task_state.is_none() {
                // the migration ended and the server is still here
                let (last, mut fault) = self.ended(&host, &srv, Kind::Live)?;
                if p.timed_out {
                    fault = format!("timed out after {} s; {fault}", policy.migration_timeout);
                }
                let p = &mut st.servers[i];
                p.migration = last;
                p.fault = Some(fault.clone());
                p.step = if srv.status == "ERROR" || p.attempts > policy.retries {
                    Step::Failed
                } else {
                    Step::Pending
                };
                self.say(format!(
                    "{host}: {id}: {fault} ({})",
                    if p.step == Step::Failed {
                        "failed"
                    } else {
                        "will retry"
                    }
                ));
            }
        }
        Ok(())
    }

    /// Why a migration of `srv` from `host` ended without moving it: Nova's
    /// last migration record of the server (its id and final status) and the
    /// server's fault.
    fn ended(&self, host: &str, srv: &Server, kind: Kind) -> Result<(Option<u64>, String)> {
        let (mtype, what) = match kind {
            Kind::Live => ("live-migration", "live"),
            Kind::Cold => ("migration", "cold"),
        };
        let last = self
            .nova
            .migrations_from(host, Some(mtype))?
            .into_iter()
            .filter(|m| m.server == srv.id)
            .max_by_key(|m| m.id);
        let mut fault = match &last {
            Some(m) => format!("migration {} ended {}", m.id, m.status),
            None => format!("the {what} migration ended without moving the server"),
        };
        if let Some(f) = &srv.fault {
            let _ = write!(fault, ": {f}");
        }
        Ok((last.map(|m| m.id), fault))
    }

    /// A cold migration: confirm it at VERIFY_RESIZE, done once the server is
    /// elsewhere with no task; back on the host with no task: the attempt failed.
    /// (Nova cannot cancel a cold migration: no per-migration timeout; the
    /// drain's deadline bounds it.)
    fn reconcile_cold(&mut self, st: &mut HostState, i: usize, srv: &Server) -> Result<()> {
        let host = st.host.clone();
        let id = st.servers[i].id.clone();
        if srv.status == "VERIFY_RESIZE" {
            if !st.servers[i].confirmed {
                st.servers[i].confirmed = true;
                self.save(st)?;
                match self.nova.confirm_resize(&id) {
                    Ok(()) => self.say(format!(
                        "{host}: {id} cold-migrated to {}: confirming",
                        srv.host.as_deref().unwrap_or("?")
                    )),
                    Err(e) => {
                        st.servers[i].confirmed = false;
                        self.say(format!("{host}: {id}: confirm refused: {e}"))
                    }
                }
            }
            return Ok(());
        }
        if srv.task_state.is_some() {
            return Ok(());
        }
        if moved_off(srv, &host) {
            let p = &mut st.servers[i];
            p.step = Step::Done;
            p.dest = srv.host.clone();
            p.fault = None;
            self.say(format!(
                "{host}: {id} now on {} ({})",
                srv.host.as_deref().unwrap_or("?"),
                srv.status
            ));
            return Ok(());
        }
        let (last, fault) = self.ended(&host, srv, Kind::Cold)?;
        let retries = st.policy.retries;
        let p = &mut st.servers[i];
        p.migration = last;
        p.fault = Some(fault.clone());
        p.step = if srv.status == "ERROR" || p.attempts > retries {
            Step::Failed
        } else {
            Step::Pending
        };
        let what = if p.step == Step::Failed {
            "failed"
        } else {
            "will retry"
        };
        self.say(format!("{host}: {id}: {fault} ({what})"));
        Ok(())
    }

    /// retry: failed servers get fresh attempts, the drain continues (mode migrating).
    pub fn retry(&mut self, host: &str, change: &dyn Fn(Policy) -> Policy) -> Result<HostState> {
        {
            let _held = self.lock(host, Wait::No)?;
            let mut st = self.existing(host)?;
            if st.mode != Mode::Error {
                return Err(DrainError::Local(format!(
                    "{host} is in mode {}, not error: nothing to retry",
                    st.mode.as_str()
                )));
            }
            for p in st.servers.iter_mut().filter(|p| p.step == Step::Failed) {
                p.step = Step::Pending;
                p.attempts = 0;
            }
            st.mode = if st.umm_disabled_reason.is_some() || st.operator_disabled_reason.is_some() {
                Mode::Migrating
            } else {
                Mode::Disabling
            };
            // a new deadline for the new attempt
            st.started = fsutil::now_unix();
            st.policy = change(st.policy.clone());
            st.error = None;
            self.save(&mut st)?;
        }
        let policy = self.existing(host)?.policy;
        let why = self.existing(host)?.why;
        self.enter(host, &why, &policy, false)
    }

    /// abort: stop a drain (a running one is asked to stop), cancel its
    /// migrations in flight, end in mode error with the host still disabled.
    pub fn abort(&mut self, host: &str) -> Result<HostState> {
        let held = match self.lock(host, Wait::No) {
            Ok(h) => h,
            Err(DrainError::Busy(_)) => {
                fsutil::write_atomic(&self.store.abort_path(host), b"abort\n", 0o644)
                    .map_err(local("cannot ask the running drain to stop"))?;
                self.say(format!("{host}: asked the running drain to stop"));
                self.lock(host, Wait::UpTo(Duration::from_secs(120)))?
            }
            Err(e) => return Err(e),
        };
        let _ = std::fs::remove_file(self.store.abort_path(host));
        let mut st = self.existing(host)?;
        st.mode = Mode::Aborting;
        self.save(&mut st)?;
        let mut waiting = Vec::new();
        for p in st.servers.iter().filter(|p| p.step == Step::Migrating) {
            for m in self.nova.server_migrations(&p.id)? {
                if !migration_in_flight(&m.status) {
                    continue;
                }
                match self.nova.abort_migration(&p.id, m.id) {
                    Ok(()) => self.say(format!("{host}: {}: migration {} aborted", p.id, m.id)),
                    Err(e) => self.say(format!(
                        "{host}: {}: abort of migration {} refused: {e}",
                        p.id, m.id
                    )),
                }
                waiting.push(p.id.clone());
            }
        }
        let end =
            std::time::Instant::now() + Duration::from_secs(st.policy.migration_timeout.max(30));
        for id in &waiting {
            while std::time::Instant::now() < end
                && self
                    .nova
                    .server_migrations(id)?
                    .iter()
                    .any(|m| migration_in_flight(&m.status))
            {
                std::thread::sleep(Duration::from_millis(st.policy.poll_ms));
            }
        }
        let on_host = self.nova.servers_on(host)?;
        for p in st
            .servers
            .iter_mut()
            .filter(|p| p.step == Step::Migrating || p.step == Step::Pending)
        {
            if on_host.iter().any(|s| s.id == p.id) {
                p.step = Step::Failed;
                p.fault = Some("aborted by the operator".into());
            } else {
                p.step = Step::Done;
            }
        }
        st.mode = Mode::Error;
        st.error = Some(format!(
            "aborted by the operator; nova-compute stays disabled: 'umm host leave {host}' re-enables it, \
             'umm host retry {host}' continues the drain"
        ));
        self.save(&mut st)?;
        drop(held);
        Ok(st)
    }

    /// leave: re-enable nova-compute if the disable is umm's own.
    pub fn leave(&mut self, host: &str) -> Result<HostState> {
        let _held = self.lock(host, Wait::No)?;
        let now = fsutil::now_unix();
        let mut st = match self.store.load(host).map_err(DrainError::Local)? {
            Some(st) => st,
            None => HostState {
                host: host.to_string(),
                requested: Requested::Active,
                mode: Mode::Enabling,
                why: String::new(),
                umm_disabled_reason: None,
                operator_disabled_reason: None,
                policy: Policy::default(),
                started: now,
                updated: now,
                empty_since: None,
                error: None,
                servers: Vec::new(),
                masakari: Vec::new(),
            },
        };
        if matches!(st.mode, Mode::Migrating | Mode::Disabling | Mode::Aborting) {
            return Err(DrainError::Local(format!(
                "{host} is in mode {}: the drain has not finished; 'umm host abort {host}' first",
                st.mode.as_str()
            )));
        }
        st.requested = Requested::Active;
        st.mode = Mode::Enabling;
        self.save(&mut st)?;
        let svc = self.nova.compute_service(host)?;
        if svc.status == "enabled" {
            self.say(format!("{host}: nova-compute already enabled"));
        } else if is_umm_reason(svc.disabled_reason.as_deref()) {
            self.nova.set_service(&svc.id, None)?;
            self.say(format!(
                "{host}: nova-compute enabled (was {:?})",
                svc.disabled_reason.as_deref().unwrap_or("")
            ));
        } else {
            self.say(format!(
                "{host}: nova-compute stays disabled: the disable is not umm's (disabled_reason {:?})",
                svc.disabled_reason.as_deref().unwrap_or("")
            ));
        }
        // what Masakari has now: a recorded host no longer listed (deleted) or no longer
        // on_maintenance (cleared by someone, or never set because the PUT failed) needs no PUT
        let now_in = if st.masakari.is_empty() {
            Vec::new()
        } else if !self.nova.has_masakari() {
            // never drop the records unseen: Masakari would stay on_maintenance for ever
            return Err(DrainError::Failed(format!(
                "{host}: the drain set on_maintenance in Masakari (segment {}) but no Masakari \
                 endpoint is configured now: set OS_MASAKARI_ENDPOINT (or use the Keystone \
                 credentials whose catalog lists instance-ha) and run 'umm host leave {host}' again",
                st.masakari[0].segment
            )));
        } else {
            self.nova.masakari_hosts(host)?
        };
        while let Some(h) = st.masakari.first().cloned() {
            let cur = now_in
                .iter()
                .find(|c| c.segment == h.segment && c.uuid == h.uuid);
            let res = match cur {
                None => Err(format!("no longer has host {}", h.uuid)),
                Some(c) if !c.on_maintenance => Err("not on_maintenance".to_string()),
                Some(_) => match self.nova.masakari_set(&h, false) {
                    Ok(()) => Ok(()),
                    // deleted between the GET and the PUT
                    Err(NovaError::Http { status: 404, .. }) => {
                        Err(format!("no longer has host {}", h.uuid))
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            self.say(match res {
                Ok(()) => format!(
                    "{host}: Masakari segment {}: on_maintenance cleared",
                    h.segment
                ),
                Err(why) => format!(
                    "{host}: Masakari segment {} {why}: nothing to clear",
                    h.segment
                ),
            });
            st.masakari.remove(0);
            self.save(&mut st)?;
        }
        st.mode = Mode::Active;
        st.error = None;
        self.save(&mut st)?;
        Ok(st)
    }

    fn existing(&self, host: &str) -> Result<HostState> {
        self.store
            .load(host)
            .map_err(DrainError::Local)?
            .ok_or_else(|| {
                DrainError::Local(format!(
                    "no drain state for {host}: 'umm host enter {host}' first"
                ))
            })
    }
}

fn p_step(st: &HostState, i: usize) -> Step {
    st.servers[i].step
}

/// What the policy does with a server found on the host: its step, how it
/// moves, and why it does not.
fn initial(policy: &Policy, s: &Server) -> (Step, Kind, Option<String>) {
    match (policy.servers, s.status.as_str(), policy.shutoff) {
        (Selection::None, ..) => (
            Step::Skipped,
            Kind::Live,
            Some("servers = none: not moved".into()),
        ),
        (_, "ACTIVE", _) => (Step::Pending, Kind::Live, None),
        (_, "SHUTOFF", Shutoff::Migrate) => (Step::Pending, Kind::Cold, None),
        (_, "SHUTOFF", Shutoff::Leave) => (
            Step::Left,
            Kind::Cold,
            Some("SHUTOFF: left on the host (shutoff = leave)".into()),
        ),
        (_, other, _) => (
            Step::Skipped,
            Kind::Live,
            Some(format!(
                "status {other}: not moved (only ACTIVE and SHUTOFF servers are)"
            )),
        ),
    }
}

/// The capacity precheck's result ([`Drain::capacity`]).
#[derive(Debug, Clone)]
pub struct Capacity {
    /// Servers to move and what they need together.
    pub servers: usize,
    pub need: Free,
    /// Enabled, up compute hosts other than the drained one, and their free capacity together.
    pub hosts: usize,
    pub free: Free,
    /// Servers that fit on no host (largest first, each on the host with most free RAM).
    pub unplaced: Vec<String>,
}

impl Capacity {
    pub fn summary(&self) -> String {
        format!(
            "capacity: {} server(s) to move need {} vCPU, {} MiB RAM; {} enabled host(s) have \
             {} vCPU, {} MiB free (Placement)",
            self.servers,
            self.need.vcpus,
            self.need.ram_mb,
            self.hosts,
            self.free.vcpus,
            self.free.ram_mb
        )
    }

    pub fn refusal(&self, host: &str) -> String {
        format!(
            "not enough free capacity on the enabled compute hosts for {}: refusing to drain \
             {host}, nothing was changed; free capacity (enable a host, stop or move servers) \
             or give --force to drain anyway",
            self.unplaced.join(", ")
        )
    }
}

/// Whether `srv`, as just read from Nova, is on another host than `host`.
/// Decided on this read alone: the host listing of the same poll is older,
/// and a migration that completes between the two would otherwise look like
/// one that ended with the server still here (seen in the Nova lab: "migration
/// 19 ended completed (failed)"). A server whose host Nova does not show
/// (not an admin's view) has not moved as far as we know.
fn moved_off(srv: &Server, host: &str) -> bool {
    srv.host.as_deref().is_some_and(|h| h != host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srv_on(host: Option<&str>) -> Server {
        Server {
            host: host.map(str::to_string),
            ..Server::default()
        }
    }

    #[test]
    fn moved_is_decided_on_the_fresh_read_of_the_server() {
        // The listing of this poll still had it on compute1; the read after
        // it shows compute2: moved.
        assert!(moved_off(&srv_on(Some("compute2")), "compute1"));
        assert!(!moved_off(&srv_on(Some("compute1")), "compute1"));
        assert!(!moved_off(&srv_on(None), "compute1"));
    }

    #[test]
    fn reasons() {
        assert!(is_umm_reason(Some("umm:2026-12-02T01:00:00Z:kernel")));
        assert!(!is_umm_reason(Some("broken disk")));
        assert!(!is_umm_reason(Some("Umm:x")));
        assert!(!is_umm_reason(None));
    }

    #[test]
    fn rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_176_800), "2026-12-02T02:00:00Z");
    }
}
