//! Service mode end to end on simulated devices: the PIN pad (wrong PIN audited, right PIN enters),
//! every page of the menu with its real effect on the devices and the store (self-test with the light
//! cycle and the seat's full travel, seat jog, lights test, unlock and grant on a ticket, the upload
//! backlog, the counters, calibration against an empty backdrop), and the exit. The real shell, store
//! and checks; virtual time.

mod sim_kiosk;

use std::time::Duration;

use hal::Millis;
use kiosk::session::{Input, PinHash, StateKind};
use sim_kiosk::Rig;
use ui::{Intent, Screen, ServiceIntent, ServicePage, ServicePageKind};

const PIN: &str = "204863";

fn svc(r: &mut Rig, intent: ServiceIntent) {
    r.ui(Intent::Service(intent));
}

fn page(r: &Rig) -> ServicePage {
    match r.k.session().view().screen {
        Screen::Service(p) => p,
        other => panic!("not in service mode: {other:?}"),
    }
}

fn audit_events(r: &Rig) -> Vec<(String, String)> {
    r.k.store()
        .audit_since(0, 1000)
        .unwrap()
        .into_iter()
        .map(|a| (a.actor, a.event))
        .collect()
}

fn check<'a>(checks: &'a [ui::ServiceCheck], name: &str) -> &'a ui::ServiceCheck {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no {name} in {checks:?}"))
}

/// One student session that uses a shot and is then cancelled, so the store has a ticket to act on.
fn one_session(r: &mut Rig) -> String {
    r.ui(Intent::Start);
    r.run_until(StateKind::Confirm, Duration::from_secs(5));
    r.ui(Intent::Confirm);
    r.ui(Intent::Next);
    r.ui(Intent::Lighting { glasses: false });
    r.ui(Intent::AcceptRules);
    r.ui(Intent::Shoot);
    r.run_until(StateKind::Result, Duration::from_secs(10));
    let ticket = r.k.session().ticket_id().expect("a ticket in hand");
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    ticket.to_string()
}

