//! Secrets stay out of `Debug`, `--help` and the logs; the new options parse as documented.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use lamina::auth::{issue, Claims};
use lamina::config::{Config, LogFormat, Secret};
use serde_json::json;
use support::PhoenixClient;

const TURN_SECRET: &str = "turn-secret-e7b1c2";
const JWT_SECRET: &str = "jwt-secret-94af03";

#[test]
fn debug_of_config_redacts_secrets() {
    let config = Config::parse_from([
        "lamina",
        "--turn-secret",
        TURN_SECRET,
        "--jwt-secret",
        JWT_SECRET,
    ]);
    assert_eq!(
        config.turn_secret.as_ref().map(Secret::expose),
        Some(TURN_SECRET)
    );
    for text in [format!("{config:?}"), format!("{config:#?}")] {
        assert!(!text.contains(TURN_SECRET), "{text}");
        assert!(!text.contains(JWT_SECRET), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}

#[test]
fn help_documents_the_options_without_env_values() {
    // The real binary, with the secrets in its environment.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lamina"))
        .arg("--help")
        .env("LAMINA_JWT_SECRET", JWT_SECRET)
        .env("LAMINA_TURN_SECRET", TURN_SECRET)
        .output()
        .expect("run lamina --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--jwt-secret",
        "--allowed-origin",
        "--tls-cert",
        "--tls-key",
        "--log-format",
        "LAMINA_ALLOWED_ORIGINS",
    ] {
        assert!(help.contains(option), "{option} missing in\n{help}");
    }
    assert!(
        !help.contains(JWT_SECRET) && !help.contains(TURN_SECRET),
        "{help}"
    );
}

#[test]
fn option_forms() {
    let c = Config::parse_from([
        "lamina",
        "--allowed-origin",
        "https://a.example",
        "--allowed-origin",
        "https://b.example",
        "--log-format",
        "json",
    ]);
    assert_eq!(
        c.allowed_origins,
        ["https://a.example", "https://b.example"]
    );
    assert_eq!(c.log_format, LogFormat::Json);
    let c = Config::parse_from([
        "lamina",
        "--allowed-origin",
        "https://a.example,https://b.example",
    ]);
    assert_eq!(c.allowed_origins.len(), 2);
    assert!(Config::try_parse_from(["lamina", "--tls-cert", "c.pem"]).is_err());
    assert!(Config::try_parse_from(["lamina", "--tls-key", "k.pem"]).is_err());
    assert!(
        Config::try_parse_from(["lamina", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).is_ok()
    );
    let c = Config::parse_from(["lamina"]);
    assert!(c.allowed_origins.is_empty() && c.jwt_secret.is_none());
    assert_eq!(c.log_format, LogFormat::Text);
}

/// Collects everything the test's tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A whole session at TRACE level (token join, TURN credentials handed out, refused tokens,
/// shutdown) never logs a secret, a token or a TURN password.
#[tokio::test]
async fn logs_never_contain_secrets_tokens_or_turn_passwords() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = Config::for_tests();
    config.turn_secret = Some(Secret::new(TURN_SECRET));
    config.jwt_secret = Some(Secret::new(JWT_SECRET));
    tracing::info!(?config, "starting");
    let server = lamina::server::start(config).await.expect("server starts");
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 60;
    let token = issue(
        &Secret::new(JWT_SECRET),
        &Claims {
            room: "quiet".into(),
            name: "Alice".into(),
            exp,
        },
    )
    .unwrap();
    let bad_token = issue(
        &Secret::new("wrong-secret"),
        &Claims {
            room: "quiet".into(),
            name: "Alice".into(),
            exp,
        },
    )
    .unwrap();
    let mut c = PhoenixClient::connect(server.addr).await;
    for (r, t, status) in [("j1", &bad_token, "error"), ("j2", &token, "ok")] {
        c.send(
            Some(r),
            Some(r),
            "room:quiet",
            "phx_join",
            json!({"token": t}),
        )
        .await;
        assert_eq!(c.reply(r).await.status(), status);
    }
    let join_ref = "j2";
    let r = c
        .media_event(
            join_ref,
            "room:quiet",
            json!({"type": "connect", "data": {"metadata": {"displayName": "A"}}}),
        )
        .await;
    assert_eq!(c.reply(&r).await.status(), "ok");
    c.media_event_of_type("connected").await;
    // The TURN password arrives in offerData once a round starts.
    let r = c
        .media_event(
            join_ref,
            "room:quiet",
            json!({"type": "custom", "data": {"type": "renegotiateTracks", "data": {}}}),
        )
        .await;
    assert_eq!(c.reply(&r).await.status(), "ok");
    let offer_data = c
        .next_frame_where(|f| {
            f.media_event()
                .is_some_and(|e| e["type"] == "custom" && e["data"]["type"] == "offerData")
        })
        .await
        .media_event()
        .unwrap();
    let password = offer_data["data"]["data"]["integratedTurnServers"][0]["password"]
        .as_str()
        .unwrap_or_else(|| panic!("TURN password in {offer_data}"))
        .to_owned();
    c.close().await;
    server.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.contains("join refused: unauthorized"), "{logs}");
    for secret in [TURN_SECRET, JWT_SECRET, &token, &bad_token, &password] {
        assert!(!logs.contains(secret), "{secret} logged");
    }
    // The token's signature part alone neither.
    let signature = token.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature));
}
