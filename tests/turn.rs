//! Embedded TURN server: real UDP on 127.0.0.1, with the `turn` crate's client as the browser.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lamina::turn::{
    rest_credentials, AllowedPeers, TurnConfig, TurnCredentials, TurnError, TurnServer,
};
use tokio::net::UdpSocket;
use tokio::time::{timeout, Instant};
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const SECRET: &str = "lamina-test-secret";
const REALM: &str = "lamina";
/// Generous bound for things that must happen (loopback is fast; CI machines are not).
const MUST: Duration = Duration::from_secs(5);
/// The one place a bounded wait is the assertion: data that must NOT arrive.
const MUST_NOT: Duration = Duration::from_millis(400);

fn config(relay_port_range: (u16, u16), allowed_peers: AllowedPeers) -> TurnConfig {
    TurnConfig {
        listen: SocketAddr::new(LOCALHOST, 0),
        relay_ip: LOCALHOST,
        relay_port_range,
        realm: REALM.into(),
        secret: SECRET.into(),
        allowed_peers,
    }
}

fn localhost_any_port() -> AllowedPeers {
    AllowedPeers {
        ips: vec![LOCALHOST],
        ports: (0, 0),
    }
}

fn creds(peer: &str) -> TurnCredentials {
    rest_credentials(SECRET, peer, Duration::from_secs(3600), SystemTime::now())
}

