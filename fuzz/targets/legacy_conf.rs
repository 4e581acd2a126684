//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`legacy_conf`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::legacy_conf(data));
}
