//! The one decision every boot path shares (generator, PID-1 shim, initramfs,
//! `umm status`): the plain facts taken from the command line, the config,
//! the state and this boot's markers → disabled | normal | maintenance(reason).
//! Pure: no I/O, and no knowledge of where the facts come from
//! (`inputs::gather` reads them), so this module imports nothing of ours.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `umm` / `umm=1` on the kernel command line.
    Cmdline,
    /// `umm on` persisted a request.
    Requested,
    /// More than `reboot_count` consecutive unclean boots.
    RebootLoop,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Cmdline => "cmdline",
            Reason::Requested => "requested",
            Reason::RebootLoop => "reboot-loop",
        }
    }

    pub fn parse(s: &str) -> Option<Reason> {
        match s {
            "cmdline" => Some(Reason::Cmdline),
            "requested" => Some(Reason::Requested),
            "reboot-loop" => Some(Reason::RebootLoop),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Disabled,
    Normal,
    Maintenance(Reason),
}

impl Decision {
    /// `disabled`, `normal` or `maintenance`.
    pub fn mode(&self) -> &'static str {
        match self {
            Decision::Disabled => "disabled",
            Decision::Normal => "normal",
            Decision::Maintenance(_) => "maintenance",
        }
    }

    pub fn reason_str(&self) -> Option<&'static str> {
        match self {
            Decision::Maintenance(r) => Some(r.as_str()),
            _ => None,
        }
    }

    pub fn is_maintenance(&self) -> bool {
        matches!(self, Decision::Maintenance(_))
    }

    /// One word used in markers and unit environments: `normal`,
    /// `disabled`, `maintenance:<reason>`.
    pub fn token(&self) -> String {
        match self {
            Decision::Maintenance(r) => format!("maintenance:{}", r.as_str()),
            d => d.mode().to_string(),
        }
    }

    pub fn from_token(t: &str) -> Option<Decision> {
        match t.trim() {
            "normal" => Some(Decision::Normal),
            "disabled" => Some(Decision::Disabled),
            other => other
                .strip_prefix("maintenance:")
                .and_then(Reason::parse)
                .map(Decision::Maintenance),
        }
    }
}

/// What the decision depends on, and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// The master switch (`enabled`).
    pub enabled: bool,
    /// `umm=1` (`Some(true)`) or `umm=0` (`Some(false)`) on the kernel command line.
    pub cmdline: Option<bool>,
    /// `umm on` persisted a request.
    pub requested: bool,
    /// Consecutive unclean boots, including a previous boot that never closed.
    pub unclean_boots: u32,
    /// The configured `reboot_count`.
    pub reboot_count: u32,
    /// The decision already taken for this boot (its markers), if any.
    pub recorded: Option<Decision>,
    /// `umm off` resumed this boot.
    pub resumed: bool,
}

