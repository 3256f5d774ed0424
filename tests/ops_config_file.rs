//! The configuration file (`--config`, `LAMINA_CONFIG`): precedence file < environment < flag,
//! errors naming the key and the line, `--print-config` with secrets redacted, secret files,
//! warnings about world-readable secrets, and `lamina.example.toml` covering every option.
//! Most checks run the real binary with `--print-config` (it exits before starting anything).

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use clap::{CommandFactory, FromArgMatches};
use lamina::cli::Cli;
use lamina::config::{self, Config, FileConfig, Resolved, Secret};

/// A fresh directory, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("lamina-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    /// Writes `text` to `name` with permission bits `mode`.
    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs the binary with `args` and exactly the `LAMINA_*` variables of `env`.
fn lamina(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lamina"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LAMINA_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run lamina")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The configuration `lamina … --print-config` printed.
fn printed(out: &Output) -> toml::Table {
    assert!(out.status.success(), "lamina failed: {}", stderr(out));
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8 output");
    toml::from_str(&text).unwrap_or_else(|e| panic!("--print-config is not TOML ({e}):\n{text}"))
}

/// The error of a configuration the binary refuses (exit status 2, nothing on stdout).
fn refused(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    assert!(out.stdout.is_empty(), "printed despite the error");
    stderr(out)
}

fn int(table: &toml::Table, key: &str) -> i64 {
    table[key]
        .as_integer()
        .unwrap_or_else(|| panic!("{key} in {table}"))
}

fn string<'a>(table: &'a toml::Table, key: &str) -> &'a str {
    table[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {table}"))
}

