//! The HTTP/1.1 client against a hand-written server that frames its
//! responses every way a load tester meets: chunked with extensions and
//! trailers, delimited by the close, `Connection: close`, interim `1xx`,
//! `HEAD` and `204`, and a response cut short.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};

use crate::helpers::run_load;

const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer-Timing: total;dur=1.5\r\n\r\n\
    5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Checksum: 1\r\n\r\n";

/// Answers `GET|HEAD <path>` on 127.0.0.1:0, one thread per connection.
fn spawn_raw() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

fn serve(mut s: TcpStream) {
    // Without it, Nagle holds the second piece until the client's delayed ACK.
    let _ = s.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end + 4);
        let mut line = head.split(' ');
        let (method, path) = (line.next().unwrap_or(""), line.next().unwrap_or(""));
        let (reply, then_close): (&[u8], bool) = match (method, path) {
            ("GET", "/chunked") => (CHUNKED, false),
            ("GET", "/until-close") => (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", true),
            ("GET", "/close") => (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", true),
            ("GET", "/interim") => {
                (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ninterim", false)
            }
            ("GET", "/no-content") => (b"HTTP/1.1 204 No Content\r\n\r\n", false),
            ("HEAD", "/head") => (b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n", false),
            ("GET", "/truncated") => (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", true),
            _ => (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", false),
        };
        // Written in two pieces, so responses arrive split.
        let (a, b) = reply.split_at(reply.len() / 2);
        if s.write_all(a).and_then(|()| s.flush()).and_then(|()| s.write_all(b)).is_err() || then_close {
            return;
        }
    }
}

fn scenario(dir: &std::path::Path, toml: &str) -> String {
    let path = dir.join("scenario.toml");
    std::fs::File::create(&path).and_then(|mut f| f.write_all(toml.as_bytes())).expect("write");
    path.to_str().expect("utf-8").to_string()
}

#[test]
fn framings_decode_and_keep_or_close_the_connection() {
    let addr = spawn_raw();
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = r#"
        [[request]]
        name = "chunked"
        path = "/chunked"
        check = { status = 200, body_contains = "hello, world" }
        [[request]]
        name = "interim"
        path = "/interim"
        check = { status = 200, body_contains = "interim" }
        [[request]]
        name = "no-content"
        path = "/no-content"
        check = { status = 204 }
        [[request]]
        name = "head"
        method = "HEAD"
        path = "/head"
    "#;
    let url = format!("http://{addr}/");
    let r = run_load(&["--url", &url, "--scenario", &scenario(dir.path(), toml), "-c", "2", "--max-requests", "400"]);
    assert_eq!(r.requests.ok, 400, "{:?} {:?}", r.errors, r.error_samples);
    assert_eq!(r.connections.opened, 2, "every framing keeps the connection");
    let chunked = r.kinds.iter().find(|k| k.name == "chunked").expect("kind");
    let interim = r.kinds.iter().find(|k| k.name == "interim").expect("kind");
    assert_eq!(r.bytes.body_received, 12 * chunked.requests.ok + 7 * interim.requests.ok, "HEAD and 204 have no body");
    let st = r.server_timing.expect("Server-Timing from the chunked responses");
    assert_eq!(st.responses, chunked.requests.ok);

    for path in ["/until-close", "/close"] {
        let url = format!("http://{addr}{path}");
        let r = run_load(&["--url", &url, "-c", "2", "--max-requests", "100"]);
        assert_eq!(r.requests.ok, 100, "{path}: {:?} {:?}", r.errors, r.error_samples);
        assert_eq!(r.errors.total(), 0, "a closed connection is replaced, not an error");
        assert_eq!(r.connections.opened, 100, "{path}: one connection per response");
    }
}

#[test]
fn a_response_cut_short_is_an_io_error() {
    let addr = spawn_raw();
    let url = format!("http://{addr}/truncated");
    let r = run_load(&["--url", &url, "-c", "1", "--max-requests", "20", "-d", "10s"]);
    assert_eq!((r.errors.io, r.requests.ok), (20, 0), "{:?}", r.error_samples);
    assert!(
        r.error_samples.iter().any(|s| s.contains("closed before the response was complete")),
        "{:?}",
        r.error_samples
    );
}
