//! The report of a check, in four forms: text for a person (`text`), JSON for scripts
//! (`json`), JUnit XML for CI (`junit`) and Gradescope's `results.json` (`gradescope`),
//! and the writing of the files asked for.

pub mod gradescope;
pub mod json;
pub mod junit;
pub mod text;

use super::runner::Report;
use std::path::Path;

/// JSON as people read it, with a final newline.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()) + "\n"
}

/// Writes `text` to `path`, making its folder first.
pub fn write(path: &Path, text: &str) -> Result<(), String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The files a check can write: each is written when its path is given.
#[derive(Debug, Clone, Default)]
pub struct Files<'a> {
    pub text: Option<&'a Path>,
    pub json: Option<&'a Path>,
    pub junit: Option<&'a Path>,
    pub gradescope: Option<&'a Path>,
}

impl Files<'_> {
    /// Writes every file asked for; the text report is the verbose one.
    pub fn write(&self, report: &Report) -> Result<(), String> {
        if let Some(path) = self.text {
            write(path, &text::render(report, true, false))?;
        }
        if let Some(path) = self.json {
            write(path, &pretty(&json::render(report)))?;
        }
        if let Some(path) = self.junit {
            write(path, &junit::render(report))?;
        }
        if let Some(path) = self.gradescope {
            write(path, &pretty(&gradescope::render(report)))?;
        }
        Ok(())
    }
}
