//! What the tests that run the real binary as a bench share: the binary under a bench's name in a
//! fresh folder (it runs the bench its name says, as `cargo bench --bench <name>` does), and the
//! records a run wrote.
#![allow(dead_code)] // each test binary uses what it needs of this

use std::path::{Path, PathBuf};

/// A fresh temporary folder for test `tag`, and in it a link to the binary named `bench`.
pub fn bench_link(tag: &str, bench: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("llm-bench-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join(bench);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_llm-bench"), &link).unwrap();
    (dir, link)
}

/// Every line of a run folder's `results.jsonl` (none when it has no such file), each of which must parse.
pub fn results(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("a results line does not parse ({e}): {l}")))
        .collect()
}
