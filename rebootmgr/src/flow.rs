//! One rebootmgr run: either the pre-boot flow that ends in a reboot, or the
//! post-boot phase of a node that finds its own reboot marker.
//!
//! Pre-boot: triggers → stop flags → node enabled → lock → health → pre-boot
//! tasks → settle wait → stop flags, trigger, lock and health again → markers →
//! node maintenance → reboot. Every failure before the markers leaves the
//! cluster as it was (slot released, nothing written).
//!
//! Post-boot: stop flags → health (optionally waiting) → post-boot tasks →
//! health → maintenance off → keys removed → slot released.

use crate::decide::{self, Phase};
use crate::exit::{Abort, Exit};
use crate::local::{HOLIDAYS, POST_BOOT_TASKS, PRE_BOOT_TASKS};
use crate::metrics::note_reboot_required;
use crate::notify::{chat_body, Event, Lease, Notifier, CHAT_ESCALATION};
use crate::progress::Progress;
use crate::trigger::{self, Trigger};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use umm_coord::consul::Consul;
use umm_coord::health;
use umm_coord::lock::{Semaphore, Session};
use umm_coord::protocol::{
    self, read_node_config, shared_marker_node, stop_flag_set, Keys, Marker, MarkerOwner,
    NodeConfig, TAG, TAG_POSTBOOT, TAG_PREBOOT,
};
use umm_core::paths::Root;
use umm_core::tasks;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reboot {
    /// Run this command (argv); success means the reboot is under way.
    Command(Vec<String>),
    /// Append "<node> <unix time>" to this file instead (tests, benchmark).
    Record(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub root: Root,
    pub node: String,
    /// Overrides the group from the node's config.
    pub group: Option<String>,
    pub check_triggers: bool,
    /// Sentinel command asked with --check-triggers (exit 1 = reboot needed).
    pub trigger_command: Option<Vec<String>>,
    pub dry_run: bool,
    pub settle: Duration,
    pub max_parallel: u32,
    pub session_ttl: Duration,
    pub task_timeout: Duration,
    pub kill_grace: Duration,
    /// Post-boot: wait up to this long for checks to pass (None: fail at once).
    pub wait_until_healthy: Option<Duration>,
    pub reboot: Reboot,
    /// How often stop flags are polled during waits and tasks.
    pub poll: Duration,
    /// A marker whose boot id is still ours and younger than this means the
    /// reboot is still on its way, not that it failed.
    pub reboot_grace: Duration,
    /// The Python tool's overrides: stop flags, a disabled node config,
    /// failing checks and members (not Consul's quorum) are ignored.
    pub ignore_stop_flag: bool,
    pub ignore_node_disabled: bool,
    pub ignore_failed_checks: bool,
    /// `--check-holidays`: no reboot on a day listed in /etc/rebootmgr/holidays.
    pub check_holidays: bool,
    /// Reboot windows from the config files (Consul KV may replace them; window.rs).
    pub windows: Vec<crate::window::Window>,
    /// Webhook, chat_escalation events, the Alertmanager silence (notify.rs).
    pub notify: Notifier,
}

impl Settings {
    pub fn new(node: &str) -> Settings {
        Settings {
            root: Root::default(),
            node: node.to_string(),
            group: None,
            check_triggers: false,
            trigger_command: None,
            dry_run: false,
            settle: Duration::from_secs(130),
            max_parallel: 1,
            session_ttl: Duration::from_secs(600),
            task_timeout: Duration::from_secs(2 * 3600),
            kill_grace: tasks::DEFAULT_KILL_GRACE,
            wait_until_healthy: None,
            reboot: Reboot::Command(vec!["systemctl".into(), "reboot".into()]),
            poll: Duration::from_secs(1),
            reboot_grace: Duration::from_secs(15 * 60),
            ignore_stop_flag: false,
            ignore_node_disabled: false,
            ignore_failed_checks: false,
            check_holidays: false,
            windows: Vec::new(),
            notify: Notifier::default(),
        }
    }
}

/// What a successful run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    NothingToDo(String),
    DryRun,
    RebootIssued,
    PostBootFinished,
}

