//! Smoke tests: each benchmark binary runs briefly and prints its summary. fio is not
//! needed (only the port and raw io_uring variants run), so these pass on CI machines
//! without it.

use std::process::Command;

fn run(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin).args(args).output().expect("the benchmark binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{bin} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn pingpong_runs_every_variant() {
    let out = run(env!("CARGO_BIN_EXE_pingpong"), &["--seconds", "0.05", "--rounds", "1"]);
    for v in ["port", "port-nobatch", "raw", "raw-dt"] {
        assert!(out.contains(&format!("round=1 {v} ")), "{v} missing from:\n{out}");
    }
    assert!(out.contains("port/raw"), "{out}");
}

#[test]
fn pingpong_runs_the_multishot_echo() {
    let out = Command::new(env!("CARGO_BIN_EXE_pingpong"))
        .args(["--seconds", "0.05", "--rounds", "1", "--variants", "raw,raw-ms"])
        .output()
        .expect("the benchmark binary runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        assert!(stdout.contains("round=1 raw-ms "), "{stdout}");
        assert!(stdout.contains("raw-ms/raw"), "{stdout}");
    } else {
        // A kernel without provided-buffer rings or multishot receives says so; nothing
        // else may fail.
        assert!(
            stderr.contains("raw-ms: ") && stderr.contains("not supported by this kernel"),
            "{stdout}{stderr}"
        );
    }
}

#[test]
fn randread_runs_the_port_variants() {
    let dir = std::env::temp_dir().join(format!("cport-bench-smoke-{}", std::process::id()));
    let file = dir.to_string_lossy().into_owned();
    let out = run(
        env!("CARGO_BIN_EXE_randread"),
        &[
            "--file",
            &file,
            "--size-mib",
            "4",
            "--seconds",
            "0.05",
            "--rounds",
            "1",
            "--variants",
            "port,port-nobatch",
        ],
    );
    let _ = std::fs::remove_file(&dir);
    for d in ["depth=1 ", "depth=32 "] {
        let found = out.lines().any(|l| l.contains(d) && l.contains("round=1 port ") && l.contains("IOPS"));
        assert!(found, "{d}port missing from:\n{out}");
    }
    assert!(out.contains("port-nobatch"), "{out}");
}

#[test]
fn randread_runs_ports_side_by_side_and_threads_on_one_port() {
    for layout in ["--ports", "--port-threads"] {
        let dir = std::env::temp_dir().join(format!("cport-bench-smoke-{layout}-{}", std::process::id()));
        let file = dir.to_string_lossy().into_owned();
        let args = ["--file", &file, "--size-mib", "4", "--seconds", "0.05", "--rounds", "1"];
        let out = run(
            env!("CARGO_BIN_EXE_randread"),
            &[&args[..], &["--depths", "8", "--variants", "port", layout, "2"]].concat(),
        );
        let _ = std::fs::remove_file(&dir);
        let found =
            out.lines().any(|l| l.contains("depth=8 ") && l.contains("round=1 port ") && l.contains("IOPS"));
        assert!(found, "{layout}: port missing from:\n{out}");
    }
}

#[test]
fn mpmc_runs_every_queue() {
    for imp in ["port", "crossbeam", "crossbeam3"] {
        let out = run(
            env!("CARGO_BIN_EXE_mpmc"),
            &["--imp", imp, "--posters", "3", "--getters", "2", "--messages", "30000"],
        );
        // The binary itself asserts that exactly 30 000 messages arrived.
        assert!(out.contains(" 3x2: ") && out.contains(" Mmsg/s"), "{imp}: {out}");
    }
}

#[test]
fn eager_runs_every_variant() {
    let out = run(env!("CARGO_BIN_EXE_eager"), &["--messages", "2000", "--rounds", "1"]);
    for v in ["std ", "std-epoll ", "port "] {
        assert!(out.contains(v), "{v} missing from:\n{out}");
    }
    assert!(out.contains("port over std:"), "{out}");
}
