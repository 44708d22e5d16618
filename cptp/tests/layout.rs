//! The shape of the workspace, as issue-free as the code: the judge depends on nothing of
//! what it judges, the peer carries no dependency of the toolbox, and in every library the
//! modules depend one way: no cycle, and no module that uses the module that declares it.
//!
//! The module graph is read from the source text: every `crate::`, `super::` and `self::`
//! path (in `use` lines, braces expanded, and in code) is resolved to the deepest module it
//! names. Unit tests (`#[cfg(test)]` onwards) are left out: a test module uses its parent
//! by design.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The dependency names of one `[section]` of a manifest.
fn dependencies(manifest: &Path, section: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut inside = false;
    let mut names = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == format!("[{section}]");
            continue;
        }
        if inside
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.insert(name.trim().to_string());
        }
    }
    names
}

#[test]
fn the_judge_shares_nothing_with_the_judged() {
    let cptp = workspace().join("cptp/Cargo.toml");
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        assert!(
            !dependencies(&cptp, section).contains("peer"),
            "cptp's {section} name peer"
        );
    }
    let source = collect(&workspace().join("cptp/src"));
    for (module, text) in &source {
        assert!(
            !text.contains("peer::"),
            "cptp's {module} uses the peer crate"
        );
    }
}

#[test]
fn the_peer_builds_with_the_crates_of_its_design() {
    let peer = dependencies(&workspace().join("Cargo.toml"), "dependencies");
    let expected = [
        "byteorder",
        "env_logger",
        "getopts",
        "log",
        "rand",
        "socket2",
    ];
    assert_eq!(peer, expected.iter().map(|s| s.to_string()).collect());
}

/// Every module of the library in `src`: its path (`check::rules::joining`, `` for the
/// root) and its text up to its unit tests.
fn collect(src: &Path) -> BTreeMap<String, String> {
    let mut modules = BTreeMap::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "bin") {
                    folders.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("main.rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut parts: Vec<String> = relative
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
                parts.pop();
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_string();
            modules.insert(parts.join("::"), code);
        }
    }
    modules
}

/// `a::{b, c::{d, e}}` as `a::b`, `a::c::d`, `a::c::e`.
fn expand(path: &str) -> Vec<String> {
    let Some(open) = path.find('{') else {
        return vec![path.trim().to_string()];
    };
    let prefix = &path[..open];
    let inner = &path[open + 1..path.rfind('}').unwrap_or(path.len())];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(&format!("{prefix}{}", p.trim())))
        .collect()
}

/// Every path starting `crate::`, `super::` or `self::` in `code`.
fn paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for statement in code.split(';') {
        let statement = statement.trim();
        let body = statement.strip_prefix("pub ").unwrap_or(statement);
        let body = body.strip_prefix("pub(crate) ").unwrap_or(body);
        if let Some(used) = body.strip_prefix("use ") {
            found.extend(expand(&used.replace(char::is_whitespace, "")));
        }
    }
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if at > 0
                && (bytes[at - 1].is_ascii_alphanumeric()
                    || bytes[at - 1] == b'_'
                    || bytes[at - 1] == b':')
            {
                continue;
            }
            let end = code[at..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |n| at + n);
            found.push(code[at..end].trim_end_matches(':').to_string());
        }
    }
    found
}

/// The module a path names from `module`: the deepest module on its way.
fn resolve(module: &str, path: &str, modules: &BTreeMap<String, String>) -> Option<String> {
    let mut at: Vec<&str> = match module {
        "" => Vec::new(),
        m => m.split("::").collect(),
    };
    let mut segments = path.split("::").peekable();
    match segments.peek() {
        Some(&"crate") => {
            at.clear();
            segments.next();
        }
        Some(&"self") => {
            segments.next();
        }
        Some(&"super") => {
            while segments.peek() == Some(&"super") {
                at.pop()?;
                segments.next();
            }
        }
        _ => return None,
    }
    for segment in segments {
        let mut deeper = at.clone();
        deeper.push(segment);
        if modules.contains_key(&deeper.join("::")) {
            at = deeper;
        } else {
            break;
        }
    }
    Some(at.join("::"))
}

/// The problems of the module graph of the library in `src`.
fn problems(src: &Path) -> Vec<String> {
    let modules = collect(src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut found = Vec::new();
    for (module, code) in &modules {
        for path in paths(code) {
            let Some(to) = resolve(module, &path, &modules) else {
                continue;
            };
            if to == *module {
                continue;
            }
            let ancestor = to.is_empty() || module.starts_with(&format!("{to}::"));
            if ancestor {
                found.push(format!("{module} uses its ancestor '{to}' ({path})"));
            }
            edges.entry(module.clone()).or_default().insert(to);
        }
    }
    // A cycle: a module reachable from itself.
    for start in modules.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = edges.get(start).into_iter().flatten().cloned().collect();
        while let Some(next) = stack.pop() {
            if next == *start {
                found.push(format!("{start} is part of a cycle"));
                break;
            }
            if seen.insert(next.clone()) {
                stack.extend(edges.get(&next).into_iter().flatten().cloned());
            }
        }
    }
    found
}

#[test]
fn modules_depend_one_way_in_every_library() {
    for src in ["cptp/src", "src"] {
        let found = problems(&workspace().join(src));
        assert!(found.is_empty(), "{src}:\n{}", found.join("\n"));
    }
}

#[test]
fn the_graph_reader_sees_a_cycle_and_a_back_reference() {
    let dir = std::env::temp_dir().join(format!("cptp-layout-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a; mod b;").unwrap();
    std::fs::write(dir.join("a.rs"), "use crate::b::c::Thing;").unwrap();
    std::fs::write(dir.join("b/mod.rs"), "mod c;\npub fn f() {}").unwrap();
    std::fs::write(dir.join("b/c.rs"), "use super::f;\nuse crate::{a::X, b};").unwrap();
    let found = problems(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("b::c uses its ancestor 'b'")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p == "a is part of a cycle"),
        "{found:?}"
    );
}
