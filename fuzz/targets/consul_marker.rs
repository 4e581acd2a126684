//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`consul_marker`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::consul_marker(data));
}
