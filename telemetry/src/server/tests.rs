//! The server against real loopback sockets; the deadline tests run on paused time (tokio
//! advances the clock whenever every task waits), so they take no real time and each close
//! happens at an exact instant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::*;

const GET: &[u8] = b"GET /live HTTP/1.1\r\nhost: test\r\n\r\n";

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 10,
        max_connections_per_peer: 10,
        first_byte_timeout: Duration::from_millis(1_000),
        header_timeout: Duration::from_millis(2_000),
        idle_timeout: Duration::from_millis(3_000),
        keep_alive_interval: Duration::from_millis(5_000),
        keep_alive_timeout: Duration::from_millis(1_000),
        drain_grace: Duration::from_millis(4_000),
        http2: true,
    }
}

/// A listener answering 200 `ok` to everything, until the returned sender is dropped or used.
async fn listen(limits: ConnectionLimits) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    listen_with(limits, |_request: Request<Incoming>| async { Response::new(Full::new(Bytes::from_static(b"ok"))) })
        .await
}

async fn listen_with<H, F>(
    limits: ConnectionLimits,
    handler: H,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, "test", limits, handler, async {
        let _ = stopped.await;
    }));
    (address, stop, server)
}

async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((source, 0))).unwrap();
    socket.connect(to).await.unwrap()
}

/// Longer than any deadline of these tests: a connection still open then will stay open.
const NEVER: Duration = Duration::from_secs(600);

/// Reads until the server closes; answers what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    let reading = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(NEVER, reading).await.expect("the server never closed the connection");
    seen
}

async fn ask(stream: &mut TcpStream) -> String {
    stream.write_all(GET).await.unwrap();
    let mut answer = vec![0; 1024];
    let read = stream.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (address, stop, server) = listen(ConnectionLimits { max_connections: 1, ..limits() }).await;
    let mut first = TcpStream::connect(address).await.unwrap();
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = TcpStream::connect(address).await.unwrap();
    second.write_all(GET).await.unwrap();
    // A full round trip on the first connection: had the second been served, its answer would be
    // waiting by now.
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut probe = [0; 16];
    let early = second.try_read(&mut probe).map_err(|e| e.kind());
    assert_eq!(early, Err(std::io::ErrorKind::WouldBlock), "the second connection was served past the cap");
    drop(first);
    let mut answer = vec![0; 1024];
    let read = second.read(&mut answer).await.unwrap();
    assert!(answer[..read].starts_with(b"HTTP/1.1 200"));
    drop(second);
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_peer_over_its_cap_is_closed_at_once_while_other_peers_are_served() {
    let (address, stop, server) = listen(ConnectionLimits { max_connections_per_peer: 2, ..limits() }).await;
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let _held = [connect_from(attacker, address).await, connect_from(attacker, address).await];
    let mut third = connect_from(attacker, address).await;
    let opened = Instant::now();
    assert_eq!(read_until_closed(&mut third).await, b"", "closed without a word");
    assert_eq!(opened.elapsed(), Duration::ZERO, "closed at once, not by a deadline");
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 3), address).await;
    assert!(ask(&mut other).await.starts_with("HTTP/1.1 200"));
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_silent_connection_is_closed_at_its_first_byte_deadline() {
    let (address, _stop, _server) = listen(limits()).await;
    let mut silent = TcpStream::connect(address).await.unwrap();
    let opened = Instant::now();
    read_until_closed(&mut silent).await;
    assert_eq!(opened.elapsed(), limits().first_byte_timeout);
}