#[test]
fn a_technician_walks_every_service_page() {
    let mut r = Rig::new(|c| {
        c.service.pin_hash = Some(PinHash::make(b"salt-for-the-test", PIN));
    });
    let ticket = one_session(&mut r);
    // The student's second liveness failure locked the ticket (as the session would have).
    let id = r.k.store().recent_tickets(1).unwrap()[0].ticket;
    assert_eq!(id.to_string(), ticket);
    r.k.store().lock_ticket(&id, "liveness", sim_kiosk::WALL).unwrap();

    // The hidden long-press: the PIN pad. A wrong PIN is refused and audited; the right one enters.
    r.ui(Intent::ServiceRequest);
    assert!(matches!(page(&r), ServicePage::Pin { entered: 0, .. }));
    for d in "111111".bytes() {
        svc(&mut r, ServiceIntent::PinDigit(d - b'0'));
    }
    assert!(matches!(page(&r), ServicePage::Pin { wrong: true, .. }));
    for d in PIN.bytes() {
        svc(&mut r, ServiceIntent::PinDigit(d - b'0'));
    }
    assert_eq!(page(&r), ServicePage::Menu);
    let audit = audit_events(&r);
    assert!(audit.contains(&("technician".into(), "service_pin_wrong".into())));
    assert!(audit.contains(&("technician".into(), "service_entered".into())));

    // Self-test: database, models, disk, camera, QR at once; then the light cycle and the seat's travel.
    svc(&mut r, ServiceIntent::Open(ServicePageKind::SelfTest));
    svc(&mut r, ServiceIntent::RunSelfTest);
    assert!(matches!(page(&r), ServicePage::SelfTest { running: true, .. }));
    r.run_for(Duration::from_secs(30), |_| {});
    let ServicePage::SelfTest { running, checks } = page(&r) else {
        panic!()
    };
    assert!(!running, "the self-test finished: {checks:?}");
    for name in ["database", "models", "camera", "qr", "lights", "seat"] {
        assert_eq!(check(&checks, name).ok, Some(true), "{:?}", check(&checks, name));
    }
    assert!(check(&checks, "disk").ok.is_some());
    let seat = &check(&checks, "seat").detail;
    // The simulated lift starts half-way and travels 200 mm at 25 mm/s: 4 s up, 8 s down, each
    // stopped by its limit switch.
    assert_eq!(seat, "up 4.0 s (limit), down 8.0 s (limit)");
    assert!(check(&checks, "camera").detail.contains("mean luma"));

    // Seat jog: held, it moves up; released, it stops; the position is shown once the top is known.
    svc(&mut r, ServiceIntent::Back);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Seat));
    assert!(
        matches!(page(&r), ServicePage::Seat { at_bottom: true, .. }),
        "{:?}",
        page(&r)
    );
    svc(&mut r, ServiceIntent::SeatJogUp);
    r.run_for(Duration::from_millis(2000), |_| {});
    let ServicePage::Seat {
        motion,
        position_permille,
        at_bottom,
        ..
    } = page(&r)
    else {
        panic!()
    };
    assert_eq!(motion, ui::SeatMotion::Up);
    assert!(!at_bottom, "{:?}", page(&r));
    let p = position_permille.expect("position known after the self-test reached the top");
    assert!((200..=300).contains(&p), "2 s of 8 s travel: {p}");
    svc(&mut r, ServiceIntent::SeatJogStop);
    r.run_for(Duration::from_millis(500), |_| {});
    assert!(matches!(
        page(&r),
        ServicePage::Seat {
            motion: ui::SeatMotion::Still,
            ..
        }
    ));
    // Down past the bottom: the driver stops at the limit by itself.
    svc(&mut r, ServiceIntent::SeatJogDown);
    r.run_for(Duration::from_secs(4), |_| {});
    assert!(matches!(
        page(&r),
        ServicePage::Seat {
            motion: ui::SeatMotion::Still,
            at_bottom: true,
            fault: None,
            ..
        }
    ));
    // Further down is refused by the driver, and the page says why.
    svc(&mut r, ServiceIntent::SeatJogDown);
    r.run_for(Duration::from_millis(500), |_| {});
    let ServicePage::Seat { fault, .. } = page(&r) else {
        panic!()
    };
    assert_eq!(fault.as_deref(), Some("at the limit already"));

    // Lights test.
    svc(&mut r, ServiceIntent::Back);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Lights));
    svc(&mut r, ServiceIntent::LightsMode("shoot".into()));
    let ServicePage::Lights { mode, levels } = page(&r) else {
        panic!()
    };
    assert_eq!(mode, "shoot");
    assert_eq!(
        levels[0],
        ("key_left".to_string(), 90),
        "the default table's shoot level"
    );
    assert_eq!(hal::Lights::levels(r.k.lights()).key_left, 900);

    // Tickets: the locked ticket, newest first, masked; unlock and grant, both audited.
    svc(&mut r, ServiceIntent::Back);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Tickets));
    let ServicePage::Tickets { tickets, .. } = page(&r) else {
        panic!()
    };
    assert_eq!(tickets[0].ticket, ticket);
    assert_eq!(tickets[0].status, "locked");
    assert!(tickets[0].masked_name.contains('*'), "{}", tickets[0].masked_name);
    assert_eq!((tickets[0].shots_used, tickets[0].shots_total), (1, 3));
    svc(
        &mut r,
        ServiceIntent::Unlock {
            ticket: ticket.clone(),
        },
    );
    let ServicePage::Tickets { tickets, message } = page(&r) else {
        panic!()
    };
    assert_eq!(tickets[0].status, "open");
    assert!(message.unwrap().en.contains("Unlocked"));
    svc(
        &mut r,
        ServiceIntent::GrantShot {
            ticket: ticket.clone(),
        },
    );
    let ServicePage::Tickets { tickets, .. } = page(&r) else {
        panic!()
    };
    assert_eq!(tickets[0].shots_total, 4);
    let audit = audit_events(&r);
    assert!(audit.contains(&("technician".into(), "ticket_unlocked".into())));
    assert!(audit.contains(&("technician".into(), "shot_granted".into())));

    // Uploads: nothing queued on this kiosk; a retry with nothing failed changes nothing.
    svc(&mut r, ServiceIntent::Back);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Uploads));
    svc(&mut r, ServiceIntent::RetryUploads);
    assert_eq!(
        page(&r),
        ServicePage::Uploads {
            queued: 0,
            failed: 0,
            acked_today: 0,
            oldest_age_s: None,
            last_error: None
        }
    );

    // Counters: the one session and its checked shot, in total and today.
    svc(&mut r, ServiceIntent::Back);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Counters));
    let ServicePage::Counters { rows } = page(&r) else {
        panic!()
    };
    let row = |name: &str| rows.iter().find(|(n, ..)| n == name).cloned().unwrap();
    assert_eq!(row("sessions"), ("sessions".into(), 1, 1), "{rows:?}");
    assert_eq!(row("shots_checked").1, 1);
    assert_eq!(row("passes").1 + row("failures").1, 1);

    // Calibration: the empty booth (the backdrop alone) under the shoot lights, and the seat's travel.
    let spec_blue = image::RgbImage::from_fn(1920, 1080, |x, y| {
        let n = ((x * 7 + y * 3) % 4) as u8;
        image::Rgb([100 + n, 197 - n, 254])
    });
    r.k.camera_mut().add_images("empty", vec![spec_blue]).unwrap();
    r.k.camera_mut().use_stills("empty", 0).unwrap();
    svc(&mut r, ServiceIntent::Back);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Calibrate));
    svc(&mut r, ServiceIntent::RunCalibration);
    r.run_for(Duration::from_secs(25), |_| {});
    let ServicePage::Calibrate { running, checks } = page(&r) else {
        panic!()
    };
    assert!(!running, "{checks:?}");
    for name in [
        "backdrop_coverage",
        "backdrop_colour",
        "backdrop_evenness",
        "exposure",
        "seat_travel",
    ] {
        assert_eq!(check(&checks, name).ok, Some(true), "{:?}", check(&checks, name));
    }
    assert!(check(&checks, "seat_travel").detail.contains("down 8."));
    // The booth with a student in it is no empty backdrop: calibration says so.
    r.k.camera_mut().use_stills("shots", 1).unwrap();
    svc(&mut r, ServiceIntent::RunCalibration);
    r.run_for(Duration::from_secs(25), |_| {});
    let ServicePage::Calibrate { checks, .. } = page(&r) else {
        panic!()
    };
    assert_eq!(check(&checks, "backdrop_coverage").ok, Some(false), "{checks:?}");

    // Exit: back to students, lights idle, audited.
    svc(&mut r, ServiceIntent::Exit);
    assert_eq!(r.state(), StateKind::Attract);
    assert_eq!(hal::Lights::levels(r.k.lights()), hal::LightTable::default().idle);
    assert!(audit_events(&r).contains(&("technician".into(), "service_exited".into())));
}

