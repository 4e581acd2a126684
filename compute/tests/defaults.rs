//! docs/compute-host.md's policy table states the built-in defaults.

use clap::Parser;
use umm_compute::cli::HostCmd;
use umm_compute::drain::{OnTimeout, Policy, Selection, Shutoff};

#[derive(Parser)]
struct Top {
    #[command(subcommand)]
    cmd: HostCmd,
}

fn documented() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/compute-host.md"
    ))
    .unwrap();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[1].starts_with("`--")).then(|| {
                let opt = cells[1].trim_matches('`').to_string();
                let def = cells[2]
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .trim_matches('`')
                    .to_string();
                (opt, def)
            })
        })
        .collect()
}

fn secs(d: &str) -> u64 {
    umm_core::duration::parse(d).unwrap().as_secs()
}

#[test]
fn documented_defaults_are_the_builtin_defaults() {
    let p = Policy::default();
    let rows = documented();
    assert_eq!(rows.len(), 11, "{rows:?}");
    for (opt, def) in rows {
        match opt.as_str() {
            "--servers" => assert_eq!((def.as_str(), p.servers), ("active", Selection::Active)),
            "--max-in-flight" => assert_eq!(def.parse::<u32>().unwrap(), p.max_in_flight),
            "--migration-timeout" => assert_eq!(secs(&def), p.migration_timeout),
            "--on-timeout" => assert_eq!((def.as_str(), p.on_timeout), ("abort", OnTimeout::Abort)),
            "--deadline" => assert_eq!(secs(&def), p.deadline),
            "--retries" => assert_eq!(def.parse::<u32>().unwrap(), p.retries),
            "--settle" => assert_eq!(secs(&def), p.settle),
            "--poll" => assert_eq!(secs(&def) * 1000, p.poll_ms),
            "--max-total" => assert_eq!((def.as_str(), p.max_total), ("none", None)),
            "--shutoff" => assert_eq!((def.as_str(), p.shutoff), ("migrate", Shutoff::Migrate)),
            "--why" => {
                let t = Top::try_parse_from(["umm-host", "enter", "h"]).unwrap();
                let HostCmd::Enter { why, policy, .. } = t.cmd else {
                    panic!()
                };
                assert_eq!(why, def);
                assert_eq!(policy.policy(), p, "no option given = the defaults");
            }
            other => panic!("undocumented row {other}"),
        }
    }
}
