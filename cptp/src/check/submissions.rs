//! `--submissions DIR`: grade a class. Every subfolder of DIR is one student's submission,
//! checked as with `--copy`; a few are checked at once (`-j`), each with its rules running
//! concurrently, and each gets a summary row and, with `--out`, its own reports.

use super::ctx::Subject;
use super::options::Config;
use super::report::text::points;
use super::report::{Files, write};
use super::runner::{self, Check, Report};
use super::target::{Grounds, Launcher};
use crate::sync::lock;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;

/// Grades every submission; returns whether all of them conform.
pub fn run(
    config: &Config,
    dir: &Path,
    command: &[String],
    jobs: usize,
    out: Option<&Path>,
    grounds: &Arc<Grounds>,
) -> Result<bool, String> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        // Hidden folders (.git) are no submissions, nor is the reports folder when it
        // sits inside DIR (a second run would grade it).
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .filter(|path| out.is_none_or(|out| !same_folder(path, out)))
        .collect();
    folders.sort();
    if folders.is_empty() {
        return Err(format!("{} holds no submission folders", dir.display()));
    }
    println!(
        "{:<24} {:>6} {:>6} {:>7} {:>6} {:>7} {:>9} {:>7}",
        "submission", "passed", "failed", "blocked", "warned", "skipped", "score", "seconds"
    );
    let queue = Mutex::new(folders.into_iter().collect::<VecDeque<_>>());
    let rows: Mutex<Vec<(String, Report)>> = Mutex::new(Vec::new());
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                loop {
                    let next = lock(&queue).pop_front();
                    let Some(folder) = next else { break };
                    let name = folder
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let launcher = Launcher::Command {
                        command: command.to_vec(),
                        copy: Some(folder.clone()),
                    };
                    let check = Check {
                        subject: Subject::Launch(Arc::new(launcher)),
                        strict: config.strict,
                        scale: config.scale,
                        parallel: config.parallel,
                        points: config.points.clone(),
                        grounds: Arc::clone(grounds),
                    };
                    let title = format!("{} in {}", command.join(" "), folder.display());
                    let report = runner::run(&check, &config.rules, title);
                    println!("{}", row(&name, &report));
                    if let Some(out) = out
                        && let Err(e) = write_one(&out.join(&name), &report)
                    {
                        lock(&errors).push(e);
                    }
                    lock(&rows).push((name, report));
                }
            });
        }
    });
    let mut rows = rows.into_inner().unwrap_or_else(|p| p.into_inner());
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let failing = rows.iter().filter(|(_, r)| !r.conforms()).count();
    println!(
        "{} submissions: {} conform, {failing} fail a rule",
        rows.len(),
        rows.len() - failing
    );
    if let Some(out) = out {
        let mut csv = String::from(
            "submission,passed,failed,blocked,warned,skipped,score,max_score,seconds\n",
        );
        for (name, report) in &rows {
            let t = report.tally();
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{},{:.1}\n",
                csv_field(name),
                t.passed,
                t.failed,
                t.blocked,
                t.warned,
                t.skipped,
                points(report.score()),
                points(report.max_score()),
                report.elapsed.as_secs_f64()
            ));
        }
        write(&out.join("summary.csv"), &csv)?;
    }
    if let Some(e) = errors
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .first()
    {
        return Err(e.clone());
    }
    Ok(failing == 0)
}

fn row(name: &str, report: &Report) -> String {
    let t = report.tally();
    format!(
        "{:<24} {:>6} {:>6} {:>7} {:>6} {:>7} {:>9} {:>7.1}",
        name,
        t.passed,
        t.failed,
        t.blocked,
        t.warned,
        t.skipped,
        format!("{}/{}", points(report.score()), points(report.max_score())),
        report.elapsed.as_secs_f64()
    )
}

/// Writes one submission's reports into `dir`.
fn write_one(dir: &Path, report: &Report) -> Result<(), String> {
    let files = [
        dir.join("report.txt"),
        dir.join("report.json"),
        dir.join("junit.xml"),
        dir.join("results.json"),
    ];
    Files {
        text: Some(&files[0]),
        json: Some(&files[1]),
        junit: Some(&files[2]),
        gradescope: Some(&files[3]),
    }
    .write(report)
}

/// Quotes a CSV field when it needs it.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// True when `a` and `b` name the same folder.
fn same_folder(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
