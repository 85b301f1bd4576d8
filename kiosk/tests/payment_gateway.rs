//! The HTTP payment gateway adapter against a fake unit backend on loopback: an order is created and
//! polled to paid, a decline, a backend error, a backend that hangs (bounded by the timeout), a
//! cancellation after which a late payment is the backend's to refund, and garbage answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiosk::session::OrderStatus;
use kiosk::shell::payment::PaymentGateway;
use kiosk::shell::payment_http::{GatewayConfig, HttpGateway};
use kiosk::ticket::TicketId;

/// One scripted answer: status, body, and a delay before answering.
type Answer = (u16, String, Duration);

/// A fake backend answering requests in order from `script`; returns its base URL and the requests seen.
fn backend(script: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut script = script.into_iter();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut out = stream;
            // Several requests may share a kept-alive connection.
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                    break;
                }
                let (mut len, mut auth) = (0usize, String::new());
                loop {
                    let mut h = String::new();
                    reader.read_line(&mut h).unwrap();
                    if h == "\r\n" || h.is_empty() {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    if lower.starts_with("authorization:") {
                        auth = h.trim().to_string();
                    }
                }
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                log.lock().unwrap().push(format!(
                    "{} {} {}",
                    request_line.trim(),
                    auth,
                    String::from_utf8_lossy(&body)
                ));
                let Some((status, body, delay)) = script.next() else {
                    return;
                };
                std::thread::sleep(delay);
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if out.write_all(resp.as_bytes()).is_err() {
                    break;
                }
            }
        }
    });
    (url, seen)
}

fn ok(status: u16, body: &str) -> Answer {
    (status, body.to_string(), Duration::ZERO)
}

fn gateway(url: &str) -> HttpGateway {
    HttpGateway::new(&GatewayConfig {
        url: url.into(),
        token: "kiosk-7".into(),
        timeout_ms: 800,
    })
    .unwrap()
}

const T: TicketId = TicketId([9; 16]);

#[test]
fn an_order_is_created_and_polled_until_paid() {
    let (url, seen) = backend(vec![
        ok(
            201,
            r#"{"order_id":"ord-1","qr_url":"weixin://wxpay/bizpayurl?pr=abc"}"#,
        ),
        ok(200, r#"{"status":"pending"}"#),
        ok(200, r#"{"status":"paid"}"#),
    ]);
    let mut g = gateway(&url);
    let order = g.create_order(&T, 2, 2000).unwrap();
    assert_eq!(order.order_id, "ord-1");
    assert_eq!(order.qr_url, "weixin://wxpay/bizpayurl?pr=abc");
    assert_eq!(g.poll("ord-1").unwrap(), OrderStatus::Pending);
    assert_eq!(g.poll("ord-1").unwrap(), OrderStatus::Paid);
    let seen = seen.lock().unwrap();
    assert!(seen[0].starts_with("POST /v1/orders "), "{seen:?}");
    let compact: String = seen[0].split_whitespace().collect();
    assert!(
        compact.contains("Bearerkiosk-7") && compact.contains("\"amount_fen\":2000"),
        "{seen:?}"
    );
    assert!(seen[1].starts_with("GET /v1/orders/ord-1 "), "{seen:?}");
}

#[test]
fn a_decline_and_a_closed_order_are_reported_as_such() {
    let (url, _) = backend(vec![
        ok(200, r#"{"status":"declined"}"#),
        ok(200, r#"{"status":"closed"}"#),
    ]);
    let mut g = gateway(&url);
    assert_eq!(g.poll("o2").unwrap(), OrderStatus::Declined);
    assert_eq!(g.poll("o2").unwrap(), OrderStatus::Closed);
}

#[test]
fn backend_errors_and_garbage_are_errors_not_statuses() {
    let (url, _) = backend(vec![
        ok(500, r#"{"error":"boom"}"#),
        ok(200, r#"{"status":"refunded-maybe"}"#),
        ok(200, "not json"),
        ok(201, r#"{"order_id":"o3","qr_url":"javascript:alert(1)"}"#),
        ok(201, r#"{"order_id":"../admin","qr_url":"weixin://x"}"#),
    ]);
    let mut g = gateway(&url);
    assert!(g.create_order(&T, 1, 100).unwrap_err().0.contains("500"));
    assert!(g.poll("o3").unwrap_err().0.contains("unknown status"));
    assert!(g.poll("o3").is_err());
    assert!(g.create_order(&T, 1, 100).unwrap_err().0.contains("payment URL"));
    assert!(
        g.create_order(&T, 1, 100).is_err(),
        "an order id that would change the path is refused"
    );
}

#[test]
fn a_hanging_backend_costs_at_most_the_timeout() {
    let (url, _) = backend(vec![(200, r#"{"status":"paid"}"#.into(), Duration::from_secs(5))]);
    let mut g = gateway(&url);
    let t0 = kiosk::clock::monotonic();
    let err = g.poll("o4").unwrap_err();
    let took = kiosk::clock::monotonic() - t0;
    assert!(took < Duration::from_secs(3), "took {took:?}: {err}");
}

#[test]
fn cancelling_an_order_that_was_paid_late_is_accepted() {
    // The session gave up (timeout); the student paid at the last second: the backend answers 409 to the
    // cancel and refunds, and the kiosk files nothing (the session ignores the late status).
    let (url, seen) = backend(vec![ok(409, r#"{"error":"already paid"}"#), ok(503, "{}")]);
    let mut g = gateway(&url);
    g.cancel("o5").unwrap();
    assert!(g.cancel("o5").is_err());
    assert!(seen.lock().unwrap()[0].starts_with("POST /v1/orders/o5/cancel "));
}

#[test]
fn an_unreachable_backend_is_an_error() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut g = gateway(&format!("http://127.0.0.1:{port}"));
    assert!(g.create_order(&T, 1, 100).is_err());
}
