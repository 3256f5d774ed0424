//! Room access tokens (`--jwt-secret`): joins need a valid HS256 token for the room, and the
//! token's name is the endpoint's displayName whatever the client's metadata says.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use lamina::auth::{issue, Claims};
use lamina::config::Secret;
use serde_json::{json, Value};
use support::{spawn_server, PhoenixClient};

const SECRET: &str = "jwt-secret-for-tests";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn token(secret: &str, room: &str, name: &str, exp: u64) -> String {
    issue(
        &Secret::new(secret),
        &Claims {
            room: room.into(),
            name: name.into(),
            exp,
        },
    )
    .expect("token signs")
}

/// Sends `phx_join` on `topic` with `payload`; returns the reply.
async fn join_with(client: &mut PhoenixClient, topic: &str, payload: Value) -> support::Frame {
    let r = client.make_ref();
    client
        .send(Some(&r), Some(&r), topic, "phx_join", payload)
        .await;
    client.reply(&r).await
}

/// Sends `connect` with `metadata`; returns the `connected` media event.
async fn connect(
    client: &mut PhoenixClient,
    join_ref: &str,
    topic: &str,
    metadata: Value,
) -> Value {
    let r = client
        .media_event(
            join_ref,
            topic,
            json!({"type": "connect", "data": {"metadata": metadata}}),
        )
        .await;
    assert_eq!(client.reply(&r).await.status(), "ok");
    client.media_event_of_type("connected").await
}

#[tokio::test]
async fn joins_without_a_valid_token_are_refused() {
    let server = spawn_server(|c| c.jwt_secret = Some(Secret::new(SECRET))).await;
    let mut client = PhoenixClient::connect(server.addr).await;
    let topic = "room:vault";
    let refused = [
        json!({}),
        json!({"token": 42}),
        json!({"token": "not-a-jwt"}),
        json!({"token": token("another-secret", "vault", "A", now() + 60)}),
        json!({"token": token(SECRET, "other-room", "A", now() + 60)}),
        json!({"token": token(SECRET, "vault", "A", now() - 3600)}),
    ];
    for payload in refused {
        let reply = join_with(&mut client, topic, payload.clone()).await;
        assert_eq!(reply.status(), "error", "{payload}: {reply:?}");
        assert_eq!(
            reply.response(),
            &json!({"reason": "unauthorized"}),
            "{payload}"
        );
    }
    // Nothing was created for the refused joins.
    assert!(server.rooms.is_empty());
    let ok = join_with(
        &mut client,
        topic,
        json!({"token": token(SECRET, "vault", "A", now() + 60)}),
    )
    .await;
    assert_eq!(ok.status(), "ok", "{ok:?}");
    server.stop().await;
}

#[tokio::test]
async fn the_token_name_is_the_display_name() {
    let server = spawn_server(|c| c.jwt_secret = Some(Secret::new(SECRET))).await;
    let topic = "room:named";
    let mut a = PhoenixClient::connect(server.addr).await;
    let a_tok = token(SECRET, "named", "Alice", now() + 60);
    let reply = join_with(&mut a, topic, json!({"token": a_tok})).await;
    assert_eq!(reply.status(), "ok");
    let a_ref = reply.join_ref.clone().expect("join ref");
    // Alice claims another name and adds a field: the name is replaced, the field kept.
    connect(
        &mut a,
        &a_ref,
        topic,
        json!({"displayName": "Mallory", "avatar": "cat"}),
    )
    .await;

    let mut b = PhoenixClient::connect(server.addr).await;
    let b_tok = token(SECRET, "named", "Bob", now() + 60);
    let reply = join_with(&mut b, topic, json!({"token": b_tok})).await;
    let b_ref = reply.join_ref.clone().expect("join ref");
    // Metadata that is not an object still gets the name.
    let connected = connect(&mut b, &b_ref, topic, Value::Null).await;
    assert_eq!(
        connected["data"]["otherEndpoints"][0]["metadata"],
        json!({"displayName": "Alice", "avatar": "cat"})
    );
    let added = a.media_event_of_type("endpointAdded").await;
    assert_eq!(added["data"]["metadata"], json!({"displayName": "Bob"}));

    // Renaming later does not work either; the rest of the metadata is the client's.
    let r = a
        .media_event(
            &a_ref,
            topic,
            json!({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": "Eve"}}}),
        )
        .await;
    assert_eq!(a.reply(&r).await.status(), "ok");
    let updated = b.media_event_of_type("endpointUpdated").await;
    assert_eq!(updated["data"]["metadata"], json!({"displayName": "Alice"}));
    let r = a
        .media_event(
            &a_ref,
            topic,
            json!({"type": "updateEndpointMetadata",
                   "data": {"metadata": {"displayName": "Eve", "avatar": "dog"}}}),
        )
        .await;
    assert_eq!(a.reply(&r).await.status(), "ok");
    let updated = b.media_event_of_type("endpointUpdated").await;
    assert_eq!(
        updated["data"]["metadata"],
        json!({"displayName": "Alice", "avatar": "dog"})
    );
    server.stop().await;
}

#[tokio::test]
async fn without_a_secret_no_token_is_needed_and_names_are_free() {
    let server = spawn_server(|_| {}).await;
    let topic = "room:open";
    let mut a = PhoenixClient::connect(server.addr).await;
    let a_ref = a.join_ok(topic).await;
    connect(&mut a, &a_ref, topic, json!({"displayName": "Mallory"})).await;
    let mut b = PhoenixClient::connect(server.addr).await;
    // A token is ignored when tokens are off.
    let reply = join_with(&mut b, topic, json!({"token": "whatever"})).await;
    assert_eq!(reply.status(), "ok");
    let b_ref = reply.join_ref.clone().expect("join ref");
    let connected = connect(&mut b, &b_ref, topic, json!({"displayName": "Bob"})).await;
    assert_eq!(
        connected["data"]["otherEndpoints"][0]["metadata"],
        json!({"displayName": "Mallory"})
    );
    server.stop().await;
}
