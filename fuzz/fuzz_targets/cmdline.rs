//! Kernel command line: splitting and interpretation (as in the generator
//! and the PID-1 pre-stage).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = umm_core::cmdline::split(&s);
    let _ = umm_core::cmdline::parse(&s, false);
    let _ = umm_core::cmdline::parse(&s, true);
});
