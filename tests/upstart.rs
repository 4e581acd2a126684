//! A checker for the upstart jobs in `upstart/` (no upstart can be installed
//! here, so they are NOT boot-tested): stanza syntax, `script … end script`
//! blocks (and `sh -n` on each), the `umm boot …` subcommands they call
//! (checked against the real `umm` binary), and the event wiring: every event
//! a job waits for is emitted by one of our jobs (declared with `emits` and
//! really `initctl emit`ted) or by upstart / Ubuntu 14.04's base jobs, and a
//! simulated boot reaches both the runlevel (`umm`) and maintenance mode.
//! Negative controls break copies of the jobs and expect the checker to fail.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Events emitted by upstart itself or by Ubuntu 14.04's base jobs
/// (mountall, network-interface/ifupdown, failsafe, telinit/rc-sysinit).
const SYSTEM_EVENTS: &[&str] = &[
    "startup",
    "runlevel",
    "filesystem",
    "static-network-up",
    "failsafe-boot",
    "local-filesystems",
    "remote-filesystems",
    "virtual-filesystems",
    "net-device-up",
];
const JOB_EVENTS: &[&str] = &["starting", "started", "stopping", "stopped"];
/// Ubuntu 14.04 jobs ours refer to.
const SYSTEM_JOBS: &[&str] = &["rc", "rc-sysinit", "ssh", "tty1"];
const STANZAS: &[&str] = &[
    "description",
    "author",
    "version",
    "usage",
    "start",
    "stop",
    "emits",
    "task",
    "respawn",
    "console",
    "exec",
    "script",
    "pre-start",
    "post-start",
    "pre-stop",
    "post-stop",
    "env",
    "export",
    "normal",
    "kill",
    "expect",
    "instance",
    "manual",
    "nice",
    "limit",
    "oom",
    "setuid",
    "setgid",
    "chdir",
    "chroot",
    "umask",
];

#[derive(Debug, Default)]
struct Job {
    start_on: Option<String>,
    stop_on: Option<String>,
    emits: BTreeSet<String>,
    /// Shell code: script blocks and exec lines.
    code: Vec<String>,
    override_only: bool,
}

