//! Running `lamina-bench` from its tests: against the `lamina` binary built next to it, into a
//! fresh output directory under the test target's tmp dir.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// Longest a short bench run may take.
const MAX_RUN: Duration = Duration::from_secs(90);

/// One finished `lamina-bench` run.
pub struct BenchRun {
    /// Its output directory.
    pub out: PathBuf,
    /// What it printed.
    pub stdout: String,
}

impl BenchRun {
    /// `results.json` of the run.
    pub fn results(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.out.join("results.json")).expect("results.json"))
            .expect("results.json is JSON")
    }
}

/// Runs `lamina-bench` with `args` plus `--out <tmp>/<name>`, `--media-dir` and
/// `--lamina-bin`; panics unless it succeeds within [`MAX_RUN`].
pub fn run_bench(name: &str, args: &[&str]) -> BenchRun {
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_lamina-bench"));
    let lamina = bench.with_file_name("lamina");
    assert!(
        lamina.exists(),
        "{} is missing: build the workspace (cargo build --workspace) first",
        lamina.display()
    );
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(name);
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let output = Command::new(&bench)
        .args(args)
        .arg("--out")
        .arg(&out)
        .arg("--media-dir")
        .arg(tmp.join("bench-media"))
        .arg("--lamina-bin")
        .arg(&lamina)
        .output()
        .expect("lamina-bench runs");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "lamina-bench failed\n{stdout}\n{stderr}"
    );
    assert!(
        took < MAX_RUN,
        "{name}: lamina-bench {args:?} took {took:?}"
    );
    BenchRun { out, stdout }
}
