//! Config files through the real loader: the first byte picks the TOML file
//! or the legacy /etc/umm.conf, the rest is the file's content.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::os::unix::fs::PermissionsExt;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let Ok(d) = tempfile::tempdir() else { return };
    let _ = std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755));
    let file = if which & 1 == 0 {
        d.path().join("etc/umm/umm.toml")
    } else {
        d.path().join("etc/umm.conf")
    };
    let _ = std::fs::create_dir_all(file.parent().unwrap_or(d.path()));
    if std::fs::write(&file, body).is_ok() {
        let _ = umm_core::config::load(&umm_core::paths::Root::new(d.path()));
    }
});