fn parse(name: &str, text: &str, errors: &mut Vec<String>) -> Job {
    let mut job = Job {
        override_only: name.ends_with(".override"),
        ..Job::default()
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if !STANZAS.contains(&word) {
            errors.push(format!("{name}:{i}: unknown stanza '{word}'"));
            continue;
        }
        let is_script = word == "script"
            || (word.ends_with("-start") || word.ends_with("-stop")) && rest == "script";
        if is_script {
            let mut body = String::new();
            let mut closed = false;
            while i < lines.len() {
                let l = lines[i];
                i += 1;
                if l.trim() == "end script" {
                    closed = true;
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            if !closed {
                errors.push(format!("{name}: '{line}' without 'end script'"));
            }
            job.code.push(body);
            continue;
        }
        match word {
            "start" | "stop" => {
                let Some(expr) = rest.strip_prefix("on ") else {
                    errors.push(format!("{name}:{i}: expected '{word} on EVENTS'"));
                    continue;
                };
                // An expression continues while parentheses are open.
                let mut expr = expr.to_string();
                while expr.matches('(').count() > expr.matches(')').count() && i < lines.len() {
                    expr.push(' ');
                    expr.push_str(lines[i].trim());
                    i += 1;
                }
                if word == "start" {
                    job.start_on = Some(expr);
                } else {
                    job.stop_on = Some(expr);
                }
            }
            "emits" => job
                .emits
                .extend(rest.split_whitespace().map(str::to_string)),
            "exec" => job.code.push(rest.to_string()),
            "pre-start" | "post-start" | "pre-stop" | "post-stop" => {
                match rest.strip_prefix("exec ") {
                    Some(c) => job.code.push(c.to_string()),
                    None => errors.push(format!("{name}:{i}: expected '{word} exec|script'")),
                }
            }
            "task" | "manual" if !rest.is_empty() => {
                errors.push(format!("{name}:{i}: '{word}' takes no argument"))
            }
            "console" if !["output", "owner", "log", "none"].contains(&rest) => {
                errors.push(format!("{name}:{i}: bad console '{rest}'"))
            }
            _ => {}
        }
        if job.override_only && word != "start" && word != "stop" {
            errors.push(format!(
                "{name}:{i}: the override should only change 'start on'/'stop on'"
            ));
        }
    }
    job
}

/// An event expression: `ev args… (and|or) …`, parenthesised.
#[derive(Debug)]
enum Expr {
    Event(String, Vec<String>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

fn tokens(s: &str) -> Vec<String> {
    s.replace('(', " ( ")
        .replace(')', " ) ")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn parse_expr(toks: &[String], pos: &mut usize) -> Result<Expr, String> {
    let mut left = parse_atom(toks, pos)?;
    while *pos < toks.len() && (toks[*pos] == "and" || toks[*pos] == "or") {
        let op = toks[*pos].clone();
        *pos += 1;
        let right = parse_atom(toks, pos)?;
        left = if op == "and" {
            Expr::And(Box::new(left), Box::new(right))
        } else {
            Expr::Or(Box::new(left), Box::new(right))
        };
    }
    Ok(left)
}

fn parse_atom(toks: &[String], pos: &mut usize) -> Result<Expr, String> {
    let t = toks.get(*pos).ok_or("expression ends early")?.clone();
    *pos += 1;
    if t == "(" {
        let e = parse_expr(toks, pos)?;
        if toks.get(*pos).map(String::as_str) != Some(")") {
            return Err("missing ')'".into());
        }
        *pos += 1;
        return Ok(e);
    }
    if t == ")" || t == "and" || t == "or" {
        return Err(format!("unexpected '{t}'"));
    }
    let mut args = Vec::new();
    while let Some(a) = toks.get(*pos) {
        if a == "and" || a == "or" || a == ")" || a == "(" {
            break;
        }
        args.push(a.clone());
        *pos += 1;
    }
    Ok(Expr::Event(t, args))
}

fn expr(s: &str) -> Result<Expr, String> {
    let toks = tokens(s);
    let mut pos = 0;
    let e = parse_expr(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(format!("trailing '{}'", toks[pos..].join(" ")));
    }
    Ok(e)
}

fn events(e: &Expr, out: &mut Vec<(String, Vec<String>)>) {
    match e {
        Expr::Event(n, a) => out.push((n.clone(), a.clone())),
        Expr::And(a, b) | Expr::Or(a, b) => {
            events(a, out);
            events(b, out);
        }
    }
}

/// Over-approximate: an event (job events by `event job`) is available.
fn holds(e: &Expr, have: &BTreeSet<String>) -> bool {
    match e {
        Expr::Event(n, a) if JOB_EVENTS.contains(&n.as_str()) => {
            have.contains(&format!("{n} {}", a.first().cloned().unwrap_or_default()))
        }
        Expr::Event(n, _) => have.contains(n),
        Expr::And(a, b) => holds(a, have) && holds(b, have),
        Expr::Or(a, b) => holds(a, have) || holds(b, have),
    }
}

/// `initctl emit [--no-wait] NAME`, `start JOB`, `stop JOB` and `umm boot SUB` in shell code.
fn commands(code: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut emitted, mut jobs, mut umm) = (Vec::new(), Vec::new(), Vec::new());
    for line in code.lines() {
        let w: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == ';' || c == '|' || c == '&')
            .filter(|s| !s.is_empty())
            .collect();
        for (k, word) in w.iter().enumerate() {
            if *word == "initctl" && w.get(k + 1) == Some(&"emit") {
                if let Some(ev) = w[k + 2..].iter().find(|a| !a.starts_with('-')) {
                    emitted.push(ev.to_string());
                }
            }
            if (*word == "start" || *word == "stop") && k == 0 {
                if let Some(j) = w.get(1) {
                    jobs.push(j.to_string());
                }
            }
            if word.ends_with("/umm") && w.get(k + 1) == Some(&"boot") {
                if let Some(s) = w.get(k + 2) {
                    umm.push(s.to_string());
                }
            }
        }
    }
    (emitted, jobs, umm)
}

fn umm_subcommand_exists(sub: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_umm"))
        .args(["boot", sub, "--help"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn sh_syntax(code: &str) -> Result<(), String> {
    let o = Command::new("sh")
        .args(["-n", "-c", code])
        .output()
        .map_err(|e| e.to_string())?;
    if o.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// All problems found in a directory of upstart jobs.
fn check(dir: &Path) -> Vec<String> {
    let mut errors = Vec::new();
    let mut jobs: BTreeMap<String, Job> = BTreeMap::new();
    let mut names: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        let Some(job) = file
            .strip_suffix(".conf")
            .or_else(|| file.strip_suffix(".override"))
        else {
            errors.push(format!("{file}: not a .conf or .override file"));
            continue;
        };
        let text = fs::read_to_string(&p).unwrap();
        jobs.insert(job.to_string(), parse(&file, &text, &mut errors));
    }
    let known_job = |j: &str| jobs.contains_key(j) || SYSTEM_JOBS.contains(&j);
    let mut parsed: BTreeMap<String, Expr> = BTreeMap::new();
    for (name, job) in &jobs {
        for code in &job.code {
            if let Err(e) = sh_syntax(code) {
                errors.push(format!("{name}: shell syntax: {e}"));
            }
            let (emitted, started, umm) = commands(code);
            for ev in emitted {
                if !job.emits.contains(&ev) {
                    errors.push(format!(
                        "{name}: emits '{ev}' without an 'emits {ev}' stanza"
                    ));
                }
            }
            for j in started {
                if !known_job(&j) {
                    errors.push(format!("{name}: starts or stops unknown job '{j}'"));
                }
            }
            for s in umm {
                if !umm_subcommand_exists(&s) {
                    errors.push(format!("{name}: 'umm boot {s}' does not exist"));
                }
            }
        }
        for ev in &job.emits {
            if !job.code.iter().any(|c| commands(c).0.contains(ev)) {
                errors.push(format!("{name}: declares 'emits {ev}' but never emits it"));
            }
        }
        if job.start_on.is_none() && !job.override_only {
            errors.push(format!("{name}: no 'start on': the job never starts"));
        }
        for (what, e) in [("start on", &job.start_on), ("stop on", &job.stop_on)] {
            let Some(e) = e else { continue };
            match expr(e) {
                Ok(x) => {
                    let mut evs = Vec::new();
                    events(&x, &mut evs);
                    for (ev, args) in evs {
                        if JOB_EVENTS.contains(&ev.as_str()) {
                            match args.first() {
                                Some(j) if known_job(j) => {}
                                other => errors.push(format!(
                                    "{name}: {what}: '{ev}' of unknown job {other:?}"
                                )),
                            }
                        } else if !SYSTEM_EVENTS.contains(&ev.as_str())
                            && !jobs.values().any(|j| j.emits.contains(&ev))
                        {
                            errors.push(format!("{name}: {what}: nothing emits the event '{ev}'"));
                        }
                    }
                    if what == "start on" {
                        parsed.insert(name.clone(), x);
                    }
                }
                Err(err) => errors.push(format!("{name}: {what} '{e}': {err}")),
            }
        }
    }
    // Simulated boot: system events, then jobs start as their conditions hold.
    let mut have: BTreeSet<String> = SYSTEM_EVENTS
        .iter()
        .filter(|e| **e != "runlevel")
        .map(|e| e.to_string())
        .collect();
    let mut started: BTreeSet<String> = BTreeSet::new();
    loop {
        let before = started.len();
        for (name, x) in &parsed {
            if !started.contains(name) && holds(x, &have) {
                started.insert(name.clone());
                have.insert(format!("starting {name}"));
                have.insert(format!("started {name}"));
                have.extend(jobs[name].emits.iter().cloned());
                if name == "rc-sysinit" {
                    have.insert("runlevel".into());
                    have.insert("starting rc".into());
                }
            }
        }
        if started.len() == before {
            break;
        }
    }
    for must in [
        "umm",
        "rc-sysinit",
        "umm-maintenance",
        "umm-command",
        "umm-getty",
        "umm-stable",
    ] {
        if jobs.contains_key(must) && !started.contains(must) {
            errors.push(format!("simulated boot: '{must}' never starts"));
        }
    }
    errors
}

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("upstart")
}

#[test]
fn shipped_jobs_pass() {
    let errors = check(&shipped());
    assert!(errors.is_empty(), "{errors:#?}");
    assert_eq!(
        fs::read_dir(shipped()).unwrap().count(),
        7,
        "a job was added or removed: update this test and docs/init-systems.md"
    );
}

/// Copies the shipped jobs, applies `edit` to one file, returns the errors.
fn broken(file: &str, edit: impl Fn(&str) -> String) -> Vec<String> {
    let d = tempfile::tempdir().unwrap();
    for e in fs::read_dir(shipped()).unwrap() {
        let p = e.unwrap().path();
        let mut text = fs::read_to_string(&p).unwrap();
        if p.file_name().unwrap() == file {
            let new = edit(&text);
            assert_ne!(new, text, "the edit changed nothing");
            text = new;
        }
        fs::write(d.path().join(p.file_name().unwrap()), text).unwrap();
    }
    check(d.path())
}

fn expect(errors: Vec<String>, needle: &str) {
    assert!(
        errors.iter().any(|e| e.contains(needle)),
        "expected an error containing {needle:?}, got {errors:#?}"
    );
}

#[test]
fn negative_controls() {
    // The runlevel waits for an event nobody emits.
    expect(
        broken("rc-sysinit.override", |t| {
            t.replace("start on umm", "start on umm-go")
        }),
        "nothing emits the event 'umm-go'",
    );
    // A job emits an event it does not declare, and the declared one never comes.
    expect(
        broken("umm.conf", |t| {
            t.replace(
                "initctl emit --no-wait umm-maintenance",
                "initctl emit --no-wait umm-mm",
            )
        }),
        "emits 'umm-mm' without",
    );
    expect(
        broken("umm-getty.conf", |t| {
            t.replace("respawn\n", "respawn\nscript\n  true\n")
        }),
        "without 'end script'",
    );
    expect(
        broken("umm-command.conf", |t| t.replace("task", "taks")),
        "unknown stanza 'taks'",
    );
    expect(
        broken("umm-stable.conf", |t| {
            t.replace("wait-stable", "wait-stabel")
        }),
        "'umm boot wait-stabel' does not exist",
    );
    expect(
        broken("umm-maintenance.conf", |t| {
            t.replace("end script\n\nscript", "fi\nend script\n\nscript")
        }),
        "shell syntax",
    );
    expect(
        broken("umm-command.conf", |t| {
            t.replace("started umm-maintenance", "started umm-maintenace")
        }),
        "unknown job",
    );
    expect(
        broken("umm.conf", |t| {
            t.replace("or failsafe-boot", "or (failsafe-boot")
        }),
        "missing ')'",
    );
}