/// Polls the stop flags in the background so waits and tasks notice a flag
/// within `poll`.
struct StopWatch {
    flag: Arc<AtomicBool>,
    reason: Arc<Mutex<Option<String>>>,
    quit: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl StopWatch {
    fn start(c: &Consul, s: &Settings, keys: &Keys) -> StopWatch {
        let flag = Arc::new(AtomicBool::new(false));
        let reason = Arc::new(Mutex::new(None));
        let quit = Arc::new(AtomicBool::new(false));
        if s.ignore_stop_flag {
            return StopWatch {
                flag,
                reason,
                quit,
                handle: None,
            };
        }
        let poll = s.poll;
        let (c, keys, f2, r2, q2) = (
            c.clone(),
            keys.clone(),
            flag.clone(),
            reason.clone(),
            quit.clone(),
        );
        let handle = std::thread::spawn(move || {
            while !q2.load(Ordering::SeqCst) {
                match stop_flag_set(&c, &keys).map(decide::stop_flag) {
                    Ok(Err(a)) => {
                        *r2.lock().unwrap_or_else(|p| p.into_inner()) = Some(a.message);
                        f2.store(true, Ordering::SeqCst);
                        return;
                    }
                    Ok(Ok(_)) => {}
                    Err(e) => log::warn!("reading stop flags: {e}"),
                }
                // Drop unparks us: quitting costs no polling delay.
                let until = umm_core::duration::deadline(Instant::now(), poll);
                while !q2.load(Ordering::SeqCst) {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    std::thread::park_timeout(until - now);
                }
            }
        });
        StopWatch {
            flag,
            reason,
            quit,
            handle: Some(handle),
        }
    }

    fn check(&self) -> Result<(), Abort> {
        if self.flag.load(Ordering::SeqCst) {
            let r = self
                .reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            return Err(Abort::new(
                Exit::StopFlag,
                r.unwrap_or_else(|| "stop flag set".into()),
            ));
        }
        Ok(())
    }
}

impl Drop for StopWatch {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn check_stop(c: &Consul, s: &Settings, keys: &Keys) -> Result<(), Abort> {
    let r = decide::stop_flag(stop_flag_set(c, keys)?).map(drop);
    match r {
        Err(a) if s.ignore_stop_flag => {
            log::warn!("--ignore-stop-flag: {}", a.message);
            Ok(())
        }
        r => r,
    }
}

/// The node config's verdict, `--ignore-node-disabled` applied (a missing
/// or unreadable config still ends the run).
fn check_enabled(
    s: &Settings,
    keys: &Keys,
    config: Option<&Result<NodeConfig, String>>,
) -> Result<Option<Done>, Abort> {
    match decide::node_config(keys, config) {
        Err(a) if a.exit == Exit::NodeDisabled && s.ignore_node_disabled => {
            log::warn!("--ignore-node-disabled: {}", a.message);
            Ok(None)
        }
        r => r,
    }
}

/// `--check-holidays`: today must not be in the calendar.
fn check_holiday(s: &Settings) -> Result<(), Abort> {
    if !s.check_holidays {
        return Ok(());
    }
    let path = std::path::Path::new(HOLIDAYS);
    let text = umm_core::fsutil::read_text(&s.root, path, &umm_core::fsutil::Policy::CONFIG)
        .map_err(|e| Abort::new(Exit::Error, format!("--check-holidays: {e}")))?
        .ok_or_else(|| {
            Abort::new(
                Exit::Error,
                format!("--check-holidays: {HOLIDAYS} is missing (list the holidays there, one YYYY-MM-DD a line)"),
            )
        })?;
    let days = crate::holiday::parse(path, &text).map_err(|e| Abort::new(Exit::Error, e))?;
    let today = crate::holiday::today();
    match days.iter().find(|(d, _)| *d == today) {
        Some((d, name)) => Err(Abort::new(
            Exit::Holiday,
            format!("refusing to reboot on a holiday: {d} {name} ({HOLIDAYS})")
                .trim_end()
                .to_string(),
        )),
        None => Ok(()),
    }
}

/// The trigger, read only with `--check-triggers` (without, the command
/// line asked for the reboot).
fn trigger(c: &Consul, s: &Settings, keys: &Keys) -> Result<Option<Trigger>, Abort> {
    if !s.check_triggers {
        return Ok(None);
    }
    trigger::reboot_required(c, &s.root, keys, s.trigger_command.as_deref())
}

/// The other nodes holding one of this group's reboot slots, with
/// `--max-parallel` above 1 (with 1 there are none besides this node).
fn slot_peers(c: &Consul, s: &Settings, keys: &Keys) -> Result<Vec<String>, Abort> {
    if s.max_parallel <= 1 {
        return Ok(Vec::new());
    }
    let (state, _, _) = Semaphore::for_keys(keys, s.max_parallel).read(c)?;
    Ok(state
        .holders
        .into_keys()
        .filter(|n| *n != s.node && !n.starts_with("session:"))
        .collect())
}

fn health(c: &Consul, s: &Settings, keys: &Keys, phase_tag: &str) -> Result<(), Abort> {
    let node = s.node.as_str();
    let mut whitelist =
        protocol::read_whitelist(c)?.map_err(|e| Abort::new(Exit::NotConfigured, e))?;
    if !whitelist.is_empty() {
        log::warn!(
            "ignoring failing checks and members of {} ({})",
            whitelist.join(", "),
            protocol::IGNORE_FAILED_CHECKS
        );
    }
    // N at a time: the group's other slot holders are the N-1 reboots this
    // one may run beside; counting their checks (down, or in maintenance)
    // would allow only one, and two nodes back from their reboots at once
    // would wait for each other for ever.
    let peers = slot_peers(c, s, keys)?;
    if !peers.is_empty() {
        log::info!(
            "not counting the checks and membership of {}: they hold this group's other reboot slots (--max-parallel {})",
            peers.join(", "),
            s.max_parallel
        );
        whitelist.extend(peers);
    }
    let members = if s.ignore_failed_checks {
        Vec::new()
    } else {
        health::check_members(c, &whitelist)?
    };
    if !members.is_empty() {
        return decide::health(members, vec![], vec![]).map(drop);
    }
    // Before the reboot only (taking the slot, and again after the settle
    // wait): going down must not cost Consul its Raft quorum. After the
    // reboot the node is back and adds to the quorum, never takes from it.
    let quorum = if phase_tag == TAG_PREBOOT {
        health::check_quorum(c, node)?
    } else {
        Vec::new()
    };
    if !quorum.is_empty() {
        return decide::health(members, quorum, vec![]).map(drop);
    }
    if s.ignore_failed_checks {
        log::warn!("--ignore-failed-checks: service checks and members are not looked at");
        return Ok(());
    }
    let failing = health::check_services_ignoring(c, node, &[TAG, phase_tag], &whitelist)?;
    decide::health(members, quorum, failing).map(drop)
}

fn task_env(s: &Settings, keys: &Keys, phase: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("REBOOTMGR_NODE".to_string(), s.node.clone()),
        ("REBOOTMGR_PHASE".to_string(), phase.to_string()),
        (
            "REBOOTMGR_GROUP".to_string(),
            keys.group.clone().unwrap_or_default(),
        ),
    ];
    if s.dry_run {
        env.push(("REBOOTMGR_DRY_RUN".to_string(), "1".to_string()));
    }
    env
}

fn run_tasks(
    c: &Consul,
    s: &Settings,
    keys: &Keys,
    dir: &str,
    phase: &str,
    stop: &StopWatch,
) -> Result<(), Abort> {
    match tasks::run_dir_until(
        &s.root,
        std::path::Path::new(dir),
        &task_env(s, keys, phase),
        s.task_timeout,
        s.kill_grace,
        &stop.flag,
    ) {
        Ok(done) => {
            log::info!("{} {phase} task(s) done", done.len());
            Ok(())
        }
        Err(e) => match decide::task_failure(&e) {
            Some(a) => {
                task_failed(c, s, keys, &a);
                Err(a)
            }
            None => {
                stop.check()?;
                Err(Abort::new(Exit::StopFlag, "stop flag set during tasks"))
            }
        },
    }
}

/// A failed task needs an operator: like the Python tool, a task that
/// timed out disables the node (else the timer retries the hanging task
/// every few minutes), and every failure fires a `chat_escalation` Consul
/// event "(<node>) (<group>) <message>". Neither may hide the failure: their
/// own errors are logged only.
fn task_failed(c: &Consul, s: &Settings, keys: &Keys, a: &Abort) {
    let mut message = a.message.clone();
    if a.exit == Exit::TaskTimedOut && !s.dry_run {
        let why = format!("disabled by rebootmgr: {}", a.message);
        match protocol::disable_node(c, &s.node, &why) {
            Ok(()) => {
                log::error!("{}: {why}", keys.config());
                message = format!("{message}; node disabled ({})", keys.config());
            }
            Err(e) => log::error!("disabling the node after the task timeout: {e}"),
        }
    }
    let body = chat_body(&s.node, keys.group.as_deref(), &message);
    if let Err(e) = c.event_fire(CHAT_ESCALATION, &body) {
        log::error!("failed to fire the {CHAT_ESCALATION} event: {e}");
    }
    s.notify
        .webhook(Event::TaskFailed, &s.node, keys.group.as_deref(), &message);
}

/// Sleeps `d`, returning early with the reason when a stop flag appears or
/// the session is lost.
fn wait(
    d: Duration,
    stop: &StopWatch,
    session: Option<&Session>,
    mut progress: Option<&mut Progress>,
) -> Result<(), Abort> {
    let until = umm_core::duration::deadline(Instant::now(), d);
    loop {
        if let Some(p) = progress.as_deref_mut() {
            p.tick(None);
        }
        stop.check()?;
        if session.is_some_and(Session::is_lost) {
            return Err(Abort::new(
                Exit::LockLost,
                "Consul session expired while waiting",
            ));
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(Duration::from_millis(100)));
    }
}

/// The whole run. `Ok` is exit 0.
pub fn run(c: &Consul, s: &Settings) -> Result<Done, Abort> {
    if protocol::migrate_node_config(c, &s.node)? {
        log::warn!(
            "migrated the old-style config of {} ({{\"disabled\": …}} → {{\"enabled\": …}})",
            s.node
        );
    }
    let config = read_node_config(c, &s.node)?;
    let keys = Keys::choose(&s.node, s.group.as_deref(), config.as_ref());
    let marker = c
        .kv_get(&keys.marker())?
        .map(|e| Marker::parse(&e.value_str()));
    let shared = match marker {
        Some(_) => None,
        None => shared_marker_node(c, &keys)?.map(|(n, _)| n),
    };
    match decide::phase(&keys, marker, shared.as_deref())? {
        Phase::PostBoot(marker) => post_boot(c, s, &keys, &marker),
        Phase::PreBoot => pre_boot(c, s, &keys, config),
    }
}

/// Ends the run when a step says so.
macro_rules! step {
    ($e:expr) => {
        if let Some(done) = $e? {
            return Ok(done);
        }
    };
}

fn pre_boot(
    c: &Consul,
    s: &Settings,
    keys: &Keys,
    config: Option<Result<NodeConfig, String>>,
) -> Result<Done, Abort> {
    let trig = trigger(c, s, keys)?;
    note_reboot_required(!s.check_triggers || trig.is_some());
    step!(decide::required(
        s.check_triggers,
        trig.as_ref(),
        "no reboot required"
    ));
    match &trig {
        Some(t) => log::info!("reboot required: {}", t.describe()),
        None => log::info!("reboot requested on the command line"),
    }
    check_holiday(s)?;
    crate::window::gate(c, s, keys)?;
    check_stop(c, s, keys)?;
    step!(check_enabled(s, keys, config.as_ref()));
    let in_catalog = c.node_address(&s.node)?.is_some();
    step!(decide::registered(
        &s.node,
        in_catalog,
        !in_catalog && c.agent_node_name().is_ok_and(|n| n == s.node)
    ));
    if s.max_parallel <= 1 {
        let holder = shared_marker_node(c, keys)?.map(|(n, _)| n);
        step!(decide::shared_marker(
            keys,
            s.max_parallel,
            holder.as_deref()
        ));
    }
    let sem = Semaphore::for_keys(keys, s.max_parallel);
    let session = Session::create(c, &format!("rebootmgr {}", s.node), s.session_ttl)?;
    step!(decide::slot(sem.try_acquire(c, &s.node, &session.id)?));
    log::info!("took a reboot slot in {}", sem.lock_key());
    let mut silence = None;
    let result = holding_slot(c, s, keys, &sem, &session, &mut silence);
    if !matches!(result, Ok(Done::RebootIssued)) {
        if let Err(e) = sem.release(c, &s.node) {
            log::error!("releasing the reboot slot: {e}");
        }
        s.notify.release_silence(silence);
    } else {
        s.notify.keep_silence(silence);
    }
    result
}

fn holding_slot(
    c: &Consul,
    s: &Settings,
    keys: &Keys,
    sem: &Semaphore,
    session: &Session,
    silence: &mut Option<Lease>,
) -> Result<Done, Abort> {
    health(c, s, keys, TAG_PREBOOT)?;
    // Healthy: the slot is held for the tasks and the wait, so are the
    // node's alerts (not for a refusal that releases the slot at once).
    *silence = s.notify.hold_silence();
    let stop = StopWatch::start(c, s, keys);
    // A panic from here on (a bug) still undoes the pre-boot tasks and
    // releases the slot, and ends with Exit::Internal, never a code that
    // means something else.
    let result = catch_panic(|| {
        run_tasks(c, s, keys, PRE_BOOT_TASKS, "pre_boot", &stop)?;
        fake_panic("after-pre-boot-tasks");
        after_pre_boot_tasks(c, s, keys, sem, session, &stop)
    });
    if matches!(&result, Err(a) if a.exit == Exit::Internal) {
        // If the marker was written before the panic, take the reboot
        // state back (our marker, our maintenance); otherwise leave
        // Consul's node maintenance alone: an operator may have set it.
        if let Ok(Some(_)) = c.kv_get(&keys.marker()) {
            clear_reboot_state(c, s, keys);
        }
    }
    if !decide::undo_pre_boot_tasks(&result, s.dry_run) {
        return result;
    }
    // The pre-boot tasks may have prepared the node (evacuated, disabled a
    // service): the post-boot tasks bring it back, told why by the phase.
    log::warn!("no reboot after the pre-boot tasks: running the post-boot tasks to undo them");
    match run_tasks(c, s, keys, POST_BOOT_TASKS, "abort", &stop) {
        Ok(()) => result,
        Err(u) => Err(decide::undo_failed(u, &result)),
    }
}

/// Runs `f`; a panic in it becomes `Exit::Internal` with its message.
fn catch_panic<T>(f: impl FnOnce() -> Result<T, Abort>) -> Result<T, Abort> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Err(Abort::new(
                Exit::Internal,
                format!("internal error (a bug; please report it): {what}"),
            ))
        }
    }
}

