//! What each fuzz target checks. A target gets arbitrary bytes; it must
//! never panic, and the invariants below must hold (a failed `assert!` is
//! a crash to AFL++). `targets/<name>.rs` only wraps these in `afl::fuzz!`.

use std::path::PathBuf;
use umm_coord::consul::{self, Check, ServiceInstance};
use umm_coord::health::{self, Rules};
use umm_coord::lock::LockState;
use umm_coord::protocol::{Marker, NodeConfig};
use umm_core::cmdline;
use umm_core::config::{self, Config, Loaded};
use umm_core::decision::{self, Decision};
use umm_core::duration;
use umm_core::state::{self, Runtime, State};

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// The kernel command line: split and parsed as the generator, umm-init
/// and the initramfs hook do. Invariants: splitting is stable (the words,
/// quoted again, split into the same words), parsing is deterministic, and
/// the decision taken from it with default config and state never panics
/// and follows `umm=`.
pub fn cmdline(data: &[u8]) {
    let line = text(data);
    let words = cmdline::split(&line);
    if words.iter().all(|w| !w.contains('"')) {
        let again: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
        assert_eq!(cmdline::split(&again.join(" ")), words, "split not stable");
    }
    for in_initrd in [false, true] {
        let args = cmdline::parse(&line, in_initrd);
        assert_eq!(args, cmdline::parse(&line, in_initrd));
        let (d, why) = decide(
            &args,
            &Config::default(),
            &State::default(),
            &Runtime::default(),
        );
        assert!(!why.is_empty());
        match args.umm {
            Some(true) => assert_eq!(d, Decision::Maintenance(decision::Reason::Cmdline)),
            Some(false) | None => assert_eq!(d, Decision::Normal),
        }
    }
}

/// A time for transitions (the state's times are TOML integers: i64).
const NOW: u64 = 2_000_000_000;

fn decide(
    args: &cmdline::KernelArgs,
    config: &Config,
    state: &State,
    runtime: &Runtime,
) -> (Decision, String) {
    // What inputs::gather hands the decision.
    decision::decide(&decision::Facts {
        enabled: config.enabled,
        cmdline: args.umm,
        requested: state.request.is_some(),
        unclean_boots: state.effective_unclean("fuzz-boot"),
        reboot_count: config.reboot_count,
        recorded: runtime.recorded,
        resumed: runtime.resumed,
    })
}

/// The state file and the /run/umm markers. Invariants: a state that
/// parses round-trips through to_toml; after every transition the boot
/// path makes (record, close, resume, a request) it still round-trips and
/// keeps at most HISTORY_LEN transitions; the decision on it never panics;
/// markers written for a decision parse back to it.
pub fn state(data: &[u8]) {
    let s = text(data);
    let _ = state::parse_marker(&s);
    let _ = Decision::from_token(&s);
    let Ok(st) = State::from_toml(&s) else {
        return;
    };
    let round = |st: &State| {
        assert_eq!(
            State::from_toml(&st.to_toml()).as_ref(),
            Ok(st),
            "state does not round-trip"
        );
        assert!(st.history.len() <= state::HISTORY_LEN);
    };
    round(&st);
    let args = cmdline::KernelArgs::default();
    for runtime in [
        Runtime::default(),
        Runtime {
            recorded: Some(Decision::Normal),
            resumed: false,
        },
        Runtime {
            recorded: None,
            resumed: true,
        },
    ] {
        for enabled in [true, false] {
            let cfg = Config {
                enabled,
                ..Config::default()
            };
            let (d, _) = decide(&args, &cfg, &st, &runtime);
            let marker = state::marker_text(&d, "fuzz-boot", 1);
            assert_eq!(state::parse_marker(&marker), Some(d));
            let mut next = st.clone();
            next.record_boot(&d, "fuzz-boot", NOW);
            round(&next);
            // Recording the same boot again changes nothing.
            let again = {
                let mut a = next.clone();
                a.record_boot(&d, "fuzz-boot", NOW);
                a
            };
            if next.open_boot.is_some() {
                assert_eq!(again, next);
            }
            next.close_boot("fuzz-boot");
            round(&next);
            next.resume("other-boot", 0);
            assert!(next.request.is_none() && next.unclean_boots == 0);
            round(&next);
        }
    }
    // The commands' transitions, and the scheduled command's bookkeeping:
    // each leaves a state that round-trips; a command runs once per request.
    let mut next = st.clone();
    if let Some((id, argv)) = next.command_due() {
        next.command_started(id, argv, "/var/lib/umm/command.out".into(), NOW);
        assert_eq!(next.command_due(), None, "the command would run twice");
        next.command_finished(id, 141, NOW);
        round(&next);
    }
    next.request_maintenance(
        state::Request {
            requested_at: NOW,
            requested_by: "fuzz".into(),
            command: Some(vec!["true".into()]),
        },
        NOW,
    );
    round(&next);
    assert!(next.cancel_request(NOW).is_some());
    round(&next);
    next.disable(NOW);
    assert!(next.request.is_none() && next.open_boot.is_none() && next.unclean_boots == 0);
    round(&next);
    next.enable(NOW);
    round(&next);
}

/// Characters that no message template contains: a line with one of
/// them that shows up in a message was echoed from the file.
const ECHO_MARKERS: &[char] = &['$', '%', '^', '&', '*', '~', '|', '<', '>', '?', '!', '@'];

