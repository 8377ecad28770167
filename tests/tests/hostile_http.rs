//! Hostile HTTP at the SCIM adapter's edge: oversized bodies and heads,
//! slow and idle connections, too many connections, and a stalled identity
//! service. Raw sockets show what a client really reads; after each case
//! both servers must still serve another tenant.

use std::time::Duration;

use identity_lifecycle_tests::{Reply, Scim, Stack, USER_SCHEMA, json, user};
use reqwest::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds every wait on a socket, so a server that never answers or never
/// closes fails the test instead of hanging it. Far above every timeout
/// the tests configure.
const HANG_GUARD: Duration = Duration::from_secs(30);

fn scim_addr(stack: &Stack) -> String {
    stack
        .scim_base
        .trim_start_matches("http://")
        .trim_end_matches("/scim/v2")
        .to_string()
}

/// Writes `head` and `body` in full, then reads until the server closes.
/// Fails if the server reset the connection or made the client's write fail.
async fn exchange(stack: &Stack, head: &str, body: &[u8]) -> std::io::Result<String> {
    let mut socket = TcpStream::connect(scim_addr(stack)).await?;
    socket.write_all(head.as_bytes()).await?;
    socket.write_all(body).await?;
    read_to_close(&mut socket).await
}

async fn read_to_close(socket: &mut TcpStream) -> std::io::Result<String> {
    let mut answer = Vec::new();
    tokio::time::timeout(HANG_GUARD, socket.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Reads one `/healthz` answer from a kept-alive connection.
async fn read_health(socket: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0; 1024];
    while !answer.ends_with(b"ok\n") {
        let read = tokio::time::timeout(HANG_GUARD, socket.read(&mut chunk))
            .await
            .expect("answered")
            .expect("read");
        assert!(
            read > 0,
            "closed early: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn post_head(stack: &Stack, token: &str, framing: &str) -> String {
    format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/scim+json\r\nConnection: close\r\n{framing}\r\n",
        scim_addr(stack)
    )
}

/// A JSON user whose nickName makes it `size` bytes long.
fn big_user(size: usize) -> Vec<u8> {
    let mut body = user("big@example.com");
    body["nickName"] = json!("");
    let padding = size - body.to_string().len();
    body["nickName"] = json!("x".repeat(padding));
    body.to_string().into_bytes()
}

fn assert_scim_413(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:.200}");
    assert!(answer.contains(r#""status":"413""#), "{answer:.400}");
}

#[tokio::test]
async fn oversized_bodies_are_answered_413_not_reset() {
    let limit = 1024 * 1024;
    let stack = Stack::start_with_body_limit(limit).await;
    let acme = stack.tenant("acme").await;
    let body = big_user(4 * limit);

    // Content-Length 4× the limit, written in full before reading.
    let head = post_head(
        &stack,
        &acme.token,
        &format!("Content-Length: {}\r\n", body.len()),
    );
    let answer = exchange(&stack, &head, &body).await.expect("no reset");
    assert_scim_413(&answer);

    // Chunked, so the limit is found only while reading.
    let mut chunked = Vec::new();
    for chunk in body.chunks(64 * 1024) {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = post_head(&stack, &acme.token, "Transfer-Encoding: chunked\r\n");
    let answer = exchange(&stack, &head, &chunked).await.expect("no reset");
    assert_scim_413(&answer);

    // A client that waits for 100 Continue gets the 413 instead and never
    // sends the body; the server then closes the connection.
    let head = post_head(
        &stack,
        &acme.token,
        &format!("Content-Length: {}\r\nExpect: 100-continue\r\n", body.len()),
    );
    let answer = exchange(&stack, &head, b"").await.expect("no reset");
    assert_scim_413(&answer);
    assert!(!answer.contains("100 Continue"), "{answer:.200}");

    // A request refused before its body is read (no token) reads its 401.
    let head = format!(
        "POST /scim/v2/Users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let answer = exchange(&stack, &head, &body).await.expect("no reset");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer:.200}");

    // An ordinary client sending the whole body reads the 413 too.
    let scim = stack.scim(&acme.token);
    let text = String::from_utf8(body).expect("JSON is UTF-8");
    scim.send_raw(Method::POST, "/Users", "application/scim+json", text)
        .await
        .assert_error(413, None);

    assert_eq!(scim.get("/Users").await.body["totalResults"], 0);
    stack.assert_serving().await;
}

/// curl, with and without `Expect: 100-continue`, with Content-Length and
/// chunked, reads the 413 and exits cleanly.
#[tokio::test]
async fn curl_reads_the_413() {
    let limit = 256 * 1024;
    let stack = Stack::start_with_body_limit(limit).await;
    let acme = stack.tenant("acme").await;
    let file = std::env::temp_dir().join(format!("hostile-http-{}.json", stack.database.name()));
    std::fs::write(&file, big_user(4 * limit)).expect("write the body file");
    let url = stack.scim(&acme.token).url("/Users");
    for headers in [
        &["Expect:"][..],
        &["Expect: 100-continue"],
        &["Expect:", "Transfer-Encoding: chunked"],
        &["Expect: 100-continue", "Transfer-Encoding: chunked"],
    ] {
        let mut command = std::process::Command::new("curl");
        command.args(["-sS", "--max-time", "30", "-o", "-", "-w", "\n%{http_code}"]);
        command.args(["-H", &format!("Authorization: Bearer {}", acme.token)]);
        command.args(["-H", "Content-Type: application/scim+json"]);
        for header in headers {
            command.args(["-H", header]);
        }
        command.args(["--data-binary", &format!("@{}", file.display()), &url]);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("curl thread")
            .expect("curl is installed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{headers:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.ends_with("\n413"), "{headers:?}: {stdout:.300}");
        assert!(
            stdout.contains(r#""status":"413""#),
            "{headers:?}: {stdout:.300}"
        );
    }
    let _ = std::fs::remove_file(&file);
    stack.assert_serving().await;
}

#[tokio::test]
async fn oversized_heads_get_431() {
    let stack = Stack::start_with(|_| {}, |adapter| adapter.max_header_bytes = 8 * 1024).await;
    let acme = stack.tenant("acme").await;
    let head = format!(
        "GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nX-Padding: {}\r\n\r\n",
        acme.token,
        "p".repeat(12 * 1024)
    );
    let answer = exchange(&stack, &head, b"").await.expect("no reset");
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");

    // Under the limit, the same request is served.
    let reply = Scim::reply(
        stack
            .http
            .get(stack.scim(&acme.token).url("/Users"))
            .bearer_auth(&acme.token)
            .header("x-padding", "p".repeat(4 * 1024)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    stack.assert_serving().await;
}

#[tokio::test]
async fn slow_heads_are_cut_off_while_others_are_served() {
    let stack = Stack::start_with(
        |_| {},
        |adapter| {
            adapter.header_read_timeout = Duration::from_secs(1);
            adapter.idle_timeout = Duration::from_secs(600);
        },
    )
    .await;

    // A slowloris client: part of a head, then nothing.
    let mut slow = TcpStream::connect(scim_addr(&stack))
        .await
        .expect("connect");
    slow.write_all(b"GET /scim/v2/Users HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .expect("write");
    stack.assert_serving().await;
    let answer = read_to_close(&mut slow).await.expect("closed, not reset");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer:.200}"
    );

    // On a kept-alive connection, waiting for the next request longer than
    // the header read timeout is fine (the idle timeout, 600 s, applies);
    // but a slow head is cut off 1 s after its first byte.
    let mut kept = TcpStream::connect(scim_addr(&stack))
        .await
        .expect("connect");
    for _ in 0..2 {
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let answer = read_health(&mut kept).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .expect("write");
    let rest = read_to_close(&mut kept).await.expect("closed, not reset");
    assert!(!rest.contains("200 OK"), "{rest:.200}");
    stack.assert_serving().await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let stack = Stack::start_with(
        |_| {},
        |adapter| {
            adapter.header_read_timeout = Duration::from_secs(600);
            adapter.idle_timeout = Duration::from_secs(1);
        },
    )
    .await;
    let mut kept = TcpStream::connect(scim_addr(&stack))
        .await
        .expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    // The answer, then the close once the connection idled for 1 s (the
    // header read timeout, 600 s, is far beyond the guard).
    let answer = read_to_close(&mut kept).await.expect("closed, not reset");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    assert!(answer.ends_with("ok\n"), "{answer:.200}");
    stack.assert_serving().await;
}

#[tokio::test]
async fn connections_past_the_cap_wait_until_one_closes() {
    let cap = 3;
    let stack = Stack::start_with(|_| {}, |adapter| adapter.max_connections = cap).await;
    // The harness' client may keep a connection of its own; `cap` more
    // idle ones fill every slot either way.
    let mut idle = Vec::new();
    for _ in 0..cap {
        idle.push(
            TcpStream::connect(scim_addr(&stack))
                .await
                .expect("connect"),
        );
    }
    let mut waiting = TcpStream::connect(scim_addr(&stack))
        .await
        .expect("the kernel accepts into the backlog");
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    // Not served while every slot is taken. A server ignoring the cap
    // answers at once; a slow machine can only make this pass wrongly,
    // never fail wrongly.
    let mut byte = [0; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "answered past the connection cap");

    drop(idle);
    let answer = read_to_close(&mut waiting).await.expect("served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
    assert!(answer.ends_with("ok\n"), "{answer:.200}");
    stack.assert_serving().await;
}

fn assert_retry_later(reply: &Reply) {
    let status = reply.status.as_u16();
    assert!(matches!(status, 503 | 504), "{status}: {}", reply.body);
    reply.assert_error(status, None);
    let seconds = reply.header("retry-after").map(str::parse::<u64>);
    assert!(matches!(seconds, Some(Ok(1..))), "{:?}", reply.headers);
}

#[tokio::test]
async fn stalled_service_calls_time_out_with_retry_after() {
    let stack = Stack::start_with(
        |_| {},
        |adapter| adapter.grpc_timeout = Duration::from_secs(1),
    )
    .await;
    let acme = stack.tenant("acme").await;
    let scim = stack.scim(&acme.token);

    let locker = stack.connect().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock users");
    assert_retry_later(&scim.get("/Users").await);
    let created = json!({
        "schemas": [USER_SCHEMA],
        "userName": "stalled@example.com",
    });
    assert_retry_later(&scim.post("/Users", created).await);
    locker.batch_execute("ROLLBACK").await.expect("unlock");

    stack.assert_serving().await;
    let count = stack
        .query_strings("SELECT count(*) FROM users WHERE user_name = 'stalled@example.com'")
        .await;
    assert!(
        matches!(count.as_slice(), [n] if n == "0" || n == "1"),
        "{count:?}"
    );
    let listed = scim.get("/Users").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
}
