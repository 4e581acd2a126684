//! The state file and the runtime markers in /run/umm.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(st) = umm_core::state::State::from_toml(&s) {
        assert_eq!(umm_core::state::State::from_toml(&st.to_toml()), Ok(st));
    }
    let _ = umm_core::state::parse_marker(&s);
    let _ = umm_core::decision::Decision::from_token(&s);
    let _ = umm_core::duration::parse(&s);
});
