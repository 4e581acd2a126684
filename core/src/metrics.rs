//! Prometheus metrics as a node_exporter textfile (the textfile collector
//! reads every `*.prom` file of its directory at each scrape; docs/metrics.md).
//! umm and rebootmgr each write their own file, so they never race on one.
//!
//! The file is written with [`fsutil::write_atomic`] (temp file in the same
//! directory, fsync, rename), so a scrape sees the old or the new file, never
//! half of one. The directory is never created: a missing directory means
//! node_exporter's textfile collector is not set up on this node, which is
//! reported and never fails the caller.

use crate::fsutil;
use crate::paths::Root;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The directory Debian's prometheus-node-exporter reads
/// (`--collector.textfile.directory`).
pub const DEFAULT_DIR: &str = "/var/lib/prometheus/node-exporter";

/// Metrics in the text exposition format, built in order.
#[derive(Debug, Default, Clone)]
pub struct Textfile {
    text: String,
}

impl Textfile {
    pub fn new() -> Textfile {
        Textfile::default()
    }

    /// A gauge's HELP and TYPE lines (once per metric name).
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut Self {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} gauge");
        self
    }

    /// One sample of the gauge declared last.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(name);
        if !labels.is_empty() {
            let l: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.text, "{{{}}}", l.join(","));
        }
        let _ = writeln!(self.text, " {value}");
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A label value as the format wants it: `\`, `"` and newlines escaped.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What became of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written {
    Done(PathBuf),
    /// Metrics are turned off (an empty path).
    Off,
}

/// Why a write did not happen; the message is for a warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The directory does not exist (node_exporter not set up here).
    MissingDir(String),
    Failed(String),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::MissingDir(m) | WriteError::Failed(m) => f.write_str(m),
        }
    }
}

/// Writes `t` to `file` (as on the running system, under `root`). A
/// missing directory or a failed write is an `Err` for a warning: the
/// caller logs it and goes on.
pub fn write(root: &Root, file: &Path, t: &Textfile) -> Result<Written, WriteError> {
    if file.as_os_str().is_empty() {
        return Ok(Written::Off);
    }
    if !file.is_absolute() {
        return Err(WriteError::Failed(format!(
            "metrics not written: {} is not an absolute path",
            file.display()
        )));
    }
    let real = root.path(file);
    let dir = real.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        return Err(WriteError::MissingDir(format!(
            "metrics not written: the directory of {} does not exist (install prometheus-node-exporter, \
             or point the metrics file at its --collector.textfile.directory; an empty path turns metrics off)",
            file.display()
        )));
    }
    fsutil::write_atomic(&real, t.text().as_bytes(), 0o644)
        .map(|()| Written::Done(file.to_path_buf()))
        .map_err(|e| WriteError::Failed(format!("metrics not written to {}: {e}", file.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_help_type_labels_and_values() {
        let mut t = Textfile::new();
        t.gauge("x_mode", "The mode.\nSecond line.")
            .sample("x_mode", &[("mode", "a\"b\\c\nd"), ("r", "")], 1.0)
            .sample("x_mode", &[], 0.0)
            .gauge("x_time", "Unix time.")
            .sample("x_time", &[], 1700000000.0);
        assert_eq!(
            t.text(),
            "# HELP x_mode The mode.\\nSecond line.\n# TYPE x_mode gauge\n\
             x_mode{mode=\"a\\\"b\\\\c\\nd\",r=\"\"} 1\nx_mode 0\n\
             # HELP x_time Unix time.\n# TYPE x_time gauge\nx_time 1700000000\n"
        );
    }

    #[test]
    fn a_missing_directory_is_reported_not_created() {
        let d = tempfile::tempdir().unwrap();
        let root = Root::new(d.path());
        let mut t = Textfile::new();
        t.gauge("x", "x").sample("x", &[], 1.0);
        let e = write(&root, Path::new("/nope/x.prom"), &t).unwrap_err();
        assert!(
            matches!(&e, WriteError::MissingDir(m) if m.contains("does not exist")),
            "{e}"
        );
        assert!(!d.path().join("nope").exists());
        assert_eq!(write(&root, Path::new(""), &t), Ok(Written::Off));
        let e = write(&root, Path::new("x.prom"), &t).unwrap_err();
        assert!(e.to_string().contains("not an absolute path"), "{e}");
        std::fs::create_dir(d.path().join("prom")).unwrap();
        let p = Path::new("/prom/x.prom");
        assert_eq!(write(&root, p, &t), Ok(Written::Done(p.to_path_buf())));
        assert_eq!(
            std::fs::read_to_string(d.path().join("prom/x.prom")).unwrap(),
            t.text()
        );
    }
}
