//! The README's "GStreamer plugin" commands, run exactly as written there (read from README.md)
//! against the `libgstlamina.so` of this build, with a private plugin registry.
//!
//! Each command runs with `sh -c` in a temporary directory holding `target/debug/libgstlamina.so`
//! (so `GST_PLUGIN_PATH=target/debug` of the README finds this build's plugin). Checks, derived
//! from the command text:
//! - `gst-inspect-1.0`: exit 0 and `laminaforwarder` listed;
//! - `gst-launch-1.0`: exit 0, EOS; every `src_N::pt=P src_N::ssrc=S` reaches a depayloader as
//!   caps `payload=P, ssrc=S`; a decoder `vp8dec name=decN` on `f.src_N` decodes iff
//!   `src_N::active=true`. Both are read from GStreamer's debug log: the `-v` output comes from
//!   `deep-notify`, which misses notifications from concurrent streaming threads now and then.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The fenced `sh` commands of the README section `## GStreamer plugin`, continuation lines
/// joined (each string is one shell command as a user would paste it).
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("GStreamer plugin"))
        .expect("README has a \"GStreamer plugin\" section");
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            in_block = !in_block && line.trim() == "```sh";
            continue;
        }
        if !in_block || line.trim().is_empty() {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if !line.ends_with('\\') {
            commands.push(std::mem::take(&mut current));
        }
    }
    commands
}

/// `libgstlamina.so` as built by this `cargo test` run.
fn plugin_library() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let deps = exe.parent().expect("deps dir");
    [
        deps.parent().expect("profile dir").to_path_buf(),
        deps.to_path_buf(),
    ]
    .into_iter()
    .map(|dir| dir.join("libgstlamina.so"))
    .filter(|p| p.exists())
    .max_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
    .unwrap_or_else(|| panic!("libgstlamina.so not found near {}", exe.display()))
}

/// A temporary working directory with `target/debug/libgstlamina.so` and a private registry.
struct Workdir(PathBuf);

impl Workdir {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("lamina-gst-launch-{}-{tag}", std::process::id()));
        let plugin_dir = dir.join("target/debug");
        std::fs::create_dir_all(&plugin_dir).expect("temp dir");
        std::fs::copy(plugin_library(), plugin_dir.join("libgstlamina.so")).expect("copy plugin");
        Workdir(dir)
    }

    /// Runs one README command with `sh -c` (bounded by `timeout`).
    fn run(&self, command: &str) -> (bool, String, String) {
        let output = Command::new("timeout")
            .arg("120")
            .arg("sh")
            .arg("-c")
            .arg(command)
            .current_dir(&self.0)
            .env("GST_REGISTRY", self.0.join("registry.bin"))
            .env("GST_DEBUG", "2,rtpbasedepayload:5,videodecoder:4")
            .env("GST_DEBUG_NO_COLOR", "1")
            .env_remove("GST_PLUGIN_PATH")
            .output()
            .expect("run timeout(1)");
        assert_ne!(
            output.status.code(),
            Some(127),
            "a GStreamer tool is missing: install gstreamer1.0-tools (scripts/setup.sh)"
        );
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Value of `src_<n>::<prop>=` in `command`.
fn pad_prop<'a>(command: &'a str, pad: u32, prop: &str) -> Option<&'a str> {
    let key = format!("src_{pad}::{prop}=");
    let at = command.find(&key)? + key.len();
    command[at..].split_whitespace().next()
}

fn check_launch(command: &str, log: &str) {
    for pad in 0..8u32 {
        if let (Some(pt), Some(ssrc)) =
            (pad_prop(command, pad, "pt"), pad_prop(command, pad, "ssrc"))
        {
            let wanted = format!("payload=(int){pt}, ssrc=(uint){ssrc}");
            assert!(
                log.lines()
                    .any(|l| l.contains("Set caps application/x-rtp") && l.contains(&wanted)),
                "src_{pad} should reach its depayloader with {wanted}:\n{log}"
            );
        }
        if command.contains(&format!("vp8dec name=dec{pad}")) {
            let active = pad_prop(command, pad, "active") == Some("true");
            let decoded = log.contains(&format!("<dec{pad}> First buffer since flush"));
            assert_eq!(
                decoded, active,
                "dec{pad} behind src_{pad} (active={active}) decoded={decoded}:\n{log}"
            );
        }
    }
}

#[test]
fn readme_gstreamer_commands_work_with_this_build() {
    let commands = readme_commands();
    let launches = commands
        .iter()
        .filter(|c| c.contains("gst-launch-1.0"))
        .count();
    let inspects = commands
        .iter()
        .filter(|c| c.contains("gst-inspect-1.0"))
        .count();
    assert!(
        launches >= 2 && inspects >= 1,
        "README commands: {commands:#?}"
    );
    for (i, command) in commands.iter().enumerate() {
        assert!(
            command.starts_with("GST_PLUGIN_PATH=target/debug gst-"),
            "README commands use the build's plugin dir: {command}"
        );
        let dir = Workdir::new(&i.to_string());
        let (ok, stdout, stderr) = dir.run(command);
        assert!(
            ok,
            "failed: {command}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        if command.contains("gst-inspect-1.0") {
            assert!(stdout.contains("laminaforwarder"), "{command}:\n{stdout}");
        } else {
            assert!(
                stdout.contains("Got EOS from element"),
                "{command}: no EOS\n{stdout}\n{stderr}"
            );
            assert!(
                !stderr.contains("CRITICAL") && !stderr.contains(" ERROR "),
                "{command}:\n{stderr}"
            );
            check_launch(command, &stderr);
        }
    }
}
