//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`duration`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::duration(data));
}
