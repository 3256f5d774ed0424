//! The deployment examples under `contrib/`: the systemd unit passes `systemd-analyze verify`
//! and its secret-file variables are options the binary knows; the nginx reverse proxy passes
//! `nginx -t` and, running, carries WSS to Lamina (TLS with a self-signed certificate made
//! here, everything under a temp prefix). A test whose tool is missing prints why and passes.

mod ops_common;
mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use ops_common::TIMEOUT;

fn contrib(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("lamina-contrib-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write");
        path
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 temp dir")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tool --version` runs.
fn have(tool: &str, version_flag: &str) -> bool {
    Command::new(tool)
        .arg(version_flag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Values of `Key=` lines of a unit (one per line, in order).
fn directives<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|l| l.strip_prefix(prefix.as_str()))
        .collect()
}

#[test]
fn systemd_unit_verifies() {
    let unit = contrib("lamina.service");
    assert_eq!(directives(&unit, "User"), ["lamina"], "a dedicated user");
    assert_eq!(directives(&unit, "Restart"), ["on-failure"]);
    assert!(!directives(&unit, "LimitNOFILE").is_empty());
    let env = directives(&unit, "Environment");
    assert!(env.contains(&"G_SLICE=always-malloc"), "{env:?}");
    let exec = directives(&unit, "ExecStart");
    assert_eq!(
        exec,
        ["/usr/local/bin/lamina --config /etc/lamina/lamina.toml"]
    );
    assert!(
        !unit.contains("--turn-secret ") && !unit.contains("--jwt-secret "),
        "secrets on the command line"
    );

    // The unit's LAMINA_* variables and credentials work with the binary: the credential files
    // in a temp dir as %d, the example as /etc/lamina/lamina.toml.
    let dir = TempDir::new();
    for credential in directives(&unit, "LoadCredential") {
        let (name, _) = credential.split_once(':').expect("name:path");
        dir.write(name, "a-secret\n");
    }
    let mut lamina = Command::new(env!("CARGO_BIN_EXE_lamina"));
    for (key, _) in std::env::vars() {
        if key.starts_with("LAMINA_") {
            lamina.env_remove(key);
        }
    }
    for pair in &env {
        let (key, value) = pair.split_once('=').expect("KEY=value");
        lamina.env(key, value.replace("%d", dir.path()));
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("lamina.example.toml");
    let out = lamina
        .arg("--config")
        .arg(&example)
        .arg("--print-config")
        .output()
        .expect("run lamina");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let turn_secret_file = format!("turn_secret_file = \"{}/turn-secret\"", dir.path());
    assert!(stdout.contains(&turn_secret_file), "{stdout}");

    if !have("systemd-analyze", "--version") {
        eprintln!("skipped systemd-analyze verify: systemd-analyze is not installed");
        return;
    }
    // verify wants ExecStart's binary to exist: point it at this build's.
    let path = dir.write(
        "lamina.service",
        &unit.replace("/usr/local/bin/lamina", env!("CARGO_BIN_EXE_lamina")),
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("run systemd-analyze");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Unknown keys and bad values are only warnings ("…, ignoring"): none may concern the unit.
    assert!(out.status.success(), "systemd-analyze verify:\n{report}");
    assert!(
        !report.lines().any(|l| l.contains("lamina.service")),
        "systemd-analyze verify:\n{report}"
    );
}

/// The nginx binary, if installed.
fn nginx() -> Option<&'static str> {
    ["nginx", "/usr/sbin/nginx"]
        .into_iter()
        .find(|n| have(n, "-v"))
}

/// `contrib/nginx-lamina.conf` with its certificate paths pointing at a self-signed
/// certificate for `localhost`, included by a wrapper configuration of its own under a temp
/// prefix (pid, logs, temp paths): no root-owned path is needed.
struct NginxSetup {
    dir: TempDir,
    der: CertificateDer<'static>,
}

impl NginxSetup {
    fn new(edit: impl Fn(String) -> String) -> Self {
        let dir = TempDir::new();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("self-signed certificate");
        dir.write("fullchain.pem", &made.cert.pem());
        dir.write("privkey.pem", &made.signing_key.serialize_pem());
        let site = contrib("nginx-lamina.conf");
        let live = "/etc/letsencrypt/live/meet.example.org/";
        assert_eq!(site.matches(live).count(), 2, "certificate paths moved");
        let site = edit(site.replace(live, &format!("{}/", dir.path())));
        dir.write("nginx-lamina.conf", &site);
        let p = dir.path();
        let temp_paths: String = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
            .iter()
            .map(|t| format!("    {t}_temp_path {p}/{t}_temp;\n"))
            .collect();
        dir.write(
            "nginx.conf",
            &format!(
                "pid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 64; }}\n\
                 http {{\n    access_log {p}/access.log;\n{temp_paths}    include {p}/nginx-lamina.conf;\n}}\n"
            ),
        );
        NginxSetup {
            dir,
            der: made.cert.der().clone(),
        }
    }

    fn command(&self, nginx: &str) -> Command {
        let p = self.dir.path();
        let mut cmd = Command::new(nginx);
        cmd.args(["-p", p, "-e", &format!("{p}/error.log")])
            .args(["-c", &format!("{p}/nginx.conf")]);
        cmd
    }
}

#[test]
fn nginx_config_passes_nginx_t() {
    let Some(nginx) = nginx() else {
        eprintln!("skipped nginx -t: nginx is not installed (scripts/setup.sh test installs it)");
        return;
    };
    let setup = NginxSetup::new(|site| site);
    let out = setup
        .command(nginx)
        .arg("-t")
        .output()
        .expect("run nginx -t");
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t:\n{report}");
    assert!(report.contains("test is successful"), "{report}");
    assert!(!report.contains("[warn]"), "{report}");
}

/// nginx, stopped at the end of the test.
struct RunningNginx(Child);

impl Drop for RunningNginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

async fn tls_connect(
    der: &CertificateDer<'static>,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(der.clone()).expect("trust the test cert");
    let config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let name = ServerName::try_from("localhost".to_owned()).expect("server name");
    tokio::time::timeout(
        TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .expect("handshake in time")
    .expect("TLS handshake")
}

/// `GET path` over HTTPS through nginx: the raw response.
async fn https_get(der: &CertificateDer<'static>, addr: SocketAddr, path: &str) -> String {
    let mut tls = tls_connect(der, addr).await;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut raw)).await;
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn nginx_proxies_wss_to_lamina() {
    let Some(nginx) = nginx() else {
        eprintln!("skipped the nginx proxy test: nginx is not installed");
        return;
    };
    let server = support::spawn_server(|_| {}).await;
    let (http_port, https_port) = (free_port(), free_port());
    let upstream = server.addr.to_string();
    // Only the addresses change: loopback ports instead of 80/443, this server upstream.
    let setup = NginxSetup::new(|site| {
        let mut site = site;
        for (from, to) in [
            ("listen 80;", format!("listen 127.0.0.1:{http_port};")),
            (
                "listen 443 ssl http2;",
                format!("listen 127.0.0.1:{https_port} ssl http2;"),
            ),
            ("server 127.0.0.1:4000;", format!("server {upstream};")),
        ] {
            assert_eq!(site.matches(from).count(), 1, "{from} moved");
            site = site.replace(from, &to);
        }
        site
    });
    let child = setup
        .command(nginx)
        .args(["-g", "daemon off; master_process off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    let _nginx = RunningNginx(child);
    let addr: SocketAddr = format!("127.0.0.1:{https_port}").parse().unwrap();
    let up = support::wait_until(
        || async { TcpStream::connect(addr).await.is_ok() },
        Duration::from_secs(10),
    )
    .await;
    let error_log = std::fs::read_to_string(setup.dir.0.join("error.log")).unwrap_or_default();
    assert!(up, "nginx did not listen; error.log:\n{error_log}");

    // The Phoenix socket over WSS through nginx answers a heartbeat.
    let tls = tls_connect(&setup.der, addr).await;
    let url = format!("wss://localhost:{https_port}/socket/websocket?vsn=2.0.0");
    let (mut ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, tls))
        .await
        .expect("upgrade in time")
        .expect("websocket upgrade through nginx");
    ops_common::heartbeat(&mut ws).await;
    drop(ws);

    // Plain routes are proxied; operator routes are not exposed.
    let ready = https_get(&setup.der, addr, "/ready").await;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    assert!(ready.contains("\"ready\":true"), "{ready}");
    let metrics = https_get(&setup.der, addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 404"), "{metrics}");
    assert!(!metrics.contains("lamina_rooms"), "{metrics}");

    server.stop().await;
}
