//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`cmdline`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::cmdline(data));
}