/// Test hook: `REBOOTMGR_FAKE_PANIC=<point>` panics at that point, so the
/// tests can prove what a panic leaves behind (docs/rebootmgr.md).
fn fake_panic(point: &str) {
    if std::env::var("REBOOTMGR_FAKE_PANIC").as_deref() == Ok(point) {
        panic!("REBOOTMGR_FAKE_PANIC={point} (test hook)");
    }
}

fn after_pre_boot_tasks(
    c: &Consul,
    s: &Settings,
    keys: &Keys,
    sem: &Semaphore,
    session: &Session,
    stop: &StopWatch,
) -> Result<Done, Abort> {
    let work_started = Instant::now();
    let mut p = Progress::new("settle wait", Some(s.settle), Instant::now());
    wait(s.settle, stop, Some(session), Some(&mut p))?;
    check_stop(c, s, keys)?;
    // An operator may have disabled the node during the wait.
    step!(check_enabled(
        s,
        keys,
        read_node_config(c, &s.node)?.as_ref()
    ));
    let trig = trigger(c, s, keys)?;
    note_reboot_required(!s.check_triggers || trig.is_some());
    step!(decide::required(
        s.check_triggers,
        trig.as_ref(),
        "reboot no longer required"
    ));
    step!(decide::slot_kept(
        !session.is_lost() && sem.holds(c, &s.node, &session.id)?
    ));
    health(c, s, keys, TAG_PREBOOT)?;
    log::debug!("pre-boot phase took {:?}", work_started.elapsed());
    if s.dry_run {
        log::info!("dry run: all checks passed, would reboot {} now", s.node);
        return Ok(Done::DryRun);
    }

    let marker = Marker {
        owner: MarkerOwner::Rebootmgr,
        boot_id: umm_core::state::read_boot_id(&s.root),
        since: umm_core::fsutil::now_unix(),
        group: keys.group.clone(),
    };
    // "The slot is ours" becomes a Consul-side fact here: the session is
    // renewed, then the marker is written in one transaction with checks of
    // `.lock` and of the session (Semaphore::commit).
    step!(decide::slot_kept(
        session.renew_now()?
            && sem.commit(c, &s.node, &session.id, &keys.marker(), &marker.to_json())?
    ));
    // Only the first of N concurrent reboots fits the Python tool's marker.
    let _ = c.kv_cas(&keys.shared_marker(), &s.node, 0);
    let issued = c
        .set_node_maintenance(&s.node, true, &format!("rebootmgr: rebooting {}", s.node))
        .map_err(Abort::from)
        .and_then(|_| {
            s.notify.renew_silence();
            let msg = format!("rebooting {}", s.node);
            s.notify.send(
                c,
                Event::RebootStarting,
                &s.node,
                keys.group.as_deref(),
                &msg,
            );
            reboot(s)
        });
    if let Err(e) = issued {
        log::error!("{e}; rolling back");
        clear_reboot_state(c, s, keys);
        return Err(Abort::new(Exit::RebootFailed, e.message));
    }
    Ok(Done::RebootIssued)
}