/// Everything a loaded config may hold is within its documented bounds,
/// the decision on it never panics, and no message repeats a line of the
/// file (a config may be a link to a secret): a line of 10 characters or
/// more with a character no message template has never appears in an error
/// or warning.
fn check_loaded(l: &Loaded, input: &str) {
    let c = &l.config;
    assert!(c.reboot_count <= 1000);
    for d in [c.counter_reset_time, c.hook_timeout] {
        assert!(d <= duration::MAX && d.as_secs() > 0, "{d:?}");
    }
    assert!(c.state_dir.is_absolute());
    assert!(c.keep_units.iter().all(|u| config::valid_unit_name(u)));
    let _ = decide(
        &cmdline::KernelArgs::default(),
        c,
        &State::default(),
        &Runtime::default(),
    );
    for line in input.lines().map(str::trim) {
        if line.chars().count() < 10 || !line.contains(ECHO_MARKERS) {
            continue;
        }
        for m in l.errors.iter().chain(&l.warnings) {
            assert!(!m.contains(line), "echoed {line:?} in {m:?}");
        }
    }
}

/// `/etc/umm/umm.toml` (and a drop-in after it) through the loader's own
/// apply step. See [`check_loaded`].
pub fn config(data: &[u8]) {
    let (a, b) = split_at_marker(data);
    // The comment-only fast path never disagrees with the TOML parser.
    for t in [&a, &b] {
        if config::only_comments(t) {
            assert_eq!(t.parse::<toml::Table>().ok(), Some(toml::Table::new()), "{t:?}");
        }
    }
    let mut l = config::defaults();
    config::apply_text(&mut l, PathBuf::from("/etc/umm/umm.toml"), &a);
    check_loaded(&l, &a);
    config::apply_text(&mut l, PathBuf::from("/etc/umm/umm.toml.d/50-x.toml"), &b);
    check_loaded(&l, &format!("{a}\n{b}"));
}

/// The old shell-style `/etc/umm.conf`, read as data. See [`check_loaded`].
pub fn legacy_conf(data: &[u8]) {
    let s = text(data);
    let mut l = config::defaults();
    config::apply_text(&mut l, PathBuf::from("/etc/umm.conf"), &s);
    check_loaded(&l, &s);
}

/// Durations: a parsed one is at most duration::MAX, and formatting it
/// parses back to the same value (parse → display → parse is stable);
/// errors do not repeat the text.
pub fn duration(data: &[u8]) {
    let s = text(data);
    match duration::parse(&s) {
        Ok(d) => {
            assert!(d <= duration::MAX);
            let shown = duration::format(d);
            assert_eq!(duration::parse(&shown), Ok(d), "{shown}");
            assert_eq!(duration::format(duration::parse(&shown).unwrap()), shown);
        }
        Err(e) => {
            let t = s.trim();
            if t.chars().count() >= 12 && !duration::BARE_NUMBER_HINT.contains(t) {
                assert!(!e.contains(t), "{e}");
            }
        }
    }
    if let Ok(n) = s.trim().parse::<u64>() {
        assert_eq!(
            duration::from_secs_checked(n).is_ok(),
            n <= duration::MAX_SECS
        );
    }
}

/// `service/rebootmgr/nodes/<node>/config`: a parsed config round-trips
/// through to_json (the `disabled` flag folded into `enabled`).
pub fn consul_node_config(data: &[u8]) {
    let s = text(data);
    let Ok(mut c) = NodeConfig::parse(&s) else {
        return;
    };
    let again = NodeConfig::parse(&c.to_json()).expect("our own JSON parses");
    // to_json writes the new form: an old-style `disabled` is migrated once,
    // its rewrite is not a migration again.
    c.extra.remove("disabled");
    c.migrated = false;
    assert_eq!(again, c);
}

/// The per-node reboot marker: lenient, and it round-trips through to_json.
pub fn consul_marker(data: &[u8]) {
    let m = Marker::parse(&text(data));
    assert_eq!(Marker::parse(&m.to_json()), m);
}

/// The semaphore's `.lock` holder map (rebootmgr's object form and
/// Consul's documented list form): it round-trips through to_json.
pub fn consul_lock(data: &[u8]) {
    let l = LockState::parse(&text(data));
    assert_eq!(LockState::parse(&l.to_json()), l);
}

/// `/v1/health/service/<name>` as Consul answers it, decoded and judged by
/// the health rules with the tags found in it. Invariants: never a panic;
/// with every check passing nothing blocks unless min_passing asks for more
/// instances than there are; a blocker always names the service.
pub fn consul_health(data: &[u8]) {
    let Ok(v) = consul::parse(&text(data), "fuzz") else {
        return;
    };
    let _ = consul::decode_kv_list(&v, "fuzz");
    let Ok(instances) = consul::decode_service_health(&v, "fuzz") else {
        return;
    };
    let self_node = instances
        .first()
        .map(|i| i.node.clone())
        .unwrap_or_default();
    for inst in &instances {
        let Ok(rules) = Rules::from_tags(&inst.tags) else {
            continue;
        };
        let blockers = health::evaluate(&inst.service, &rules, &instances, &self_node);
        for b in &blockers {
            assert!(b.starts_with(&format!("service {}: ", inst.service)), "{b}");
        }
        let counted: Vec<&ServiceInstance> = instances
            .iter()
            .filter(|i| !rules.local_only || i.node == self_node)
            .collect();
        let all_pass = counted
            .iter()
            .all(|i| i.checks.iter().all(|c: &Check| c.status == "passing"));
        if all_pass && rules.min_passing.unwrap_or(0) <= counted.len() {
            assert!(blockers.is_empty(), "{blockers:?}");
        }
    }
}

/// Two inputs from one: before and after the first `\n---\n`.
fn split_at_marker(data: &[u8]) -> (String, String) {
    let s = text(data);
    match s.split_once("\n---\n") {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (s, String::new()),
    }
}
