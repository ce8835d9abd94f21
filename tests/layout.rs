//! The layout's rules, checked from the source: no module imports another that imports it back
//! (directly or through others), and each folder uses only what its `mod.rs` says it may.
//!
//! Edges are read from paths in code (comments are skipped): `crate::a::b::..`, `super::..`,
//! and in a folder's `mod.rs` its own children (`clock::Wall`). A path resolves to the longest
//! module it names; a parent folder declaring its children is containment, not an edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `src/a/b.rs` -> `a::b`, `src/a/mod.rs` -> `a`, `src/lib.rs` -> `` (the crate root).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().unwrap() != "bin" {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without `//` comments (doc links name modules without using them).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path that starts at `start` in `code` (e.g. `crate::`), as its `::` segments; a
/// `{a::b, c}` group after the prefix gives one path per item.
fn paths_after(code: &str, start: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(start) {
        let before_ok = rest[..i].chars().last().is_none_or(|c| !ident(c));
        rest = &rest[i + start.len()..];
        if !before_ok {
            continue;
        }
        let read = |s: &str| -> Vec<String> {
            let mut segs = Vec::new();
            let mut s = s;
            loop {
                let n = s.find(|c: char| !ident(c)).unwrap_or(s.len());
                if n == 0 {
                    break;
                }
                segs.push(s[..n].to_string());
                s = &s[n..];
                match s.strip_prefix("::") {
                    Some(t) => s = t,
                    None => break,
                }
            }
            segs
        };
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                out.push(read(item.trim()));
            }
        } else {
            out.push(read(rest));
        }
    }
    out
}

struct Crate {
    /// Module path -> the modules it uses.
    uses: BTreeMap<String, BTreeSet<String>>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    // The longest module a path names.
    let resolve = |segs: &[String]| -> Option<String> {
        (1..=segs.len()).rev().map(|n| segs[..n].join("::")).find(|m| modules.contains(m))
    };
    let mut uses = BTreeMap::new();
    for file in &files {
        let me = module_of(&src, file);
        // `use super::*` in an inline `mod tests` (or any inline module) names the file itself.
        let text = code(&std::fs::read_to_string(file).unwrap()).replace("use super::*;", "");
        let mut found = BTreeSet::new();
        for segs in paths_after(&text, "crate::") {
            found.extend(resolve(&segs));
        }
        // `super::` from `a::b` (file a/b.rs) is `a`; its children are siblings of `b`.
        let parent: Vec<String> = me.split("::").filter(|s| !s.is_empty()).map(String::from).collect();
        let parent = &parent[..parent.len().saturating_sub(1)];
        for segs in paths_after(&text, "super::") {
            let full: Vec<String> = parent.iter().cloned().chain(segs).collect();
            found.extend(resolve(&full));
        }
        // A folder's mod.rs naming its own children.
        if file.file_name().unwrap() == "mod.rs" {
            for child in modules.iter().filter(|m| m.rsplit_once("::").map(|(p, _)| p) == Some(me.as_str())) {
                let name = child.rsplit("::").next().unwrap();
                if paths_after(&text, &format!("{name}::")).iter().any(|p| !p.is_empty()) {
                    found.insert(child.clone());
                }
            }
        }
        found.remove(&me);
        found.remove(""); // the crate root declares the folders; nothing uses it
        uses.insert(me, found);
    }
    Crate { uses }
}

/// A cycle through `from`, as the modules along it, if there is one.
fn cycle_from(c: &Crate, from: &str) -> Option<Vec<String>> {
    fn walk(c: &Crate, at: &str, target: &str, path: &mut Vec<String>, seen: &mut BTreeSet<String>) -> bool {
        for next in c.uses.get(at).into_iter().flatten() {
            if next == target {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(c, next, target, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![from.to_string()];
    walk(c, from, from, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let c = read_crate();
    assert!(c.uses.len() > 30, "found only {} modules under src/", c.uses.len());
    // The reader sees real edges (a failure here means the scan broke, not the layout).
    assert!(c.uses["run::harness"].contains("run::batcher") || c.uses["run::scenarios"].contains("run::batcher"));
    assert!(c.uses["run::batcher"].contains("run::requests"));
    let cycles: Vec<String> = c.uses.keys().filter_map(|m| cycle_from(&c, m)).map(|p| p.join(" -> ")).collect();
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
}

#[test]
fn each_folder_uses_only_what_it_may() {
    let c = read_crate();
    let top = |m: &str| m.split("::").next().unwrap().to_string();
    // Folder -> the top-level modules it may use besides itself (from each mod.rs).
    let allowed: &[(&str, &[&str])] = &[
        ("engine", &[]),
        ("model", &["engine"]),
        ("engines", &["engine", "model"]),
        ("measure", &["engine"]),
        ("results", &["engine", "model", "measure"]),
        ("report", &["results", "measure::stats"]),
        ("run", &["engine", "engines", "model", "measure", "results", "report"]),
    ];
    let mut wrong = Vec::new();
    for (module, used) in &c.uses {
        let Some((_, may)) = allowed.iter().find(|(f, _)| *f == top(module)) else { continue };
        for u in used {
            let ok = top(u) == top(module) || may.iter().any(|m| u == m || u.starts_with(&format!("{m}::")) || top(u) == *m);
            if !ok {
                wrong.push(format!("{module} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "uses across the layout's rules:\n{}", wrong.join("\n"));
}