#[test]
fn the_service_key_enters_without_a_pin_and_no_session_starts_meanwhile() {
    let mut r = Rig::new(|_| {});
    r.input(Input::ServiceKey);
    assert_eq!(page(&r), ServicePage::Menu);
    // A ticket shown to the camera now is not read: no session starts in service mode.
    r.scan_set = "scan";
    r.k.camera_mut()
        .show_preview_set("scan", Millis::from_duration(r.now - r.origin))
        .unwrap();
    r.run_for(Duration::from_secs(2), |r| {
        assert_eq!(r.state(), StateKind::Service);
    });
    // Left alone, service mode times out back to the attract screen.
    r.run_for(Duration::from_secs(300), |_| {});
    assert_eq!(r.state(), StateKind::Attract);
}

#[test]
fn a_restart_does_not_reset_the_pin_lockout() {
    let pin = |c: &mut kiosk::config::KioskConfig| {
        c.service.pin_hash = Some(PinHash::make(b"salt-for-the-test", PIN));
    };
    let mut r = Rig::new(pin);
    let wrong = |r: &mut Rig| {
        for d in "111111".bytes() {
            svc(r, ServiceIntent::PinDigit(d - b'0'));
        }
    };
    r.ui(Intent::ServiceRequest);
    for _ in 0..3 {
        wrong(&mut r);
    }
    // Switched off and on: two tries left, not five.
    let mut r = r.restart(Duration::from_secs(10), pin);
    r.ui(Intent::ServiceRequest);
    wrong(&mut r);
    assert!(matches!(page(&r), ServicePage::Pin { locked_for: None, .. }));
    wrong(&mut r);
    assert!(
        matches!(
            page(&r),
            ServicePage::Pin {
                locked_for: Some(300),
                ..
            }
        ),
        "{:?}",
        page(&r)
    );
    // Switched off and on during the lockout: still locked, for what is left of it.
    let mut r = r.restart(Duration::from_secs(100), pin);
    r.ui(Intent::ServiceRequest);
    match page(&r) {
        ServicePage::Pin { locked_for, .. } => assert_eq!(locked_for, Some(200)),
        other => panic!("{other:?}"),
    }
    for d in PIN.bytes() {
        svc(&mut r, ServiceIntent::PinDigit(d - b'0'));
    }
    assert!(
        matches!(page(&r), ServicePage::Pin { .. }),
        "the right PIN is not taken while locked"
    );
    // After the lockout, across another restart, a fresh set of tries and the right PIN works.
    let mut r = r.restart(Duration::from_secs(250), pin);
    r.ui(Intent::ServiceRequest);
    for d in PIN.bytes() {
        svc(&mut r, ServiceIntent::PinDigit(d - b'0'));
    }
    assert_eq!(page(&r), ServicePage::Menu);
}

