//! The waits the non-systemd boot paths need (sysvinit's inittab entry and
//! init script, upstart's jobs), as `umm boot wait` and `umm boot
//! wait-stable`. systemd does both with units (umm.target, umm-stable.timer).

use crate::boot::{self, Ctx};
use std::io;
use std::time::Duration;
use umm_core::paths::Root;
use umm_core::state;

/// How often `umm boot wait` looks for `/run/umm/resumed`.
pub const POLL: Duration = Duration::from_millis(500);

/// `umm boot wait`: returns at once unless this boot's recorded decision
/// (`/run/umm/boot`, else `/run/umm/decision`) is maintenance; then blocks
/// until `umm off` writes `/run/umm/resumed`. Returns whether it waited.
pub fn wait_resumed(root: &Root, poll: Duration) -> bool {
    let rt = state::read_runtime(root);
    if rt.resumed || !rt.recorded.is_some_and(|d| d.is_maintenance()) {
        return false;
    }
    while !root.path(state::RESUMED).exists() {
        std::thread::sleep(poll);
    }
    true
}

/// `umm boot wait-stable`: sleeps `counter_reset_time` (counted from now,
/// i.e. from the start of normal operation, as systemd's `OnActiveSec=`
/// does), then closes the boot as stable. In maintenance mode nothing is
/// watched, so closing does nothing and the count is held. `sleep` is
/// injectable for tests.
pub fn wait_stable(ctx: &Ctx, mut sleep: impl FnMut(Duration)) -> io::Result<bool> {
    let total = ctx.loaded.config.counter_reset_time;
    let step = Duration::from_secs(60);
    let mut left = total;
    while !left.is_zero() {
        let d = left.min(step);
        sleep(d);
        left -= d;
    }
    // A fresh context: the state may have changed while we slept.
    boot::close(&Ctx::load(ctx.root.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::time::Instant;
    use umm_core::decision::{Decision, Reason};
    use umm_testsupport::FakeRoot;

    fn root(d: &FakeRoot) -> Root {
        d.set_boot_id("b1");
        Root::new(d.path())
    }

    #[test]
    fn returns_at_once_unless_maintenance() {
        let d = FakeRoot::new();
        let r = root(&d);
        assert!(!wait_resumed(&r, POLL), "nothing recorded");
        d.write(
            "run/umm/boot",
            &state::marker_text(&Decision::Normal, "b1", 1),
        );
        assert!(!wait_resumed(&r, POLL));
    }

    #[test]
    fn blocks_in_maintenance_until_resumed() {
        let d = FakeRoot::new();
        let r = root(&d);
        d.write(
            "run/umm/boot",
            &state::marker_text(&Decision::Maintenance(Reason::Requested), "b1", 1),
        );
        let resumed = d.p("run/umm/resumed");
        let t = Instant::now();
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            fs::write(resumed, "").unwrap();
        });
        assert!(wait_resumed(&r, Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(300));
        h.join().unwrap();
        // Once resumed, later runs (another runlevel) do not block.
        assert!(!wait_resumed(&r, POLL));
    }

    #[test]
    fn stable_after_counter_reset_time() {
        let d = FakeRoot::new();
        let r = root(&d);
        let ctx = Ctx::load(r.clone());
        let st = state::State {
            unclean_boots: 2,
            ..state::State::default()
        };
        state::update(&r, ctx.state_dir(), |s| *s = st).unwrap();
        boot::record(&ctx, Some("normal")).unwrap();
        let mut slept = Duration::ZERO;
        assert!(wait_stable(&ctx, |d| slept += d).unwrap());
        assert_eq!(slept, Duration::from_secs(600));
        assert_eq!(state::read(&r, ctx.state_dir()).state.unclean_boots, 0);
    }

    #[test]
    fn maintenance_holds_the_count() {
        let d = FakeRoot::new();
        let r = root(&d);
        let ctx = Ctx::load(r.clone());
        let st = state::State {
            unclean_boots: 3,
            ..state::State::default()
        };
        state::update(&r, ctx.state_dir(), |s| *s = st).unwrap();
        boot::record(&ctx, Some("maintenance:reboot-loop")).unwrap();
        assert!(!wait_stable(&ctx, |_| {}).unwrap());
        assert_eq!(state::read(&r, ctx.state_dir()).state.unclean_boots, 3);
    }
}