#[test]
fn file_then_environment_then_flags() {
    let dir = TempDir::new();
    let file = dir.write(
        "lamina.toml",
        r#"listen = "127.0.0.1:4100"
public_ip = "10.0.0.1"
max_rooms = 7
max_peers_per_room = 5
idle_timeout_secs = 33
debug_endpoints = true
allowed_origins = ["https://file.example"]
log_format = "json"
downlink_estimation = false
"#,
        0o600,
    );
    let out = lamina(
        &[
            "--config",
            s(&file),
            "--public-ip",
            "10.0.0.3",
            "--print-config",
        ],
        &[
            ("LAMINA_PUBLIC_IP", "10.0.0.2"),
            ("LAMINA_MAX_ROOMS", "8"),
            ("LAMINA_ALLOWED_ORIGINS", "https://env.example"),
        ],
    );
    let c = printed(&out);
    assert_eq!(string(&c, "listen"), "127.0.0.1:4100", "file over default");
    assert_eq!(
        string(&c, "public_ip"),
        "10.0.0.3",
        "flag over env and file"
    );
    assert_eq!(int(&c, "max_rooms"), 8, "env over file");
    assert_eq!(int(&c, "max_peers_per_room"), 5, "file");
    assert_eq!(c["debug_endpoints"].as_bool(), Some(true), "file");
    let origins: Vec<&str> = c["allowed_origins"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(origins, ["https://env.example"], "env over file");
    assert_eq!(string(&c, "log_format"), "json");
    assert_eq!(int(&c, "max_tracks_per_peer"), 8, "default");
    assert_eq!(c["downlink_estimation"].as_bool(), Some(false), "file");

    // A flag or variable with the default's value still overrides the file: value_source,
    // not the value, decides.
    let out = lamina(
        &[
            "--config",
            s(&file),
            "--max-rooms",
            "100",
            "--listen",
            "127.0.0.1:4000",
            "--downlink-estimation",
            "true",
            "--print-config",
        ],
        &[("LAMINA_IDLE_TIMEOUT_SECS", "60")],
    );
    let c = printed(&out);
    assert_eq!(
        c["downlink_estimation"].as_bool(),
        Some(true),
        "flag over file"
    );
    assert_eq!(int(&c, "max_rooms"), 100);
    assert_eq!(string(&c, "listen"), "127.0.0.1:4000");
    assert_eq!(int(&c, "idle_timeout_secs"), 60);
    assert_eq!(int(&c, "max_peers_per_room"), 5);

    // LAMINA_CONFIG names the file too.
    let out = lamina(&["--print-config"], &[("LAMINA_CONFIG", s(&file))]);
    assert_eq!(string(&printed(&out), "listen"), "127.0.0.1:4100");

    // A missing file is an error naming it.
    let missing = dir.0.join("missing.toml");
    let err = refused(&lamina(&["--config", s(&missing), "--print-config"], &[]));
    assert!(err.contains(s(&missing)), "{err}");
}

#[test]
fn an_unknown_key_names_the_key_and_the_line() {
    let dir = TempDir::new();
    let file = dir.write(
        "lamina.toml",
        "# Lamina\nlisten = \"127.0.0.1:4100\"\n\nlisen = \"127.0.0.1:4200\"\nmax_rooms = 3\n",
        0o600,
    );
    let err = refused(&lamina(&["--config", s(&file), "--print-config"], &[]));
    assert!(err.contains("unknown key `lisen`"), "{err}");
    assert!(err.contains(&format!("{}, line 4", s(&file))), "{err}");
    // The server itself does not start with it either.
    let err = refused(&lamina(&["--config", s(&file)], &[]));
    assert!(err.contains("`lisen`") && err.contains("line 4"), "{err}");

    // A table is no key of the file either.
    let file = dir.write(
        "table.toml",
        "max_rooms = 3\n[turn]\nsecret = \"x\"\n",
        0o600,
    );
    let err = refused(&lamina(&["--config", s(&file), "--print-config"], &[]));
    assert!(err.contains("`turn`") && err.contains("line 2"), "{err}");
}

#[test]
fn a_wrong_type_names_the_key_and_the_line() {
    let dir = TempDir::new();
    for (text, key, line) in [
        (
            "listen = \"127.0.0.1:4100\"\n\nmax_rooms = \"many\"\n",
            "max_rooms",
            3,
        ),
        ("listen = 4000\n", "listen", 1),
        ("max_rooms = 2\nlisten = \"not an address\"\n", "listen", 2),
        ("debug_endpoints = \"yes\"\n", "debug_endpoints", 1),
        ("ice_port_min = 70000\n", "ice_port_min", 1),
        ("log_format = \"xml\"\n", "log_format", 1),
        (
            "allowed_origins = [\n  \"https://a.example\",\n  3,\n]\n",
            "allowed_origins",
            3,
        ),
    ] {
        let file = dir.write("lamina.toml", text, 0o600);
        let err = refused(&lamina(&["--config", s(&file), "--print-config"], &[]));
        assert!(err.contains(&format!("`{key}")), "{text:?}: {err}");
        assert!(
            err.contains(&format!("lamina.toml, line {line}:")),
            "{text:?}: {err}"
        );
    }
    // A TOML syntax error is located too.
    let file = dir.write("lamina.toml", "max_rooms = 2\nlisten = \n", 0o600);
    let err = refused(&lamina(&["--config", s(&file), "--print-config"], &[]));
    assert!(err.contains("lamina.toml, line 2:"), "{err}");
}

#[test]
fn print_config_redacts_secrets() {
    let (file_turn, env_jwt, flag_turn) = ("file-turn-3f9a1c", "env-jwt-77b2e0", "flag-turn-c41d");
    let dir = TempDir::new();
    let file = dir.write(
        "lamina.toml",
        &format!("turn_secret = \"{file_turn}\"\nmax_rooms = 9\n"),
        0o600,
    );
    let out = lamina(
        &["--config", s(&file), "--print-config"],
        &[("LAMINA_JWT_SECRET", env_jwt)],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let c = printed(&out);
    assert_eq!(string(&c, "turn_secret"), "<redacted>");
    assert_eq!(string(&c, "jwt_secret"), "<redacted>");
    assert_eq!(int(&c, "max_rooms"), 9);
    for secret in [file_turn, env_jwt] {
        assert!(!text.contains(secret), "{text}");
        assert!(!stderr(&out).contains(secret));
    }
    // What it prints is a valid configuration file.
    FileConfig::parse(&text, Path::new("printed.toml")).expect("printed config parses");

    // A secret given as a flag is redacted too, and the operator is told that flags show in ps.
    let out = lamina(&["--turn-secret", flag_turn, "--print-config"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(string(&printed(&out), "turn_secret"), "<redacted>");
    assert!(!text.contains(flag_turn) && !stderr(&out).contains(flag_turn));
    assert!(
        stderr(&out).contains("--turn-secret on the command line"),
        "{}",
        stderr(&out)
    );
}

/// Resolves a command line in-process (the test's own `LAMINA_*` environment applies).
fn resolve(args: &[&str]) -> anyhow::Result<Resolved> {
    let matches = Cli::command()
        .try_get_matches_from(std::iter::once("lamina").chain(args.iter().copied()))
        .expect("command line parses");
    let cli = Cli::from_arg_matches(&matches).expect("matches");
    config::resolve(cli.server, cli.config.as_deref(), &matches)
}

fn secret(secret: &Option<Secret>) -> Option<&str> {
    secret.as_ref().map(|s| s.expose())
}

#[test]
fn secrets_from_files() {
    let dir = TempDir::new();
    let turn = dir.write("turn-secret", "turn-from-file\n", 0o600);
    let jwt = dir.write("jwt-secret", "jwt-from-file\r\n", 0o600);
    let file = dir.write(
        "lamina.toml",
        &format!("jwt_secret_file = \"{}\"\n", s(&jwt)),
        0o644,
    );

    // Flag and configuration file; the trailing line break is not part of the secret.
    let r = resolve(&["--turn-secret-file", s(&turn), "--config", s(&file)]).expect("resolves");
    assert_eq!(secret(&r.config.turn_secret), Some("turn-from-file"));
    assert_eq!(secret(&r.config.jwt_secret), Some("jwt-from-file"));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // A secret file given as a flag beats a secret in the file, and the other way round.
    let with_secret = dir.write("secret.toml", "turn_secret = \"in-the-file\"\n", 0o600);
    let r = resolve(&["--config", s(&with_secret), "--turn-secret-file", s(&turn)]).unwrap();
    assert_eq!(secret(&r.config.turn_secret), Some("turn-from-file"));
    let with_file = dir.write(
        "file.toml",
        &format!("turn_secret_file = \"{}\"\n", s(&turn)),
        0o600,
    );
    let r = resolve(&["--config", s(&with_file), "--turn-secret", "from-flag"]).unwrap();
    assert_eq!(secret(&r.config.turn_secret), Some("from-flag"));
    assert!(r.config.turn_secret_file.is_none());

    // The binary prints the file's path, not the secret.
    let out = lamina(&["--turn-secret-file", s(&turn), "--print-config"], &[]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let c = printed(&out);
    assert_eq!(string(&c, "turn_secret_file"), s(&turn));
    assert!(!c.contains_key("turn_secret") && !text.contains("turn-from-file"));

    // Both forms at the same level, an empty file and a missing file are errors.
    let both = dir.write(
        "both.toml",
        &format!("turn_secret = \"x\"\nturn_secret_file = \"{}\"\n", s(&turn)),
        0o600,
    );
    let err = resolve(&["--config", s(&both)]).unwrap_err().to_string();
    assert!(err.contains("turn_secret and turn_secret_file"), "{err}");
    let err = resolve(&["--turn-secret", "x", "--turn-secret-file", s(&turn)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("both set"), "{err}");
    let empty = dir.write("empty", "\n", 0o600);
    let err = resolve(&["--jwt-secret-file", s(&empty)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty") && err.contains(s(&empty)), "{err}");
    let missing = dir.0.join("missing");
    let err = format!(
        "{:#}",
        resolve(&["--jwt-secret-file", s(&missing)]).unwrap_err()
    );
    assert!(err.contains(s(&missing)), "{err}");
}

#[test]
fn world_readable_secrets_get_a_warning() {
    let dir = TempDir::new();
    let open = dir.write("open-secret", "s3cret\n", 0o644);
    let closed = dir.write("closed-secret", "s3cret\n", 0o640);
    let warning = "readable by every user";

    let out = lamina(&["--turn-secret-file", s(&open), "--print-config"], &[]);
    printed(&out);
    let err = stderr(&out);
    assert!(err.contains(warning) && err.contains(s(&open)), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let out = lamina(&["--turn-secret-file", s(&closed), "--print-config"], &[]);
    printed(&out);
    assert!(!stderr(&out).contains(warning), "{}", stderr(&out));

    // A configuration file holding a secret: warned when world-readable.
    let text = "jwt_secret = \"s3cret\"\n";
    let open = dir.write("open.toml", text, 0o644);
    let out = lamina(&["--config", s(&open), "--print-config"], &[]);
    printed(&out);
    let err = stderr(&out);
    assert!(err.contains(warning) && err.contains(s(&open)), "{err}");
    let closed = dir.write("closed.toml", text, 0o600);
    let out = lamina(&["--config", s(&closed), "--print-config"], &[]);
    printed(&out);
    assert!(!stderr(&out).contains(warning), "{}", stderr(&out));
    // Without a secret a world-readable configuration file is fine.
    let plain = dir.write("plain.toml", "max_rooms = 3\n", 0o644);
    let out = lamina(&["--config", s(&plain), "--print-config"], &[]);
    printed(&out);
    assert!(!stderr(&out).contains(warning), "{}", stderr(&out));
}

/// `lamina.example.toml` with every `#key = value` line uncommented.
fn uncommented_example() -> (String, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("lamina.example.toml");
    let text = std::fs::read_to_string(&path).expect("lamina.example.toml");
    let active = text
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_lowercase()) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    (text, active)
}

#[test]
fn the_example_parses_and_covers_every_option() {
    let (text, active) = uncommented_example();
    // As shipped: valid, everything commented out.
    let shipped = FileConfig::parse(&text, Path::new("lamina.example.toml")).expect("parses");
    assert!(shipped.keys_set().is_empty(), "{:?}", shipped.keys_set());
    // Uncommented: valid, every key of the file format exactly once.
    let all = FileConfig::parse(&active, Path::new("lamina.example.toml (uncommented)"))
        .unwrap_or_else(|e| panic!("{e:#}"));
    let example_keys: BTreeSet<&str> = all.keys_set().into_iter().collect();
    let file_keys: BTreeSet<&str> = FileConfig::KEYS.iter().copied().collect();
    assert_eq!(example_keys, file_keys);
    // Every server option (flag) is a key.
    let options: BTreeSet<String> = Config::command()
        .get_arguments()
        .map(|a| a.get_id().as_str().to_owned())
        .filter(|id| id != "help" && id != "version")
        .collect();
    let file_keys: BTreeSet<String> = file_keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(options, file_keys);
    assert!(options.len() >= 30, "{options:?}");

    // Each value shown is the default, for every option that has one.
    let example: toml::Table = toml::from_str(&active).expect("TOML");
    let defaults = printed(&lamina(&["--print-config"], &[]));
    for (key, value) in &defaults {
        assert_eq!(
            example.get(key),
            Some(value),
            "{key}: the example does not show the default"
        );
    }
    // Options without a default are commented as such.
    for key in FileConfig::KEYS {
        if !defaults.contains_key(*key) {
            let at = text
                .find(&format!("\n#{key} = "))
                .unwrap_or_else(|| panic!("{key}"));
            let before = &text[..at];
            let comment = &before[before.rfind("\n\n").unwrap_or(0)..];
            assert!(comment.contains("nset by default"), "{key}: {comment}");
        }
    }
}
