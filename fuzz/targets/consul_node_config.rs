//! AFL++ persistent-mode target; the invariants are in src/lib.rs (`consul_node_config`).
fn main() {
    afl::fuzz!(|data: &[u8]| umm_fuzz::consul_node_config(data));
}
