//! The MQTT heartbeat against a real broker (rumqttd, in process, on loopback): a retained "online"
//! status every interval that a late subscriber still receives, the last will "offline" when the kiosk
//! vanishes without saying goodbye, "offline" on a clean stop, and reconnection when the broker starts
//! after the kiosk.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use kiosk::ops::mqtt::{self, MqttConfig};
use kiosk::ops::{Shared, Status};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts rumqttd (MQTT 3.1.1) on `port` in a thread of its own; it runs until the test process ends.
fn broker(port: u16) {
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = rumqttd::ServerSettings {
        name: "v4-test".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: rumqttd::ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 20_480,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = rumqttd::Config {
        id: 0,
        router: rumqttd::RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 104_857_600,
            max_segment_count: 10,
            ..Default::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Default::default()
    };
    std::thread::spawn(move || {
        let mut broker = rumqttd::Broker::new(config);
        let _ = broker.start();
    });
    // Wait until it accepts connections.
    for _ in 0..100 {
        if std::net::TcpStream::connect(listen).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("broker did not start on {listen}");
}

/// A subscriber on `topic`: every message received (payload, retain flag) goes to the channel.
fn subscribe(port: u16, id: &str, topic: &str) -> std::sync::mpsc::Receiver<(Value, bool)> {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut conn) = Client::new(o, 10);
    client.subscribe(topic, QoS::AtLeastOnce).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _client = client;
        for ev in conn.iter() {
            match ev {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if tx.send((v, p.retain)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    });
    rx
}

/// The next message whose status is `status`, within `within`.
fn wait_for(rx: &std::sync::mpsc::Receiver<(Value, bool)>, status: &str, within: Duration) -> (Value, bool) {
    let deadline = kiosk::clock::monotonic() + within;
    loop {
        let left = deadline.saturating_duration_since(kiosk::clock::monotonic());
        match rx.recv_timeout(left) {
            Ok((v, retain)) if v["status"] == status => return (v, retain),
            Ok(_) => {}
            Err(_) => panic!("no {status:?} message within {within:?}"),
        }
    }
}

fn shared(site: &str) -> Arc<Shared> {
    let (shared, _rx) = Shared::new(Status {
        site: site.into(),
        version: "test".into(),
        ready: true,
        state: "Attract".into(),
        devices: [("camera".to_string(), "up".to_string())].into(),
        ..Status::default()
    });
    Arc::new(shared)
}

fn config(port: u16, site: &str) -> MqttConfig {
    MqttConfig {
        host: "127.0.0.1".into(),
        port: Some(port),
        topic_prefix: "fleet".into(),
        interval_secs: 1,
        client_id: Some(format!("kiosk-{site}")),
        ca: None,
        username: None,
        password_file: None,
    }
}

#[test]
fn retained_online_every_interval_then_will_offline_when_the_kiosk_vanishes() {
    let port = free_port();
    broker(port);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(kiosk::store::Store::open(dir.path().join("kiosk.db")).unwrap());
    let status = shared("LIB-01");
    let hb = mqtt::start(&config(port, "LIB-01"), status.clone(), Some(store)).unwrap();
    assert_eq!(hb.topic(), "fleet/LIB-01/status");

    // A subscriber that arrives later still learns the state: the status is retained.
    std::thread::sleep(Duration::from_millis(1500));
    let rx = subscribe(port, "ops-dashboard", "fleet/+/status");
    let (first, retained) = wait_for(&rx, "online", Duration::from_secs(5));
    assert!(retained, "the status message is retained");
    assert_eq!(first["site"], "LIB-01");
    assert_eq!(first["state"], "Attract");
    assert_eq!(first["devices"]["camera"], "up");
    assert_eq!(first["queue"]["pending"], 0);

    // Then every interval, with what the main loop publishes to Shared.
    status.update(|s| {
        s.state = "OutOfService".into();
        s.out_of_service = Some("camera disconnected".into());
    });
    let t0 = kiosk::clock::monotonic();
    let mut beats = 0;
    let mut last = Value::Null;
    while beats < 3 {
        let (v, _) = wait_for(&rx, "online", Duration::from_secs(3));
        beats += 1;
        last = v;
    }
    let took = kiosk::clock::monotonic() - t0;
    assert!(
        took <= Duration::from_millis(3900),
        "3 beats at 1 s took {took:?}"
    );
    assert_eq!(last["state"], "OutOfService");
    assert_eq!(last["out_of_service"], "camera disconnected");

    // Gone without DISCONNECT (as a crash or a cut cable): the broker publishes the will.
    hb.abandon();
    let (will, _) = wait_for(&rx, "offline", Duration::from_secs(5));
    assert_eq!(will["site"], "LIB-01");
    // And a newcomer now sees "offline" retained, not the last "online".
    let late = subscribe(port, "late-dashboard", "fleet/LIB-01/status");
    let (v, retained) = late.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!((v["status"].as_str(), retained), (Some("offline"), true));
}

#[test]
fn clean_stop_says_offline_and_a_late_broker_is_reached() {
    // The broker comes up after the kiosk: the heartbeat keeps retrying and connects.
    let port = free_port();
    let hb = mqtt::start(&config(port, "GYM-02"), shared("GYM-02"), None).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    broker(port);
    let rx = subscribe(port, "watcher", "fleet/GYM-02/status");
    let (online, _) = wait_for(&rx, "online", Duration::from_secs(10));
    assert_eq!(online["queue"], Value::Null, "no store given, no queue figures");
    drop(hb);
    let (offline, _) = wait_for(&rx, "offline", Duration::from_secs(5));
    assert_eq!(offline["site"], "GYM-02");
}
