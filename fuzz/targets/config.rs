//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`config`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::config(data));
}
