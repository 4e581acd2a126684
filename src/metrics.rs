//! umm's Prometheus metrics: the node_exporter textfile `metrics_file`
//! (default `/var/lib/prometheus/node-exporter/umm.prom`), rewritten after
//! every boot step and every command that may change the state, from what
//! `umm status` reads. Never fatal: a missing directory or a failed write is
//! a warning. Names and meaning: docs/metrics.md.

use crate::cli::{Mode, Snapshot};
use umm_core::metrics::{self, Textfile, WriteError, Written};
use umm_core::paths::Root;

/// Every mode `umm status` knows, in the order the metric lists them.
const MODES: &[Mode] = &[
    Mode::Disabled,
    Mode::Normal,
    Mode::Entering,
    Mode::Maintenance,
    Mode::Resumed,
];

/// The metrics of the node as `snap` sees it.
pub fn render(snap: &Snapshot) -> Textfile {
    let mode = snap.mode();
    let st = &snap.state.state;
    let mut t = Textfile::new();
    t.gauge(
        "umm_maintenance_mode",
        "1 while this boot is paused in umm's maintenance mode, else 0; label reason: cmdline, requested, reboot-loop (empty when not in maintenance mode).",
    )
    .sample(
        "umm_maintenance_mode",
        &[("reason", snap.reason().unwrap_or(""))],
        f64::from(u8::from(mode == Mode::Maintenance)),
    );
    t.gauge(
        "umm_mode",
        "The mode umm status shows: 1 for the current one, 0 for the others.",
    );
    for m in MODES {
        t.sample(
            "umm_mode",
            &[("mode", m.as_str())],
            f64::from(u8::from(*m == mode)),
        );
    }
    t.gauge(
        "umm_enabled",
        "1 when umm is enabled (config key enabled), else 0.",
    )
    .sample(
        "umm_enabled",
        &[],
        f64::from(u8::from(snap.loaded.config.enabled)),
    );
    t.gauge(
        "umm_unclean_boots",
        "Consecutive boots that ended without a clean shutdown before counter_reset_time.",
    )
    .sample("umm_unclean_boots", &[], f64::from(st.unclean_boots));
    t.gauge(
        "umm_reboot_count",
        "Config reboot_count: maintenance mode is forced after more unclean boots than this.",
    )
    .sample(
        "umm_reboot_count",
        &[],
        f64::from(snap.loaded.config.reboot_count),
    );
    if let Some(last) = st.history.last() {
        t.gauge(
            "umm_last_transition_timestamp_seconds",
            "Unix time of umm's last mode transition (the state's history); label to: the mode it went to.",
        )
        .sample(
            "umm_last_transition_timestamp_seconds",
            &[("to", &last.to)],
            last.time as f64,
        );
    }
    t
}

/// Rewrites the metrics file (best effort, see the module doc). A missing
/// directory of a file the operator named is a warning at boot (`at_boot`:
/// the journal) and only an info message for an interactive command, which
/// would otherwise say it every time; for the default file it is always an
/// info message (node_exporter is not set up on this node: not a fault).
pub fn refresh(root: &Root, at_boot: bool) {
    let snap = Snapshot::read(root);
    let Some(file) = snap.loaded.config.metrics_file.clone() else {
        return;
    };
    match metrics::write(root, &file, &render(&snap)) {
        Ok(Written::Done(p)) => log::debug!("metrics written to {}", p.display()),
        Ok(Written::Off) => {}
        Err(WriteError::MissingDir(e))
            if !at_boot || file == std::path::Path::new(umm_core::config::DEFAULT_METRICS_FILE) =>
        {
            log::info!("{e}")
        }
        Err(e) => log::warn!("{e}"),
    }
}