fn reboot(s: &Settings) -> Result<(), Abort> {
    match &s.reboot {
        Reboot::Record(path) => {
            use std::io::Write;
            let line = format!("{} {}\n", s.node, umm_core::fsutil::now_unix());
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| {
                    Abort::new(
                        Exit::RebootFailed,
                        format!("recording the reboot in {}: {e}", path.display()),
                    )
                })?;
            log::info!("reboot recorded in {}", path.display());
            Ok(())
        }
        Reboot::Command(argv) => {
            let (prog, args) = argv
                .split_first()
                .ok_or_else(|| Abort::new(Exit::RebootFailed, "empty reboot command"))?;
            log::info!("rebooting: {}", argv.join(" "));
            let st = std::process::Command::new(prog)
                .args(args)
                .status()
                .map_err(|e| Abort::new(Exit::RebootFailed, format!("{prog}: {e}")))?;
            if st.success() {
                Ok(())
            } else {
                Err(Abort::new(
                    Exit::RebootFailed,
                    format!("{} failed: {st}", argv.join(" ")),
                ))
            }
        }
    }
}

/// Maintenance off and markers gone (best effort; logged).
fn clear_reboot_state(c: &Consul, s: &Settings, keys: &Keys) {
    if let Err(e) = c.set_node_maintenance(&s.node, false, "") {
        log::error!("turning node maintenance off: {e}");
    }
    delete_markers(c, keys);
}

