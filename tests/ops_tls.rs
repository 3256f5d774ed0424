//! `--tls-cert`/`--tls-key`: the listen address serves HTTPS and WSS. A self-signed certificate
//! for `localhost` is made at test time; the client trusts exactly that certificate.

mod ops_common;
mod support;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use ops_common::TIMEOUT;

/// A self-signed certificate for `localhost`, written as PEM files into a fresh directory.
struct TestCert {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

impl TestCert {
    fn new() -> Self {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .expect("self-signed certificate");
        let dir = std::env::temp_dir().join(format!("lamina-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).expect("write cert");
        std::fs::write(&key, made.signing_key.serialize_pem()).expect("write key");
        TestCert {
            dir,
            cert,
            key,
            der: made.cert.der().clone(),
        }
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).expect("trust the test cert");
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tls_connect(
    cert: &TestCert,
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("tcp connect");
    let name = ServerName::try_from("localhost".to_owned()).expect("server name");
    tokio::time::timeout(TIMEOUT, cert.connector().connect(name, tcp))
        .await
        .expect("handshake in time")
        .expect("TLS handshake")
}

#[tokio::test]
async fn wss_heartbeat_and_https_health() {
    let cert = TestCert::new();
    let server = support::spawn_server(|c| {
        c.tls_cert = Some(cert.cert.clone());
        c.tls_key = Some(cert.key.clone());
    })
    .await;
    assert!(server.tls);
    let addr = server.addr;

    // WSS: the Phoenix socket over TLS answers a heartbeat.
    let tls = tls_connect(&cert, addr).await;
    let url = format!("wss://localhost:{}/socket/websocket?vsn=2.0.0", addr.port());
    let (mut ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::client_async(url, tls))
        .await
        .expect("upgrade in time")
        .expect("websocket upgrade over TLS");
    ops_common::heartbeat(&mut ws).await;

    // HTTPS: plain routes too.
    let mut tls = tls_connect(&cert, addr).await;
    tls.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(TIMEOUT, tls.read_to_end(&mut response))
        .await
        .expect("response in time")
        .ok();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    // Plain HTTP is not served on a TLS listener.
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, tcp.read_to_end(&mut raw)).await;
    assert!(
        !String::from_utf8_lossy(&raw).contains("200 OK"),
        "plain HTTP answered on the TLS port"
    );

    drop(ws);
    server.stop().await;
}

#[tokio::test]
async fn an_unreadable_certificate_fails_the_start() {
    let cert = TestCert::new();
    let mut config = lamina::config::Config::for_tests();
    config.tls_cert = Some(cert.dir.join("missing.pem"));
    config.tls_key = Some(cert.key.clone());
    assert!(lamina::server::start(config).await.is_err());
    let mut config = lamina::config::Config::for_tests();
    config.tls_cert = Some(cert.cert.clone());
    assert!(
        lamina::server::start(config).await.is_err(),
        "a certificate without a key must not start"
    );
}