/// Sends `bytes` one every 100 ms after waiting `first`; answers when the server closed it.
async fn trickle(address: SocketAddr, first: Duration, bytes: &[u8]) -> Duration {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let opened = Instant::now();
    tokio::time::sleep(first).await;
    let (mut reader, mut writer) = stream.split();
    let writing = async {
        for byte in bytes {
            if writer.write_all(std::slice::from_ref(byte)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::future::pending::<()>().await;
    };
    let mut buf = [0; 1024];
    tokio::select! {
        () = writing => unreachable!(),
        _ = reader.read(&mut buf) => {}
        () = tokio::time::sleep(NEVER) => panic!("the server never closed the connection"),
    }
    opened.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_head_sent_a_byte_at_a_time_is_closed_at_the_header_deadline_from_its_first_byte() {
    let (address, _stop, _server) = listen(limits()).await;
    let head = b"GET /live HTTP/1.1\r\nhost: a-long-host-name-sent-slowly.example\r\n\r\n";
    let closed = trickle(address, Duration::from_millis(300), head).await;
    assert_eq!(closed, Duration::from_millis(300) + limits().header_timeout);
}

#[tokio::test(start_paused = true)]
async fn the_protocol_detection_is_timed_too() {
    // The first bytes of the HTTP/2 preface keep hyper-util guessing between HTTP/1 and HTTP/2.
    let (address, _stop, _server) = listen(limits()).await;
    let closed = trickle(address, Duration::ZERO, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert_eq!(closed, limits().header_timeout);
}

#[tokio::test(start_paused = true)]
async fn a_keep_alive_connection_lives_while_used_and_closes_when_idle() {
    let (address, _stop, _server) = listen(limits()).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    for _ in 0..3 {
        assert!(ask(&mut stream).await.starts_with("HTTP/1.1 200"));
        // Longer than the first-byte and header deadlines, shorter than the idle one.
        tokio::time::sleep(limits().idle_timeout - Duration::from_millis(100)).await;
    }
    assert!(ask(&mut stream).await.starts_with("HTTP/1.1 200"));
    let answered = Instant::now();
    read_until_closed(&mut stream).await;
    assert_eq!(answered.elapsed(), limits().idle_timeout);
}

async fn http2_client(address: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(address).await.unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(connection);
    sender
}

#[tokio::test(start_paused = true)]
async fn an_idle_http2_connection_is_closed_at_the_idle_deadline() {
    let (address, _stop, _server) = listen(limits()).await;
    let mut client = http2_client(address).await;
    let request = Request::get(format!("http://{address}/live")).body(Full::default()).unwrap();
    let answer = client.send_request(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let answered = Instant::now();
    while !client.is_closed() {
        assert!(answered.elapsed() < NEVER, "the server never closed the connection");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let closed = answered.elapsed();
    assert!(
        closed >= limits().idle_timeout && closed < limits().idle_timeout + Duration::from_millis(50),
        "{closed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn an_http2_client_that_does_not_answer_pings_is_closed() {
    // A request the handler holds, so the connection is not idle; the client never answers the
    // server's PING.
    let (address, _stop, _server) = listen_with(limits(), |_request: Request<Incoming>| async {
        std::future::pending::<Response<Full<Bytes>>>().await
    })
    .await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let opened = Instant::now();
    let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    wire.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    // HEADERS on stream 1, END_STREAM | END_HEADERS: GET, http, /, authority "a" (HPACK).
    let block = [0x82, 0x86, 0x84, 0x41, 0x01, b'a'];
    wire.extend_from_slice(&[0, 0, block.len() as u8, 1, 0x05, 0, 0, 0, 1]);
    wire.extend_from_slice(&block);
    stream.write_all(&wire).await.unwrap();
    read_until_closed(&mut stream).await;
    let closed = opened.elapsed();
    let expected = limits().keep_alive_interval + limits().keep_alive_timeout;
    assert!(closed >= expected && closed < expected + Duration::from_millis(100), "{closed:?}");
}

#[tokio::test(start_paused = true)]
async fn a_drain_lets_requests_in_flight_finish_and_closes_the_rest_after_the_grace() {
    let release = Arc::new(Notify::new());
    let held = release.clone();
    let (address, stop, server) = listen_with(limits(), move |request: Request<Incoming>| {
        let held = held.clone();
        async move {
            if request.uri().path() == "/forever" {
                std::future::pending::<()>().await;
            }
            held.notified().await;
            Response::new(Full::new(Bytes::from_static(b"finished")))
        }
    })
    .await;
    let mut finishing = TcpStream::connect(address).await.unwrap();
    finishing.write_all(GET).await.unwrap();
    let mut stuck = TcpStream::connect(address).await.unwrap();
    stuck.write_all(b"GET /forever HTTP/1.1\r\nhost: test\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let draining = Instant::now();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.notify_one();
    let answer = String::from_utf8(read_until_closed(&mut finishing).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("finished"), "{answer}");
    read_until_closed(&mut stuck).await;
    server.await.unwrap();
    assert_eq!(draining.elapsed(), limits().drain_grace, "the stuck one closed at the end of the grace");
}

fn head() -> http::request::Parts {
    Request::post("/").body(()).unwrap().into_parts().0
}

#[tokio::test(start_paused = true)]
async fn a_body_trickled_past_its_deadline_is_refused() {
    let reader = BodyReader::new("test", 1024, Duration::from_secs(1));
    let (mut sender, body) = http_body_util::channel::Channel::<Bytes>::new(1);
    tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if sender.send_data(Bytes::from_static(b"x")).await.is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    assert_eq!(reader.read(&head(), body).await.unwrap_err(), BodyError::TimedOut);
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_declared_or_not() {
    let reader = BodyReader::new("test", 10, Duration::from_secs(1));
    let declared = Full::new(Bytes::from_static(b"eleven byte"));
    assert_eq!(reader.read(&head(), declared).await.unwrap_err(), BodyError::TooLarge);
    let (mut sender, undeclared) = http_body_util::channel::Channel::<Bytes>::new(4);
    for chunk in [&b"12345"[..], b"67890", b"1"] {
        sender.send_data(Bytes::from_static(chunk)).await.unwrap();
    }
    drop(sender);
    assert_eq!(reader.read(&head(), undeclared).await.unwrap_err(), BodyError::TooLarge);
    let (mut sender, chunked) = http_body_util::channel::Channel::<Bytes>::new(4);
    for chunk in [&b"12345"[..], b"67890"] {
        sender.send_data(Bytes::from_static(chunk)).await.unwrap();
    }
    drop(sender);
    assert_eq!(reader.read(&head(), chunked).await.unwrap().bytes, "1234567890");
}

#[tokio::test]
async fn the_budget_bounds_unauthenticated_bodies_until_their_hold_is_dropped() {
    let reader = BodyReader::new("test", 100, Duration::from_secs(1)).with_budget(100);
    let body = |n: usize| Full::new(Bytes::from(vec![b'x'; n]));
    let first = reader.read(&head(), body(60)).await.unwrap();
    assert_eq!(reader.read(&head(), body(60)).await.unwrap_err(), BodyError::OverBudget);
    let second = reader.read(&head(), body(40)).await.unwrap();
    drop(first.hold);
    drop(second);
    assert_eq!(reader.read(&head(), body(100)).await.unwrap().bytes.len(), 100, "the budget is whole again");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_closes_its_side_after_asking_is_still_answered() {
    // Once a request is read whole, its connection is not read again until it is answered (so a
    // request in flight holds no fresh read buffer): a client's end of sending is no hang-up.
    let answer = Arc::new(Notify::new());
    let (address, stop, server) = listen_with(limits(), {
        let answer = answer.clone();
        move |_request: Request<Incoming>| {
            let answer = answer.clone();
            async move {
                answer.notified().await;
                Response::new(Full::new(Bytes::from_static(b"ok")))
            }
        }
    })
    .await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(GET).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut first = [0; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut first)).await;
    assert!(early.is_err(), "the server ended the connection before answering: {early:?}");
    answer.notify_one();
    let answer = String::from_utf8(read_until_closed(&mut stream).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"), "{answer:?}");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[tokio::test]
async fn an_answer_to_a_collected_body_echoes_it() {
    // The reader in a real handler: the body a client sends arrives whole.
    let reader = BodyReader::new("test", 1024, Duration::from_secs(1));
    let (address, stop, server) = listen_with(limits(), move |request: Request<Incoming>| {
        let reader = reader.clone();
        async move {
            let (head, body) = request.into_parts();
            let read = reader.read(&head, body).await.unwrap();
            Response::new(Full::new(read.bytes))
        }
    })
    .await;
    let response = reqwest::Client::new().post(format!("http://{address}/")).body("hello").send().await.unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
    stop.send(()).unwrap();
    server.await.unwrap();
}

#[test]
fn the_protocol_is_told_from_the_first_bytes_peeked() {
    let both = builders(&limits());
    let is = |first: &[u8], builder: &auto::Builder<hyper_util::rt::TokioExecutor>| {
        std::ptr::eq(both.for_opening(first), builder)
    };
    let http2 = both.http2.as_ref().unwrap();
    assert!(is(b"POST /v1/payments HTTP/1.1\r\n", &both.http1));
    assert!(is(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", http2));
    assert!(is(b"PRI * HTTP/1.1\r\n\r\n", &both.http1), "not the preface: HTTP/1's to refuse");
    assert!(is(b"PRI * HT", &both.detect), "the preface's start only: read and told");
    let one = builders(&ConnectionLimits { http2: false, ..limits() });
    assert!(std::ptr::eq(one.for_opening(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), &one.http1));
}
