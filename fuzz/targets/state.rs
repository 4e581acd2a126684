//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`state`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::state(data));
}
