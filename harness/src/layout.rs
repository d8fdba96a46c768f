//! The layout the module map of `lib.rs` promises: data flows one way, so no module's
//! code imports a module declared after it, and no source file is too long to read.

use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The modules of `lib.rs`, in the order they are declared.
fn modules() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect()
}

/// Every `.rs` file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The code of a file that is not a test: its lines before a trailing
/// `#[cfg(test)] mod tests` block, without comments; nothing for a test file.
fn code(path: &Path) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy();
    if name == "tests.rs" || name == "testutil.rs" || name == "layout.rs" {
        return Vec::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => &text,
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//"))
        .map(str::to_string)
        .collect()
}

/// The top-level modules `line` names as `crate::<module>`.
fn named<'a>(line: &'a str, modules: &'a [String]) -> impl Iterator<Item = &'a String> + 'a {
    line.match_indices("crate::").filter_map(move |(i, _)| {
        let rest = &line[i + "crate::".len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        modules.iter().find(|m| **m == rest[..end])
    })
}

#[test]
fn no_module_imports_one_declared_after_it() {
    let modules = modules();
    assert!(modules.len() > 15, "{modules:?}");
    // The scan finds what it must (its negative control).
    let found: Vec<&String> =
        named("use crate::run::x; crate::suitcase crate::plan", &modules).collect();
    assert_eq!(found, ["run", "plan"]);
    let mut wrong = Vec::new();
    for (rank, module) in modules.iter().enumerate() {
        let dir = src().join(module);
        let paths = if dir.is_dir() {
            files(&dir)
        } else {
            vec![src().join(format!("{module}.rs"))]
        };
        for path in paths {
            for line in code(&path) {
                for used in named(&line, &modules) {
                    let used_rank = modules.iter().position(|m| m == used).unwrap();
                    if used_rank > rank {
                        let file = path.strip_prefix(src()).unwrap().display().to_string();
                        wrong.push(format!("{file}: {module} uses {used}: {line}"));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn only_suite_run_and_cli_read_suites() {
    // Spelled apart so this file does not read as one of them.
    let needle = ["crate", "suite"].join("::");
    let mut readers = Vec::new();
    // Their code, that is: a test of another module may load a suite to get a plan.
    for path in files(&src()) {
        if code(&path).iter().any(|line| line.contains(&needle)) {
            let file = path.strip_prefix(src()).unwrap().display().to_string();
            readers.push(file.split('/').next().unwrap().to_string());
        }
    }
    readers.sort();
    readers.dedup();
    assert_eq!(readers, ["cli", "run", "suite"]);
}

#[test]
fn no_source_file_has_more_than_600_lines_of_code() {
    let mut long = Vec::new();
    for path in files(&src()) {
        let lines = code(&path).len();
        if lines > 600 {
            long.push(format!("{}: {lines}", path.display()));
        }
    }
    assert!(long.is_empty(), "{long:?}");
}
