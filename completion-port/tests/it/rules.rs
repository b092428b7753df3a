//! The rules themselves: every rule id cited anywhere in the repository is defined in
//! `docs/semantics.md`, and every test that file names exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The letters that start a rule id: Port, Handle, File, Network, Shutdown.
const FAMILIES: &[u8] = b"PHFNS";

/// The rule ids cited in `text`, with their 1-based line numbers.
///
/// An id is one of `P H F N S`, then a number from 1 to 99 without a leading zero, standing
/// alone: not inside a longer word or number (`SHA256`, `H264`, `p9_test`, `xP2`), and not
/// the start of a decimal (`P99.9`). Ranges such as `P1–P10` cite both ends.
fn cited_ids(text: &str) -> Vec<(String, usize)> {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let b = line.as_bytes();
        for i in 0..b.len() {
            if !FAMILIES.contains(&b[i]) || (i > 0 && is_word(b[i - 1])) {
                continue;
            }
            let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if !(1..=2).contains(&digits) || b[i + 1] == b'0' {
                continue;
            }
            let end = i + 1 + digits;
            let next = b.get(end).copied();
            if next.is_some_and(is_word) {
                continue;
            }
            if next == Some(b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
                continue;
            }
            found.push((line[i..end].to_string(), n + 1));
        }
    }
    found
}

/// The ids `docs/semantics.md` defines: one `### ID title` heading each.
fn defined_ids(semantics: &str) -> BTreeSet<String> {
    semantics
        .lines()
        .filter_map(|l| l.strip_prefix("### "))
        .filter_map(|h| cited_ids(h.split_whitespace().next()?).pop())
        .map(|(id, _)| id)
        .collect()
}

/// The tests `docs/semantics.md` names, as (path under `completion-port/tests/`, function).
fn named_tests(semantics: &str) -> Vec<(String, String)> {
    semantics
        .split('`')
        .skip(1)
        .step_by(2) // the text between backticks
        .filter_map(|code| code.split_once(".rs::"))
        .map(|(file, test)| (format!("{file}.rs"), test.to_string()))
        .collect()
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the crate sits in the workspace").to_path_buf()
}

/// The repository's files: tracked and untracked-but-not-ignored, so a new file is
/// checked before it is committed. Falls back to walking the tree without `git`.
fn repo_files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args(["ls-files", "-z", "--cached", "--others", "--exclude-standard"])
        .current_dir(root)
        .output();
    if let Some(out) = listed.as_ref().ok().filter(|o| o.status.success()) {
        return out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .filter(|p| p.is_file())
            .collect();
    }
    eprintln!("rules: git ls-files unavailable ({listed:?}); walking {}", root.display());
    let mut files = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read a repository directory").flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Text files worth scanning: not binary, not the lock file (package checksums).
fn text_of(path: &Path) -> Option<String> {
    if path.file_name().is_some_and(|n| n == "Cargo.lock") {
        return None;
    }
    let bytes = std::fs::read(path).ok()?;
    if bytes.contains(&0) {
        return None;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

fn semantics() -> Option<String> {
    let path = repo_root().join("docs/semantics.md");
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            // A packaged crate has no repository around it: say so rather than pass quietly.
            eprintln!("SKIPPED: {} unreadable ({e}); not in a repository checkout", path.display());
            None
        }
    }
}

// Every rule id cited anywhere in the repository (code, comments, docs, scripts) is defined
// in docs/semantics.md.
#[test]
fn every_cited_rule_is_defined() {
    let Some(semantics) = semantics() else { return };
    let defined = defined_ids(&semantics);
    assert!(defined.len() >= 30, "docs/semantics.md defines too few rules: {defined:?}");
    let root = repo_root();
    let files = repo_files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("completion-port/src/port.rs")),
        "the file list misses the library"
    );
    let mut undefined = Vec::new();
    let mut citations = 0;
    for file in &files {
        let Some(text) = text_of(file) else { continue };
        for (id, line) in cited_ids(&text) {
            citations += 1;
            if !defined.contains(&id) {
                undefined
                    .push(format!("{}:{line}: {id}", file.strip_prefix(&root).unwrap_or(file).display()));
            }
        }
    }
    assert!(citations > 100, "only {citations} citations found: is the scan reading the repository?");
    assert!(
        undefined.is_empty(),
        "rule ids cited but not defined in docs/semantics.md:\n{}",
        undefined.join("\n")
    );
}

// Every test docs/semantics.md names as checking a rule exists under that name.
#[test]
fn every_test_named_by_the_rules_exists() {
    let Some(semantics) = semantics() else { return };
    let tests_dir = repo_root().join("completion-port/tests");
    let named = named_tests(&semantics);
    assert!(named.len() > 40, "docs/semantics.md names too few tests: {named:?}");
    let missing: Vec<_> = named
        .iter()
        .filter(|(file, test)| {
            let source = std::fs::read_to_string(tests_dir.join(file)).unwrap_or_default();
            !source.contains(&format!("fn {test}("))
        })
        .map(|(file, test)| format!("{file}::{test}"))
        .collect();
    assert!(missing.is_empty(), "tests named in docs/semantics.md that do not exist: {missing:?}");
}

// The rules' old home, a file outside the repository, is no longer cited.
#[test]
fn nothing_cites_the_old_rules_file() {
    let root = repo_root();
    let old = ["IOCP", ".md"].concat();
    let citing: Vec<_> = repo_files(&root)
        .into_iter()
        .filter(|f| {
            !f.starts_with(root.join("benchmarks/results")) && text_of(f).is_some_and(|t| t.contains(&old))
        })
        .collect();
    assert!(citing.is_empty(), "files citing {old} instead of docs/semantics.md: {citing:?}");
}

#[test]
fn the_id_pattern_matches_ids_and_nothing_else() {
    let ids = |s: &str| cited_ids(s).into_iter().map(|(id, _)| id).collect::<Vec<_>>();
    assert_eq!(ids("// IOCP P7, P3 (c): x"), ["P7", "P3"]);
    assert_eq!(ids("rules P1–P10, H4-H8 and (S2)."), ["P1", "P10", "H4", "H8", "S2"]);
    assert_eq!(ids("N6: zero-byte; F1/F2; [H10]"), ["N6", "F1", "F2", "H10"]);
    assert!(ids("SHA256 H264 P100 P0 P07 p9_test xP2 P9a L2 E402 P99.9 Pn").is_empty());
    assert_eq!(cited_ids("a\nb H3\n"), [("H3".to_string(), 2)]);
    assert_eq!(
        defined_ids("### P1 Title\n## P2 not a rule heading\n### Words"),
        BTreeSet::from(["P1".into()])
    );
    assert_eq!(
        named_tests("by `it/port.rs::p1_x`, `loom.rs::y` and `ci/valgrind.sh`"),
        [("it/port.rs".to_string(), "p1_x".to_string()), ("loom.rs".into(), "y".into())]
    );
}