async fn client(server: &TurnServer, creds: &TurnCredentials) -> Client {
    let addr = server.local_addr().to_string();
    let conn = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let client = Client::new(ClientConfig {
        stun_serv_addr: addr.clone(),
        turn_serv_addr: addr,
        username: creds.username.clone(),
        password: creds.password.clone(),
        realm: String::new(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .unwrap();
    client.listen().await.unwrap();
    client
}

async fn recv_within(sock: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 1500];
    match timeout(wait, sock.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
        Ok(Err(e)) => panic!("recv_from: {e}"),
        Err(_) => None,
    }
}

async fn relay_recv_within(conn: &impl Conn, wait: Duration) -> Option<(Vec<u8>, SocketAddr)> {
    let mut buf = [0u8; 1500];
    match timeout(wait, conn.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Some((buf[..n].to_vec(), from)),
        Ok(Err(e)) => panic!("relay recv_from: {e}"),
        Err(_) => None,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + MUST;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Binds a UDP socket on 127.0.0.1 at a port inside (`inside`) or outside `range`.
async fn bind_peer(range: (u16, u16), inside: bool) -> UdpSocket {
    if inside {
        for port in range.0..=range.1 {
            if let Ok(s) = UdpSocket::bind((LOCALHOST, port)).await {
                return s;
            }
        }
        panic!("no free port in {range:?}");
    }
    loop {
        let s = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
        let port = s.local_addr().unwrap().port();
        if !(range.0..=range.1).contains(&port) {
            return s;
        }
    }
}

#[test]
fn rest_credentials_known_vector() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let c = rest_credentials(SECRET, "peer-1", Duration::from_secs(3600), now);
    assert_eq!(c.username, "1700003600:peer-1");
    // printf '%s' '1700003600:peer-1' | openssl dgst -sha1 -hmac 'lamina-test-secret' -binary | base64
    assert_eq!(c.password, "XoZa5RKf/EMYvaUOd6iQWk11R18=");
    // Debug never shows the password.
    assert!(!format!("{c:?}").contains(&c.password));
}

#[test]
fn rest_credentials_depend_on_all_inputs() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let ttl = Duration::from_secs(60);
    let base = rest_credentials("s", "p", ttl, now);
    assert_eq!(base.username, "1700000060:p");
    assert_ne!(base.password, rest_credentials("t", "p", ttl, now).password);
    assert_ne!(base.password, rest_credentials("s", "q", ttl, now).password);
    assert_ne!(
        base.password,
        rest_credentials("s", "p", ttl, now + Duration::from_secs(1)).password
    );
    // Sub-second parts are truncated.
    assert_eq!(
        base,
        rest_credentials("s", "p", ttl, now + Duration::from_millis(999))
    );
}

#[tokio::test]
async fn invalid_config_is_rejected() {
    let bad_range = TurnServer::start(config((0, 10), localhost_any_port())).await;
    assert!(matches!(bad_range, Err(TurnError::InvalidConfig(_))));
    let reversed = TurnServer::start(config((10, 5), localhost_any_port())).await;
    assert!(matches!(reversed, Err(TurnError::InvalidConfig(_))));
    let debug = format!("{:?}", config((0, 0), localhost_any_port()));
    assert!(!debug.contains(SECRET), "secret leaked in Debug: {debug}");
}

#[tokio::test]
async fn valid_credentials_allocate_and_relay_both_ways() {
    let range = (47100, 47199);
    let server = TurnServer::start(config(range, localhost_any_port()))
        .await
        .unwrap();
    assert_eq!(server.local_addr().ip(), LOCALHOST);
    assert_ne!(server.local_addr().port(), 0);
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    let client = client(&server, &creds("peer-a")).await;
    let relay = client.allocate().await.expect("allocation");
    let relay_addr = relay.local_addr().unwrap();
    assert_eq!(relay_addr.ip(), LOCALHOST);
    assert!(
        (range.0..=range.1).contains(&relay_addr.port()),
        "relay port {} outside {range:?}",
        relay_addr.port()
    );
    assert_eq!(server.allocation_count(), 1);
    // The unauthenticated first Allocate (401 challenge) is not a failure.
    assert_eq!(server.auth_failures(), 0);

    // client -> relay -> peer
    relay.send_to(b"ping", peer_addr).await.unwrap();
    let (data, from) = recv_within(&peer, MUST).await.expect("ping at peer");
    assert_eq!(data, b"ping");
    assert_eq!(from, relay_addr);

    // peer -> relay -> client
    peer.send_to(b"pong", relay_addr).await.unwrap();
    let (data, from) = relay_recv_within(&relay, MUST)
        .await
        .expect("pong at client");
    assert_eq!(data, b"pong");
    assert_eq!(from, peer_addr);

    // A second round, by then usually over the bound channel.
    relay.send_to(b"ping2", peer_addr).await.unwrap();
    let (data, _) = recv_within(&peer, MUST).await.expect("ping2 at peer");
    assert_eq!(data, b"ping2");
    peer.send_to(b"pong2", relay_addr).await.unwrap();
    let (data, _) = relay_recv_within(&relay, MUST)
        .await
        .expect("pong2 at client");
    assert_eq!(data, b"pong2");

    assert_eq!(server.peer_denials(), 0);
    assert_eq!(server.auth_failures(), 0);

    // Refresh with lifetime 0 deletes the allocation.
    relay.close().await.unwrap();
    wait_for("allocation count 0", || server.allocation_count() == 0).await;
    client.close().await.unwrap();
    server.close().await;
}

#[tokio::test]
async fn any_free_relay_port_when_range_is_zero() {
    let server = TurnServer::start(config((0, 0), localhost_any_port()))
        .await
        .unwrap();
    let client = client(&server, &creds("peer-z")).await;
    let relay = client.allocate().await.expect("allocation");
    let relay_addr = relay.local_addr().unwrap();
    assert_eq!(relay_addr.ip(), LOCALHOST);
    assert_ne!(relay_addr.port(), 0);
    assert_eq!(server.allocation_count(), 1);
    client.close().await.unwrap();
    server.close().await;
}

#[tokio::test]
async fn wrong_password_is_refused_and_counted() {
    let server = TurnServer::start(config((0, 0), localhost_any_port()))
        .await
        .unwrap();
    let mut bad = creds("peer-b");
    bad.password = rest_credentials(
        "other-secret",
        "peer-b",
        Duration::from_secs(3600),
        SystemTime::now(),
    )
    .password;
    let client = client(&server, &bad).await;
    let result = timeout(MUST, client.allocate())
        .await
        .expect("answer in time");
    assert!(
        result.is_err(),
        "allocation with a wrong password succeeded"
    );
    assert_eq!(server.allocation_count(), 0);
    assert!(server.auth_failures() >= 1);
    client.close().await.unwrap();
    server.close().await;
}

#[tokio::test]
async fn expired_or_malformed_username_is_refused() {
    let server = TurnServer::start(config((0, 0), localhost_any_port()))
        .await
        .unwrap();

    // Correctly signed, but expired an hour ago.
    let past = SystemTime::now() - Duration::from_secs(7200);
    let expired = rest_credentials(SECRET, "peer-c", Duration::from_secs(3600), past);
    let client1 = client(&server, &expired).await;
    let result = timeout(MUST, client1.allocate())
        .await
        .expect("answer in time");
    assert!(
        result.is_err(),
        "allocation with an expired username succeeded"
    );
    let after_expired = server.auth_failures();
    assert!(after_expired >= 1);

    // Not "<expiry>:<id>" (the password is the right HMAC of that username).
    let username = "peer-c".to_string();
    let malformed = TurnCredentials {
        password: rest_credentials(SECRET, "x", Duration::ZERO, SystemTime::now()).password,
        username,
    };
    let client2 = client(&server, &malformed).await;
    let result = timeout(MUST, client2.allocate())
        .await
        .expect("answer in time");
    assert!(
        result.is_err(),
        "allocation with a malformed username succeeded"
    );
    assert!(server.auth_failures() > after_expired);
    assert_eq!(server.allocation_count(), 0);

    client1.close().await.unwrap();
    client2.close().await.unwrap();
    server.close().await;
}

#[tokio::test]
async fn disallowed_peers_get_nothing_and_allowed_traffic_still_flows() {
    let allowed_ports = (51000, 51020);
    let server = TurnServer::start(config(
        (0, 0),
        AllowedPeers {
            ips: vec![LOCALHOST],
            ports: allowed_ports,
        },
    ))
    .await
    .unwrap();
    let good = bind_peer(allowed_ports, true).await;
    let good_addr = good.local_addr().unwrap();
    let bad = bind_peer(allowed_ports, false).await;
    let bad_addr = bad.local_addr().unwrap();

    // Client A: permission for 127.0.0.1 first created for the allowed peer.
    let client_a = client(&server, &creds("peer-d")).await;
    let relay = client_a.allocate().await.expect("allocation");
    let relay_addr = relay.local_addr().unwrap();
    relay.send_to(b"ok-1", good_addr).await.unwrap();
    assert_eq!(recv_within(&good, MUST).await.expect("ok-1").0, b"ok-1");

    // Same IP, disallowed port: the client's IP permission lets it send a Send indication
    // (and try a ChannelBind, refused with 403); the relayed datagram is dropped.
    let denials_before = server.peer_denials();
    relay.send_to(b"bad-1", bad_addr).await.unwrap();
    relay.send_to(b"bad-2", bad_addr).await.unwrap();
    assert_eq!(
        recv_within(&bad, MUST_NOT).await,
        None,
        "data reached a disallowed peer"
    );
    assert!(server.peer_denials() > denials_before);

    // The disallowed peer cannot reach the client through the relay either.
    bad.send_to(b"intrude", relay_addr).await.unwrap();
    assert_eq!(
        relay_recv_within(&relay, MUST_NOT).await,
        None,
        "data from a disallowed peer reached the client"
    );

    // Allowed traffic still works, both ways.
    relay.send_to(b"ok-2", good_addr).await.unwrap();
    assert_eq!(recv_within(&good, MUST).await.expect("ok-2").0, b"ok-2");
    good.send_to(b"reply", relay_addr).await.unwrap();
    let (data, from) = relay_recv_within(&relay, MUST).await.expect("reply");
    assert_eq!((data.as_slice(), from), (&b"reply"[..], good_addr));

    // Client B asks for the disallowed peer first: CreatePermission is refused (403).
    let client_b = client(&server, &creds("peer-e")).await;
    let relay_b = client_b.allocate().await.expect("allocation");
    let denials_before = server.peer_denials();
    assert!(relay_b.send_to(b"bad-3", bad_addr).await.is_err());
    // Another IP entirely (127.0.0.2 is loopback on Linux too).
    let other_ip: SocketAddr = (Ipv4Addr::new(127, 0, 0, 2), good_addr.port()).into();
    assert!(relay_b.send_to(b"bad-4", other_ip).await.is_err());
    assert!(server.peer_denials() >= denials_before + 2);
    assert_eq!(
        recv_within(&bad, MUST_NOT).await,
        None,
        "data reached a disallowed peer"
    );
    // B can still use the allowed peer.
    relay_b.send_to(b"ok-3", good_addr).await.unwrap();
    assert_eq!(recv_within(&good, MUST).await.expect("ok-3").0, b"ok-3");

    assert_eq!(server.auth_failures(), 0);
    assert_eq!(server.allocation_count(), 2);
    client_a.close().await.unwrap();
    client_b.close().await.unwrap();
    server.close().await;
}

#[tokio::test]
async fn close_releases_the_listening_port() {
    let server = TurnServer::start(config((0, 0), localhost_any_port()))
        .await
        .unwrap();
    let addr = server.local_addr();
    let client = client(&server, &creds("peer-f")).await;
    let _relay = client.allocate().await.expect("allocation");
    server.close().await;
    // The port can be bound again once the server has let go of it.
    UdpSocket::bind(addr)
        .await
        .expect("listening port released");
    client.close().await.unwrap();
}
