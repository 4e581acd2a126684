//! Fuzz-style test on stable Rust: thousands of random and mutated inputs
//! through every parser the PID-1 pre-stage and the generator run on
//! external input (kernel command line, state file, runtime markers,
//! durations, config files incl. the legacy `/etc/umm.conf`), asserting that
//! none panics. Deterministic (fixed seeds), so a failure reproduces; set
//! `UMM_FUZZ_CASES=<n>` for a longer run. The coverage-guided equivalent is
//! `fuzz/` (AFL++ through cargo-afl on stable Rust: `fuzz/run.sh SECONDS`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use umm_core::paths::Root;
use umm_core::{cmdline, config, decision, duration, state};
use umm_testsupport::FakeRoot;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "=",
    "\"",
    "'",
    "[",
    "]",
    "{",
    "}",
    "\n",
    " ",
    "\t",
    "\0",
    "#",
    ".",
    ",",
    "-",
    "umm",
    "umm=",
    "rd.",
    "umm.init=/",
    "systemd.unit=",
    "version = 1",
    "version = 2",
    "[request]",
    "[open_boot]",
    "[[history]]",
    "requested_at = ",
    "unclean_boots = ",
    "18446744073709551616",
    "-1",
    "1e400",
    "\"10min\"",
    "600",
    "s",
    "min",
    "h",
    "ms",
    "us",
    "d",
    "w",
    "é",
    "\u{feff}",
    "\u{10ffff}",
    "\\u0000",
    "\"\"\"",
    "'''",
    "true",
    "yes",
    "off",
    "decision=",
    "maintenance:",
    "reboot-loop",
    "UMM=yes",
    "REBOOT_COUNT=",
    "COUNTER_RESET_TIME=",
    "$(",
    "`",
    "enabled = ",
    "keep_units = [",
    "state_dir = \"/../",
    "counter_reset_time = ",
];

const CMDLINES: &[&str] = &[
    "BOOT_IMAGE=/vmlinuz root=/dev/vda ro quiet umm",
    "umm=1 umm=0 rd.umm=yes systemd.unit=rescue.target S",
    "foo=\"a b\" 'c d'e umm=maybe umm.init=/sbin/init",
];
const STATES: &[&str] = &[
    "version = 1\nunclean_boots = 3\n[open_boot]\nboot_id = \"b\"\nstarted = 1\n",
    "version = 1\n[request]\nrequested_at = 5\nrequested_by = \"root\"\ncommand = [\"sh\", \"-c\", \"x\"]\n\
     [command_result]\nrequest = 5\ncommand = [\"true\"]\nstarted = 6\nexit_status = 0\noutput_file = \"/o\"\n\
     [[history]]\ntime = 1\nfrom = \"a\"\nto = \"b\"\nreason = \"c\"\n",
];
const CONFIGS: &[&str] = &[
    "enabled = true\nreboot_count = 2\ncounter_reset_time = \"10min\"\nstate_dir = \"/var/lib/umm\"\n\
     keep_units = [\"a.service\"]\nhook_timeout = \"1h\"\n[coordination]\nconsul = \"http://x\"\n",
    "reboot_count = 1001\ncounter_reset_time = 600\nunknown = 1\n",
];
const LEGACY: &[&str] = &[
    "UMM=yes\nREBOOT_COUNT=2\nCOUNTER_RESET_TIME=10\n",
    "UMM=\"no\" # x\n",
];
const MARKERS: &[&str] = &[
    "decision=maintenance:cmdline\nboot_id=x\n",
    "decision=normal",
];
const DURATIONS: &[&str] = &["10min", "1h 30s", "600", "5 s", "1.5h", "0s"];

fn mutate(rng: &mut Rng, seeds: &[&str]) -> Vec<u8> {
    let mut v: Vec<u8> = match rng.below(8) {
        // Pure noise now and then.
        0 => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        _ => seeds[rng.below(seeds.len())].as_bytes().to_vec(),
    };
    for _ in 0..=rng.below(8) {
        let at = rng.below(v.len() + 1);
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                v.splice(at..at, t.iter().copied());
            }
            2 if !v.is_empty() => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            3 if !v.is_empty() => {
                let from = rng.below(v.len());
                let end = (from + rng.below(32)).min(v.len());
                let chunk: Vec<u8> = v[from..end].to_vec();
                v.splice(at..at, chunk);
            }
            4 => {
                let other = seeds[rng.below(seeds.len())].as_bytes();
                let cut = rng.below(other.len() + 1);
                v.truncate(at);
                v.extend_from_slice(&other[cut..]);
            }
            _ => v.insert(at.min(v.len()), rng.next() as u8),
        }
    }
    v
}

fn cases(default: usize) -> usize {
    std::env::var("UMM_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn cmdline_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..cases(20_000) {
        let input = mutate(&mut rng, CMDLINES);
        let s = String::from_utf8_lossy(&input);
        let words = cmdline::split(&s);
        assert!(words
            .iter()
            .all(|w| !w.is_empty() || s.contains(['"', '\''])));
        let _ = cmdline::parse(&s, rng.below(2) == 0);
    }
}

#[test]
fn state_and_markers_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..cases(20_000) {
        let input = mutate(&mut rng, STATES);
        let s = String::from_utf8_lossy(&input);
        if let Ok(st) = state::State::from_toml(&s) {
            // What parses must survive a round trip.
            assert_eq!(state::State::from_toml(&st.to_toml()), Ok(st));
        }
        let m = String::from_utf8_lossy(&mutate(&mut rng, MARKERS)).into_owned();
        let _ = state::parse_marker(&m);
        let _ = decision::Decision::from_token(&m);
        let d = String::from_utf8_lossy(&mutate(&mut rng, DURATIONS)).into_owned();
        let _ = duration::parse(&d);
    }
}

#[test]
fn config_files_never_panic() {
    // Through the real loader (files on a fake root), so the legacy file,
    // non-UTF-8 bytes and the layering are covered too.
    let d = FakeRoot::new();
    let root = Root::new(d.path());
    let etc = d.mkdir("etc/umm");
    let mut rng = Rng(0x94D0_49BB_1331_11EB);
    let mut used = 0;
    for i in 0..cases(3_000) {
        let (file, seeds) = if i % 3 == 0 {
            let _ = fs::remove_file(etc.join("umm.toml"));
            (d.p("etc/umm.conf"), LEGACY)
        } else {
            (etc.join("umm.toml"), CONFIGS)
        };
        fs::write(&file, mutate(&mut rng, seeds)).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let l = config::load(&root);
        assert!(l.config.reboot_count <= 1000);
        used += usize::from(!l.files.is_empty());
    }
    // The files were really read (not all refused by the trust check).
    assert!(used > 100, "only {used} config files were used");
}