/// The decision, and one sentence that says why (for logs and status).
pub fn decide(i: &Facts) -> (Decision, String) {
    if !i.enabled {
        let why = if i.cmdline == Some(true) {
            "umm is disabled (enabled = false); umm=1 on the kernel command line is ignored"
                .to_string()
        } else {
            "umm is disabled (enabled = false)".to_string()
        };
        return (Decision::Disabled, why);
    }
    if i.resumed {
        return (
            Decision::Normal,
            "maintenance mode was left with 'umm off' during this boot".into(),
        );
    }
    if let Some(d) = i.recorded {
        if d != Decision::Disabled {
            return (
                d,
                format!("decision already taken for this boot: {}", d.token()),
            );
        }
    }
    match i.cmdline {
        Some(false) => {
            return (
                Decision::Normal,
                "umm=0 on the kernel command line: normal boot, state kept".into(),
            );
        }
        Some(true) => {
            return (
                Decision::Maintenance(Reason::Cmdline),
                "umm=1 on the kernel command line".into(),
            )
        }
        None => {}
    }
    if i.requested {
        return (
            Decision::Maintenance(Reason::Requested),
            "maintenance was requested with 'umm on'".into(),
        );
    }
    let unclean = i.unclean_boots;
    if unclean > i.reboot_count {
        return (
            Decision::Maintenance(Reason::RebootLoop),
            format!(
                "{unclean} consecutive unclean boots, more than reboot_count = {}",
                i.reboot_count
            ),
        );
    }
    (
        Decision::Normal,
        format!(
            "{unclean} unclean boot(s), reboot_count = {}",
            i.reboot_count
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum Cmd {
        None,
        On,
        Off,
    }
    #[derive(Clone, Copy, Debug)]
    enum Rec {
        None,
        Normal,
        Mm,
        Disabled,
    }

    struct Row {
        enabled: bool,
        cmd: Cmd,
        request: bool,
        unclean: u32,
        /// Previous boot still open (unclean, not yet counted).
        open_prev: bool,
        reboot_count: u32,
        recorded: Rec,
        resumed: bool,
        want: Decision,
    }

    fn run(r: &Row) -> Decision {
        decide(&Facts {
            enabled: r.enabled,
            cmdline: match r.cmd {
                Cmd::None => None,
                Cmd::On => Some(true),
                Cmd::Off => Some(false),
            },
            requested: r.request,
            // What `State::effective_unclean` gives for such a state.
            unclean_boots: r.unclean + r.open_prev as u32,
            reboot_count: r.reboot_count,
            recorded: match r.recorded {
                Rec::None => None,
                Rec::Normal => Some(Decision::Normal),
                Rec::Mm => Some(Decision::Maintenance(Reason::Requested)),
                Rec::Disabled => Some(Decision::Disabled),
            },
            resumed: r.resumed,
        })
        .0
    }

    const N: Decision = Decision::Normal;
    const D: Decision = Decision::Disabled;
    const CMD: Decision = Decision::Maintenance(Reason::Cmdline);
    const REQ: Decision = Decision::Maintenance(Reason::Requested);
    const LOOP: Decision = Decision::Maintenance(Reason::RebootLoop);

    fn row(
        enabled: bool,
        cmd: Cmd,
        request: bool,
        unclean: u32,
        open_prev: bool,
        want: Decision,
    ) -> Row {
        Row {
            enabled,
            cmd,
            request,
            unclean,
            open_prev,
            reboot_count: 2,
            recorded: Rec::None,
            resumed: false,
            want,
        }
    }

    #[test]
    fn table() {
        use Cmd::*;
        let mut rows = vec![
            // Nothing at all.
            row(true, None, false, 0, false, N),
            // Command line.
            row(true, On, false, 0, false, CMD),
            row(true, Off, false, 0, false, N),
            // Escape hatch beats a request and a tripped loop; the request is kept (not a decision matter).
            row(true, Off, true, 0, false, N),
            row(true, Off, false, 5, true, N),
            // umm=1 beats a request and the loop as the reason.
            row(true, On, true, 5, true, CMD),
            // Request.
            row(true, None, true, 0, false, REQ),
            row(true, None, true, 9, true, REQ),
            // Loop threshold with reboot_count = 2: more than 2 unclean boots.
            row(true, None, false, 2, false, N),
            row(true, None, false, 3, false, LOOP),
            row(true, None, false, 2, true, LOOP), // 2 counted + the previous boot that never closed
            row(true, None, false, 1, true, N),
            row(true, None, false, 0, true, N),
            // Disabled wins over everything.
            row(false, None, false, 0, false, D),
            row(false, On, false, 0, false, D),
            row(false, None, true, 0, false, D),
            row(false, None, false, 9, true, D),
        ];
        // reboot_count = 0: the first unclean boot trips it.
        rows.push(Row {
            reboot_count: 0,
            ..row(true, None, false, 0, true, LOOP)
        });
        rows.push(Row {
            reboot_count: 0,
            ..row(true, None, false, 0, false, N)
        });
        // This boot's markers: the recorded decision holds across daemon-reload...
        rows.push(Row {
            recorded: Rec::Mm,
            ..row(true, None, false, 0, false, REQ)
        });
        rows.push(Row {
            recorded: Rec::Normal,
            ..row(true, None, true, 0, false, N)
        }); // `umm on --no-reboot` then reload
        rows.push(Row {
            recorded: Rec::Normal,
            ..row(true, On, false, 9, true, N)
        });
        // ...a recorded "disabled" does not stop a re-enabled umm from deciding afresh...
        rows.push(Row {
            recorded: Rec::Disabled,
            ..row(true, None, true, 0, false, REQ)
        });
        // ...and `umm off` ends maintenance for the rest of this boot.
        rows.push(Row {
            recorded: Rec::Mm,
            resumed: true,
            ..row(true, None, true, 0, false, N)
        });
        rows.push(Row {
            resumed: true,
            ..row(true, On, true, 9, true, N)
        });
        rows.push(Row {
            resumed: true,
            ..row(false, On, true, 9, true, D)
        });
        for (n, r) in rows.iter().enumerate() {
            assert_eq!(
                run(r),
                r.want,
                "row {n}: enabled={} cmd={:?} request={} unclean={} open_prev={} reboot_count={} recorded={:?} resumed={}",
                r.enabled, r.cmd, r.request, r.unclean, r.open_prev, r.reboot_count, r.recorded, r.resumed
            );
        }
    }

    /// Every combination of inputs, checked against the rules stated in
    /// docs/boot-flow.md as invariants (each one independent of the others).
    #[test]
    fn all_combinations_obey_the_rules() {
        let mut checked = 0;
        for enabled in [false, true] {
            for cmd in [Cmd::None, Cmd::On, Cmd::Off] {
                for request in [false, true] {
                    for unclean in 0..5 {
                        for open_prev in [false, true] {
                            for reboot_count in 0..4 {
                                for recorded in [Rec::None, Rec::Normal, Rec::Mm, Rec::Disabled] {
                                    for resumed in [false, true] {
                                        let r = Row {
                                            enabled,
                                            cmd,
                                            request,
                                            unclean,
                                            open_prev,
                                            reboot_count,
                                            recorded,
                                            resumed,
                                            want: N,
                                        };
                                        let d = run(&r);
                                        checked += 1;
                                        let ctx = format!("{enabled} {cmd:?} {request} {unclean} {open_prev} {reboot_count} {recorded:?} {resumed} -> {d:?}");
                                        // The switch turns everything off.
                                        assert_eq!(d == D, !enabled, "{ctx}");
                                        if !enabled {
                                            continue;
                                        }
                                        // Resumed means normal for the rest of the boot.
                                        if resumed {
                                            assert_eq!(d, N, "{ctx}");
                                            continue;
                                        }
                                        // A decision recorded this boot is kept.
                                        match recorded {
                                            Rec::Normal => {
                                                assert_eq!(d, N, "{ctx}");
                                                continue;
                                            }
                                            Rec::Mm => {
                                                assert_eq!(d, REQ, "{ctx}");
                                                continue;
                                            }
                                            _ => {}
                                        }
                                        let tripped = unclean + open_prev as u32 > reboot_count;
                                        match cmd {
                                            Cmd::Off => assert_eq!(d, N, "{ctx}"),
                                            Cmd::On => assert_eq!(d, CMD, "{ctx}"),
                                            Cmd::None if request => assert_eq!(d, REQ, "{ctx}"),
                                            Cmd::None if tripped => assert_eq!(d, LOOP, "{ctx}"),
                                            Cmd::None => assert_eq!(d, N, "{ctx}"),
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 3 * 2 * 5 * 2 * 4 * 4 * 2);
    }

    #[test]
    fn tokens_round_trip() {
        for d in [N, D, CMD, REQ, LOOP] {
            assert_eq!(Decision::from_token(&d.token()), Some(d));
        }
        assert_eq!(Decision::from_token("maintenance:bogus"), None);
        assert_eq!(Decision::from_token("x"), None);
    }
}
