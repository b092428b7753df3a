//! Keeps `include/iocp.h` and `tests/c/symbols.c` in step with the Rust side: every
//! function the library exports (`extern "C" fn` in `src/`) must be declared in the header
//! and listed in `symbols.c`, which takes the address of each (so it compiles only if the
//! header declares them and links only if the library defines them).

use std::path::Path;

fn exported() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("read");
        for line in text.lines() {
            if let Some(rest) = line.split("extern \"C\" fn ").nth(1) {
                if line.trim_start().starts_with("pub") {
                    names.push(rest.split('(').next().expect("name").to_string());
                }
            }
        }
    }
    names.sort();
    assert!(names.len() > 40, "expected the whole API, found {names:?}");
    names
}

#[test]
fn every_export_is_declared_in_the_header_and_listed_in_symbols_c() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let header = std::fs::read_to_string(root.join("include/iocp.h")).expect("iocp.h");
    let symbols = std::fs::read_to_string(root.join("tests/c/symbols.c")).expect("symbols.c");
    for name in exported() {
        // `TYPE name(` or `TYPE *name(`, outside the header's inline wrappers.
        let (plain, pointer) = (format!(" {name}("), format!("*{name}("));
        assert!(
            header.lines().any(|l| (l.contains(&plain) || l.contains(&pointer))
                && !l.trim_start().starts_with("static")
                && !l.trim_start().starts_with("return")),
            "iocp.h does not declare {name}"
        );
        assert!(symbols.contains(&format!("(fnptr){name},")), "tests/c/symbols.c does not list {name}");
    }
}