fn delete_markers(c: &Consul, keys: &Keys) {
    if let Err(e) = protocol::delete_markers(c, keys) {
        log::error!("deleting the reboot markers: {e}");
    }
}

fn post_boot(c: &Consul, s: &Settings, keys: &Keys, marker: &Marker) -> Result<Done, Abort> {
    log::info!("found this node's reboot marker: post-boot phase");
    step!(decide::rebooted(
        marker,
        umm_core::state::read_boot_id(&s.root).as_deref(),
        umm_core::fsutil::now_unix(),
        s.reboot_grace
    ));
    check_stop(c, s, keys)?;
    // The slot is held across the reboot: so is the silence (renewed while
    // this run lasts; on an early return it lapses unless the next renews).
    let silence = s.notify.hold_silence();
    let stop = StopWatch::start(c, s, keys);
    wait_healthy(c, s, keys, &stop)?;
    run_tasks(c, s, keys, POST_BOOT_TASKS, "post_boot", &stop)?;
    wait_healthy(c, s, keys, &stop)?;
    stop.check()?;
    if s.dry_run {
        log::info!("dry run: post-boot checks passed; would end maintenance and release the slot");
        return Ok(Done::DryRun);
    }
    c.set_node_maintenance(&s.node, false, "").map_err(|e| {
        Abort::new(
            Exit::CleanupFailed,
            format!("turning node maintenance off: {e}"),
        )
    })?;
    c.kv_delete(&keys.reboot_required())?;
    delete_markers(c, keys);
    Semaphore::for_keys(keys, s.max_parallel)
        .release(c, &s.node)
        .map_err(|e| {
            Abort::new(
                Exit::CleanupFailed,
                format!("releasing the reboot slot: {e}"),
            )
        })?;
    log::info!("post-boot phase finished; slot released");
    s.notify.release_silence(silence);
    let msg = format!(
        "{} is back and healthy after its reboot; slot released",
        s.node
    );
    s.notify
        .send(c, Event::BackHealthy, &s.node, keys.group.as_deref(), &msg);
    Ok(Done::PostBootFinished)
}

fn wait_healthy(c: &Consul, s: &Settings, keys: &Keys, stop: &StopWatch) -> Result<(), Abort> {
    let deadline = s
        .wait_until_healthy
        .map(|d| umm_core::duration::deadline(Instant::now(), d));
    let mut p = Progress::new(
        "waiting until healthy",
        s.wait_until_healthy,
        Instant::now(),
    );
    loop {
        stop.check()?;
        let Err(a) = health(c, s, keys, TAG_POSTBOOT) else {
            return Ok(());
        };
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        match decide::health_retry(&a, left) {
            Some(pause) => {
                p.tick(Some(&a.message));
                wait(pause, stop, None, None)?;
            }
            None => return Err(a),
        }
    }
}