#[test]
fn the_uploads_page_shows_a_parked_job_and_retries_it() {
    let mut r = Rig::new(|_| {});
    // A student completes a session: the job is queued.
    r.ui(Intent::Start);
    r.run_until(StateKind::Confirm, Duration::from_secs(5));
    r.ui(Intent::Confirm);
    r.ui(Intent::Next);
    r.ui(Intent::Lighting { glasses: false });
    r.ui(Intent::AcceptRules);
    r.ui(Intent::Shoot);
    r.run_until(StateKind::Result, Duration::from_secs(10));
    r.ui(Intent::UseThis);
    // The commit runs on the next tick, with "finishing" on the screen meanwhile.
    assert_eq!(r.state(), StateKind::Finishing);
    r.run_until(StateKind::Done, Duration::from_secs(1));
    // The uploader leases it and parks it as failed, as it does when the server refuses the content.
    let wall = sim_kiosk::WALL + 60;
    let jobs = r.k.store().lease_jobs("uploader-1", wall, 60, 10).unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(
        r.k.store()
            .fail_job(&jobs[0].id, "uploader-1", "409 conflict: content differs", wall)
            .unwrap()
    );

    r.run_for(Duration::from_secs(20), |_| {});
    assert_eq!(r.state(), StateKind::Attract);
    r.input(Input::ServiceKey);
    svc(&mut r, ServiceIntent::Open(ServicePageKind::Uploads));
    let ServicePage::Uploads {
        queued,
        failed,
        oldest_age_s,
        last_error,
        ..
    } = page(&r)
    else {
        panic!()
    };
    assert_eq!((queued, failed), (0, 1));
    assert!(oldest_age_s.is_some());
    assert_eq!(last_error.as_deref(), Some("409 conflict: content differs"));
    // Retry: the parked job is queued again for the uploader, and the retry is audited.
    svc(&mut r, ServiceIntent::RetryUploads);
    let ServicePage::Uploads { queued, failed, .. } = page(&r) else {
        panic!()
    };
    assert_eq!((queued, failed), (1, 0));
    assert!(
        audit_events(&r).iter().any(|(actor, _)| actor == "technician"),
        "the retry is audited as the technician's"
    );
}
