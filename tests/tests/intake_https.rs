//! The HTTPS target against the reference receiver, one delivery at a time: created then already
//! stored; a server whose certificate the configured CA did not sign is never talked to; a wrong token
//! and conflicting content are permanent failures, not retried forever.

use std::time::Duration;

use kiosk::outbox::{Delivery, DeliveryError, HttpsSettings, HttpsTarget, Spool, Target, Throttle};
use kiosk::store::Store;
use tests::intake::{FaultPlan, Intake};
use tests::pipeline::{self, TOKEN};

fn target(intake: &Intake, ca_pem: &str, token: &str) -> HttpsTarget {
    HttpsTarget::new(HttpsSettings {
        url: intake.url(),
        ca_pem: Some(ca_pem.as_bytes().to_vec()),
        token: token.into(),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
    })
    .unwrap()
}

#[test]
fn tls_trust_tokens_idempotence_and_conflicts() {
    let intake = Intake::start(TOKEN, FaultPlan::none()).unwrap();
    let stranger = Intake::start(TOKEN, FaultPlan::none()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("kiosk.sqlite")).unwrap();
    let key = age::x25519::Identity::generate().to_public().to_string();
    let spool = Spool::new(dir.path().join("spool"), &[key]).unwrap();
    let now = kiosk::clock::unix_now();
    let (id, _) = pipeline::accept_one(&store, &spool, now).unwrap();
    let job = store.job(&id).unwrap().unwrap();
    let throttle = Throttle::default();

    // Another server's CA: the TLS handshake fails before any byte of the job leaves.
    match target(&intake, stranger.ca_pem(), TOKEN).deliver(&job, &throttle) {
        Err(DeliveryError::Transient { reason, .. }) => assert!(reason.contains("transport"), "{reason}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    assert!(
        intake.state().log.is_empty(),
        "a request got through an untrusted handshake"
    );

    match target(&intake, intake.ca_pem(), "wrong").deliver(&job, &throttle) {
        Err(DeliveryError::Permanent(reason)) => assert!(reason.contains("401"), "{reason}"),
        other => panic!("expected 401, got {other:?}"),
    }

    let good = target(&intake, intake.ca_pem(), TOKEN);
    assert_eq!(good.deliver(&job, &throttle).unwrap(), Delivery::Created);
    assert_eq!(good.deliver(&job, &throttle).unwrap(), Delivery::AlreadyStored);
    assert_eq!(intake.state().deliveries.get(&id.to_string()), Some(&1));

    // Someone else's bytes under a job's file name: 409, permanent, and the server keeps its copy.
    let (other, _) = pipeline::accept_one(&store, &spool, now).unwrap();
    let other_job = store.job(&other).unwrap().unwrap();
    let role = other_job.files[0].role.clone();
    intake
        .state()
        .files
        .insert((other.to_string(), role.clone()), b"squatter".to_vec());
    match good.deliver(&other_job, &throttle) {
        Err(DeliveryError::Permanent(reason)) => assert!(reason.contains("409"), "{reason}"),
        other => panic!("expected 409, got {other:?}"),
    }
    assert_eq!(
        intake
            .state()
            .files
            .get(&(other.to_string(), role))
            .map(Vec::as_slice),
        Some(&b"squatter"[..])
    );
    assert_eq!(intake.state().conflicts, 1);
}

#[test]
fn plain_http_is_refused_at_configuration() {
    let err = HttpsTarget::new(HttpsSettings {
        url: "http://127.0.0.1:9/v1".into(),
        ca_pem: None,
        token: TOKEN.into(),
        connect_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(1),
    });
    assert!(err.is_err());
}
