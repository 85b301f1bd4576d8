//! Whole sessions walked through the real Slint window by accessible labels, on simulated hardware.
//!
//! The kiosk is the real shell (`sim_kiosk::Rig`: store, tickets, checks, ONNX models, simulated
//! devices showing the demo fixtures on a virtual timeline). The screen is the real `ui::KioskWindow` on
//! Slint's testing backend, fed exactly as `ui::SlintFrontend` feeds it (after every tick, the view when
//! it changed and the pictures), but on this thread since there is no event loop. The student and the
//! technician act only through the element tree: a button is found by its accessible label (Chinese
//! first, English for a stretch after the language button), must be an enabled button, and its default
//! action is invoked; the intents it emits are what reach the kiosk. What they read is asserted from the
//! tree too (the shot counter, the masked name, a failed check's reason, the receipt), and the payment
//! QR is decoded from the rendered window.
//!
//! Every screen the window showed is recorded from the `Kiosk` global the adapter sets, and the test
//! ends by comparing that set with every screen and service page there is, including the waiting screens
//! (Verifying, Capturing, Checking, Finishing) the shell presents while their slow step runs on the next
//! tick. What it does not do: render every frame (only the QR is rendered) or check pixels
//! (`ui/tests/screenshots.rs` does).
//!
//! Needs `scripts/setup.sh` (ONNX Runtime and the models), like the other shell tests.

mod sim_kiosk;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use hal::sim::SimCamera;
use hal::{Camera, ErrorKind, Frame, Millis};
use i_slint_backend_testing::{AccessibleRole, ElementHandle, ElementRoot};
use kiosk::session::{OrderStatus, PaymentMode, PinHash};
use kiosk::shell::payment::{GatewayError, Order, PaymentGateway};
use kiosk::ticket::TicketId;
use sim_kiosk::{Rig, SimFront, fixtures};
use ui::generated::{Kiosk, ScreenKind, ServiceKind};
use ui::slint::{ComponentHandle, Model};
use ui::{Intent, KioskWindow, Screen, View, adapters};

const PIN: &str = "204863";

/// The name of every screen; exhaustive, so a new screen does not compile until it is named here.
fn screen_name(s: ScreenKind) -> &'static str {
    match s {
        ScreenKind::Attract => "attract",
        ScreenKind::Scan => "scan",
        ScreenKind::Verifying => "verifying",
        ScreenKind::Rejected => "rejected",
        ScreenKind::Confirm => "confirm",
        ScreenKind::PhotoType => "photo-type",
        ScreenKind::Lighting => "lighting",
        ScreenKind::Rules => "rules",
        ScreenKind::Framing => "framing",
        ScreenKind::Countdown => "countdown",
        ScreenKind::Capturing => "capturing",
        ScreenKind::CaptureFailed => "capture-failed",
        ScreenKind::Checking => "checking",
        ScreenKind::Result => "result",
        ScreenKind::Locked => "locked",
        ScreenKind::CoolingDown => "cooling-down",
        ScreenKind::Choose => "choose",
        ScreenKind::Pay => "pay",
        ScreenKind::Finishing => "finishing",
        ScreenKind::Done => "done",
        ScreenKind::Ended => "ended",
        ScreenKind::OutOfService => "out-of-service",
        ScreenKind::Service => "service",
    }
}

/// The name of every service page; exhaustive like [`screen_name`].
fn page_name(p: ServiceKind) -> &'static str {
    match p {
        ServiceKind::Pin => "service/pin",
        ServiceKind::Menu => "service/menu",
        ServiceKind::SelfTest => "service/self-test",
        ServiceKind::Seat => "service/seat",
        ServiceKind::Lights => "service/lights",
        ServiceKind::Tickets => "service/tickets",
        ServiceKind::Uploads => "service/uploads",
        ServiceKind::Counters => "service/counters",
        ServiceKind::Calibrate => "service/calibrate",
    }
}

fn all_screens() -> BTreeSet<&'static str> {
    use ScreenKind as S;
    use ServiceKind as P;
    let screens = [
        S::Attract,
        S::Scan,
        S::Verifying,
        S::Rejected,
        S::Confirm,
        S::PhotoType,
        S::Lighting,
        S::Rules,
        S::Framing,
        S::Countdown,
        S::Capturing,
        S::CaptureFailed,
        S::Checking,
        S::Result,
        S::Locked,
        S::CoolingDown,
        S::Choose,
        S::Pay,
        S::Finishing,
        S::Done,
        S::Ended,
        S::OutOfService,
        S::Service,
    ]
    .map(screen_name);
    let pages = [
        P::Pin,
        P::Menu,
        P::SelfTest,
        P::Seat,
        P::Lights,
        P::Tickets,
        P::Uploads,
        P::Counters,
        P::Calibrate,
    ]
    .map(page_name);
    screens.into_iter().chain(pages).collect()
}

/// The simulated camera with a hand on it: a still can be made to time out (a transient error, as a
/// USB camera that misses a frame), the cable can be pulled and plugged back, and the preview can be
/// frozen on one picture (what a photo held up to the lens, or a replayed image, looks like).
#[derive(Default)]
struct Hand {
    sim: SimCamera,
    fail_stills: u32,
    unplugged: bool,
    freeze: bool,
    frozen: Option<image::RgbImage>,
}

impl Hand {
    fn plugged(&self) -> Result<(), ErrorKind> {
        if self.unplugged {
            Err(ErrorKind::Disconnected)
        } else {
            Ok(())
        }
    }
}

impl Camera for Hand {
    type Error = ErrorKind;

    fn preview_frame(&mut self, now: Millis) -> Result<Frame, ErrorKind> {
        self.plugged()?;
        let mut frame = self.sim.preview_frame(now).map_err(|e| hal::Error::kind(&e))?;
        if self.freeze {
            frame.image = self.frozen.get_or_insert(frame.image).clone();
        } else {
            self.frozen = None;
        }
        Ok(frame)
    }

    fn capture_still(&mut self, now: Millis) -> Result<Frame, ErrorKind> {
        self.plugged()?;
        if self.fail_stills > 0 {
            self.fail_stills -= 1;
            return Err(ErrorKind::Timeout);
        }
        self.sim.capture_still(now).map_err(|e| hal::Error::kind(&e))
    }

    fn lock_exposure(&mut self, locked: bool) -> Result<(), ErrorKind> {
        self.plugged()?;
        self.sim.lock_exposure(locked).map_err(|e| hal::Error::kind(&e))
    }

    fn reconnect(&mut self, now: Millis) -> Result<(), ErrorKind> {
        self.plugged()?;
        self.sim.reconnect(now).map_err(|e| hal::Error::kind(&e))
    }

    fn is_connected(&self) -> bool {
        !self.unplugged
    }
}

impl SimFront for Hand {
    fn sim(&mut self) -> &mut SimCamera {
        &mut self.sim
    }
}

/// What the payment backend saw.
#[derive(Debug, Default)]
struct Ledger {
    orders: Vec<(Order, u32)>,
    polls: u32,
}

/// A payment backend whose student pays on the third poll.
struct PaysOnThirdPoll(Rc<RefCell<Ledger>>);

impl PaymentGateway for PaysOnThirdPoll {
    fn create_order(
        &mut self,
        ticket: &TicketId,
        shot_no: u8,
        amount_fen: u32,
    ) -> Result<Order, GatewayError> {
        let mut ledger = self.0.borrow_mut();
        let order = Order {
            order_id: format!("ord-{}", ledger.orders.len() + 1),
            qr_url: format!(
                "weixin://wxpay/bizpayurl?pr={}-{shot_no}",
                &ticket.to_string()[..8]
            ),
        };
        ledger.orders.push((order.clone(), amount_fen));
        Ok(order)
    }

    fn poll(&mut self, _: &str) -> Result<OrderStatus, GatewayError> {
        let mut ledger = self.0.borrow_mut();
        ledger.polls += 1;
        Ok(if ledger.polls >= 3 {
            OrderStatus::Paid
        } else {
            OrderStatus::Pending
        })
    }

    fn cancel(&mut self, _: &str) -> Result<(), GatewayError> {
        Ok(())
    }
}

/// The window, the touches it turns into intents, and what it has shown.
struct Ui {
    window: KioskWindow,
    rx: Receiver<Intent>,
    applied: Option<View>,
    seen: BTreeSet<&'static str>,
    touches: u32,
    /// Virtual time of the kiosks walked so far.
    walked: Duration,
}

impl Ui {
    fn new() -> Ui {
        let window = KioskWindow::new().expect("window");
        let (tx, rx) = channel();
        adapters::kiosk::connect(&window, tx);
        window.window().set_size(ui::slint::PhysicalSize::new(1920, 1080));
        window.show().expect("show");
        Ui {
            window,
            rx,
            applied: None,
            seen: BTreeSet::new(),
            touches: 0,
            walked: Duration::ZERO,
        }
    }

    fn kiosk(&self) -> Kiosk<'_> {
        self.window.global::<Kiosk>()
    }

    /// What the window shows now, as named in [`all_screens`].
    fn screen(&self) -> &'static str {
        let k = self.kiosk();
        match k.get_screen() {
            ScreenKind::Service => page_name(k.get_service_page()),
            other => screen_name(other),
        }
    }

    /// As `SlintFrontend` after a tick: the view when it changed, and any pictures.
    fn present<C: SimFront>(&mut self, r: &mut Rig<C>) {
        let view = r.k.session().view();
        let pictures = r.k.take_pictures();
        if self.applied.as_ref() != Some(&view) || !pictures.is_empty() {
            adapters::kiosk::apply(&self.window, &view, pictures);
            self.applied = Some(view);
            if self.kiosk().get_screen() == ScreenKind::Service {
                self.seen.insert("service");
            }
            self.seen.insert(self.screen());
        }
    }

    /// Lets `d` of virtual time pass with the window following the kiosk.
    fn wait<C: SimFront>(&mut self, r: &mut Rig<C>, d: Duration) {
        r.run_for(d, |r| self.present(r));
    }

    /// Waits until the window shows `screen`, at most `limit` of virtual time.
    fn wait_for<C: SimFront>(&mut self, r: &mut Rig<C>, screen: &str, limit: Duration) {
        let end = r.now + limit;
        self.present(r);
        while self.screen() != screen {
            assert!(
                r.now < end,
                "still on {} waiting for {screen} (kiosk in {:?})",
                self.screen(),
                r.state()
            );
            self.wait(r, Duration::from_millis(40));
        }
    }

    fn buttons(&self, label: &str) -> Vec<ElementHandle> {
        ElementHandle::find_by_accessible_label(&self.window, label)
            .filter(|e| e.accessible_role() == Some(AccessibleRole::Button))
            .collect()
    }

    /// The one button labelled `label`, which must be enabled: its default action, and the intents it
    /// emitted (not yet given to the kiosk).
    fn touch(&mut self, label: &str) -> Vec<Intent> {
        let found = self.buttons(label);
        assert_eq!(
            found.len(),
            1,
            "one button labelled {label:?} on {} (labels: {:?})",
            self.screen(),
            self.labels()
        );
        // An element that does not say (the hidden service corner) is enabled, as for a screen reader.
        assert_ne!(
            found[0].accessible_enabled(),
            Some(false),
            "{label:?} is enabled on {}",
            self.screen()
        );
        found[0].invoke_accessible_default_action();
        self.touches += 1;
        let intents: Vec<Intent> = self.rx.try_iter().collect();
        assert!(!intents.is_empty(), "{label:?} emitted nothing");
        intents
    }

    /// Touches `label` and hands its intents to the kiosk.
    fn press<C: SimFront>(&mut self, r: &mut Rig<C>, label: &str) {
        for intent in self.touch(label) {
            r.ui(intent);
        }
        self.present(r);
    }

    /// Presses the one button labelled `label` with a finger (pointer events at its centre, not its
    /// accessible action), keeps it pressed for `d` while the kiosk runs and Slint's clock advances
    /// (press-and-hold buttons, the hidden service corner's 3 s timer), then lifts the finger. Every
    /// intent reaches the kiosk when it is emitted.
    fn hold<C: SimFront>(&mut self, r: &mut Rig<C>, label: &str, d: Duration) {
        use ui::slint::platform::{PointerEventButton, WindowEvent};
        let found = self.buttons(label);
        assert_eq!(
            found.len(),
            1,
            "one button labelled {label:?} on {}",
            self.screen()
        );
        let (at, size) = (found[0].absolute_position(), found[0].size());
        let position = ui::slint::LogicalPosition::new(at.x + size.width / 2.0, at.y + size.height / 2.0);
        let button = PointerEventButton::Left;
        let window = self.window.window();
        window.dispatch_event(WindowEvent::PointerMoved { position });
        window.dispatch_event(WindowEvent::PointerPressed { position, button });
        self.touches += 1;
        let mut emitted = 0;
        let mut deliver = |ui: &mut Ui, r: &mut Rig<C>| {
            for intent in ui.rx.try_iter().collect::<Vec<_>>() {
                emitted += 1;
                r.ui(intent);
            }
        };
        deliver(self, r);
        let step = Duration::from_millis(100);
        let mut held = Duration::ZERO;
        while held < d {
            self.wait(r, step);
            i_slint_backend_testing::mock_elapsed_time(step);
            held += step;
            deliver(self, r);
        }
        self.window
            .window()
            .dispatch_event(WindowEvent::PointerReleased { position, button });
        deliver(self, r);
        assert!(emitted > 0, "holding {label:?} emitted nothing");
        self.present(r);
    }

    /// Whether some element is labelled exactly `label` (what a screen reader would read).
    fn reads(&self, label: &str) -> bool {
        ElementHandle::find_by_accessible_label(&self.window, label)
            .next()
            .is_some()
    }

    fn assert_reads(&self, label: &str) {
        assert!(
            self.reads(label),
            "{label:?} is on {} (labels: {:?})",
            self.screen(),
            self.labels()
        );
    }

    /// Every accessible label in the window, for failure messages and prefix searches.
    fn labels(&self) -> Vec<String> {
        self.window
            .root_element()
            .query_descendants()
            .find_all()
            .into_iter()
            .filter_map(|e| e.accessible_label())
            .filter(|l| !l.is_empty())
            .map(|l| l.to_string())
            .collect()
    }

    /// The one button label starting with `prefix`.
    fn label_starting(&self, prefix: &str) -> String {
        let found: Vec<String> = self
            .labels()
            .into_iter()
            .filter(|l| l.starts_with(prefix) && !self.buttons(l).is_empty())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(found.len(), 1, "one button label starting {prefix:?}: {found:?}");
        found[0].clone()
    }

    /// The payment QR as the student's phone reads it: decoded from the rendered window.
    fn scan_window_qr(&self) -> Vec<String> {
        let shot = self.window.window().take_snapshot().expect("software snapshot");
        let (w, h) = (shot.width() as usize, shot.height() as usize);
        let bytes = shot.as_bytes();
        let grey = |x: usize, y: usize| {
            let p = &bytes[(y * w + x) * 4..][..3];
            ((u32::from(p[0]) * 299 + u32::from(p[1]) * 587 + u32::from(p[2]) * 114) / 1000) as u8
        };
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
        img.detect_grids()
            .into_iter()
            .filter_map(|g| g.decode().ok().map(|(_, text)| text))
            .collect()
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Attract to the framing screen of the ticket the camera shows, touching only the window.
fn to_framing<C: SimFront>(ui: &mut Ui, r: &mut Rig<C>) {
    ui.wait_for(r, "attract", secs(30));
    ui.press(r, "触摸屏幕开始");
    ui.wait_for(r, "confirm", secs(10));
    ui.press(r, "确认");
    ui.wait_for(r, "photo-type", secs(1));
    ui.press(r, "下一步");
    ui.wait_for(r, "lighting", secs(1));
    ui.press(r, "不戴眼镜");
    ui.wait_for(r, "rules", secs(1));
    ui.press(r, "我已阅读，开始拍摄");
    ui.wait_for(r, "framing", secs(1));
}

/// The student of the pass fixture: a forged ticket first, wrong details, then three shots (a failed
/// check, a pass, the chosen draft), payment by QR and the receipt. Half of it in English.
fn student(ui: &mut Ui) {
    let ledger = Rc::new(RefCell::new(Ledger::default()));
    let mut r = Rig::with(
        |c| {
            c.session.payment = PaymentMode::Gateway {
                amount_fen: 1250,
                poll_every_secs: 2,
            }
        },
        Box::new(PaysOnThirdPoll(ledger.clone())),
        |camera| camera,
    );
    let r = &mut r;
    r.k.camera_mut()
        .load_set("forged", &fixtures().join("forged/scan"))
        .expect("forged frames");
    // The first still is the tilted head (the roll check fails), the second the clean one.
    r.k.camera_mut().use_stills("shots", 0).expect("stills");

    // A forged ticket is refused with its reason.
    ui.wait_for(r, "attract", secs(1));
    ui.assert_reads("触摸屏幕开始");
    r.scan_set = "forged";
    ui.press(r, "触摸屏幕开始");
    ui.wait_for(r, "rejected", secs(10));
    ui.assert_reads("bad_signature");
    ui.press(r, "确定");
    r.scan_set = "scan";

    // The real ticket: the student cancels on the bar, then comes back and says the details are wrong.
    ui.wait_for(r, "attract", secs(10));
    ui.press(r, "触摸屏幕开始");
    ui.wait_for(r, "confirm", secs(10));
    ui.press(r, "取消");
    ui.wait_for(r, "attract", secs(1));
    ui.press(r, "触摸屏幕开始");
    ui.wait_for(r, "confirm", secs(10));
    let Screen::Confirm { masked_name, .. } = r.k.session().view().screen else {
        panic!("not on confirm")
    };
    assert!(masked_name.contains('*'), "masked: {masked_name}");
    ui.assert_reads(&masked_name);
    ui.press(r, "信息有误");
    ui.wait_for(r, "ended", secs(1));
    ui.press(r, "确定");

    // Again, and on to framing; cancel is on the bar of every step but not pressed.
    to_framing(ui, r);
    ui.assert_reads("第 1/3 次");
    ui.assert_reads("取消");

    // The seat: held up, then down; the simulated lift moves each time.
    let at = |r: &mut Rig| r.k.seat_mut().true_position_um();
    let before = at(r);
    ui.hold(r, "座椅升", Duration::from_millis(800));
    let up = at(r);
    assert!(up > before, "seat up: {before} -> {up} µm");
    ui.hold(r, "座椅降", Duration::from_millis(400));
    let down = at(r);
    assert!(down < up, "seat down: {up} -> {down} µm");

    // Shot 1: the countdown, then a failed check with its reason, retake only after the calm period.
    ui.press(r, "拍摄");
    ui.wait_for(r, "countdown", secs(1));
    ui.wait_for(r, "result", secs(20));
    let Screen::Result { passed, items, .. } = r.k.session().view().screen else {
        panic!("not on result")
    };
    assert!(!passed, "the tilted head fails");
    let reason = items.iter().find(|c| c.blocking).expect("a blocking check");
    ui.assert_reads(&reason.message_zh);
    let retake = "重新拍摄（剩余 2 次）";
    assert_eq!(
        ui.buttons(retake)[0].accessible_enabled(),
        Some(false),
        "calm period"
    );
    ui.wait(r, secs(6));
    ui.press(r, retake);

    // Shot 2 in English: passes; the student shoots once more, then picks shot 2 from the drafts.
    ui.wait_for(r, "framing", secs(1));
    ui.assert_reads("第 2/3 次");
    ui.press(r, "English");
    ui.assert_reads("Shot 2/3");
    ui.assert_reads("中文");
    ui.press(r, "Shoot");
    ui.wait_for(r, "result", secs(20));
    assert!(ui.kiosk().get_passed(), "shot 2 passes");
    ui.assert_reads("Use this photo");
    ui.press(r, "Shoot again (1 left)");
    ui.wait_for(r, "framing", secs(1));
    ui.assert_reads("Shot 3/3");
    ui.press(r, "Open drafts (1)");
    ui.wait_for(r, "choose", secs(1));
    // The draft is shown as it will be filed (the standardized photo came with the checked shot).
    let cards: Vec<_> = ui.kiosk().get_candidates().iter().collect();
    assert!(cards.iter().all(|c| c.has_image), "every draft has its photo");
    assert_eq!(cards.iter().map(|c| c.shot_no).collect::<Vec<_>>(), vec![2]);
    ui.press(r, "Choose shot 2");

    // Pay: the QR in the window is the order's URL; the student pays, the job is filed.
    ui.wait_for(r, "pay", secs(1));
    ui.assert_reads("Amount: CNY 12.50");
    let (order, amount) = ledger.borrow().orders[0].clone();
    assert_eq!(amount, 1250);
    assert_eq!(
        ui.scan_window_qr(),
        vec![order.qr_url.clone()],
        "the QR on screen"
    );
    ui.press(r, "中文");
    ui.assert_reads(&format!("订单号 {}", order.order_id));
    ui.wait_for(r, "done", secs(30));
    let Screen::Done { job_id, .. } = r.k.session().view().screen else {
        panic!("not done")
    };
    ui.assert_reads(&format!("回执编号：{job_id}"));
    let jobs = r.k.store().pending_jobs(10).expect("jobs");
    assert!(
        jobs.iter()
            .any(|j| j.id.to_string().starts_with(&job_id) && j.shot_no == 2),
        "job {job_id} for shot 2 in {jobs:?}"
    );
    ui.press(r, "确定");
    ui.wait_for(r, "attract", secs(1));
    ui.walked += r.now - r.origin;
}

/// The hard cases on one kiosk: the camera unplugged and back, a still that fails, a ticket locked
/// by liveness, the technician (every page; unlocks the ticket and grants shots), then two failed
/// checks in a row and the cool-down.
fn hard_cases(ui: &mut Ui) {
    let mut r = Rig::with(
        |c| {
            c.session.liveness_limit = 1;
            c.session.fail_limit = 2;
            c.service.pin_hash = Some(PinHash::make(b"salt-for-the-test", PIN));
        },
        Box::new(kiosk::shell::payment::NoGateway),
        |sim| Hand {
            sim,
            ..Hand::default()
        },
    );
    let r = &mut r;

    // A session starts, the camera is unplugged: out of service with the reason; plugged back, the
    // kiosk takes students again by itself.
    ui.wait_for(r, "attract", secs(1));
    r.scan_set = "shots";
    ui.press(r, "触摸屏幕开始");
    ui.wait_for(r, "scan", secs(1));
    r.k.camera_mut().unplugged = true;
    ui.wait_for(r, "out-of-service", secs(2));
    let Screen::OutOfService {
        reason_zh, hint_zh, ..
    } = r.k.session().view().screen
    else {
        panic!("not out of service")
    };
    ui.assert_reads(&reason_zh);
    ui.assert_reads(&hint_zh);
    assert!(reason_zh.contains("摄像头"), "{reason_zh}");
    r.k.camera_mut().unplugged = false;
    ui.wait_for(r, "attract", secs(5));
    r.scan_set = "scan";

    // A still that times out: the shot counts, the student may shoot again.
    to_framing(ui, r);
    r.k.camera_mut().fail_stills = 1;
    ui.press(r, "拍摄");
    ui.wait_for(r, "capture-failed", secs(10));
    ui.press(r, "重新拍摄");
    ui.wait_for(r, "framing", secs(1));
    ui.assert_reads("第 2/3 次");

    // A picture held up to the lens (the preview frozen): not live, and at the first such shot the
    // ticket is locked.
    r.k.camera_mut().freeze = true;
    ui.wait(r, secs(2));
    ui.press(r, "拍摄");
    ui.wait_for(r, "locked", secs(20));
    r.k.camera_mut().freeze = false;
    ui.press(r, "确定");
    ui.wait_for(r, "attract", secs(1));
    let ticket = r.k.store().recent_tickets(1).expect("tickets")[0]
        .ticket
        .to_string();

    // The technician: the hidden corner held for 3 s, the PIN on the pad, every page.
    ui.hold(r, "service", Duration::from_millis(3200));
    ui.wait_for(r, "service/pin", secs(1));
    // A wrong PIN is refused on the pad (and audited); the right one opens the menu.
    for d in "111111".chars() {
        ui.press(r, &d.to_string());
    }
    ui.assert_reads("密码错误");
    assert_eq!(ui.screen(), "service/pin");
    for d in PIN.chars() {
        ui.press(r, &d.to_string());
    }
    ui.wait_for(r, "service/menu", secs(1));
    let audit: Vec<String> =
        r.k.store()
            .audit_since(0, 1000)
            .expect("audit")
            .into_iter()
            .map(|a| a.event)
            .collect();
    assert!(
        audit.iter().any(|e| e == "service_pin_wrong") && audit.iter().any(|e| e == "service_entered"),
        "{audit:?}"
    );

    ui.press(r, "设备自检");
    ui.wait_for(r, "service/self-test", secs(1));
    ui.press(r, "开始自检");
    ui.wait(r, secs(30));
    assert!(!ui.kiosk().get_test_running(), "the self-test finished");
    ui.assert_reads("seat");
    ui.press(r, "返回菜单");

    ui.press(r, "座椅点动");
    ui.wait_for(r, "service/seat", secs(1));
    let before = r.k.seat_mut().true_position_um();
    ui.hold(r, "上升", secs(1));
    assert!(r.k.seat_mut().true_position_um() > before, "jogged up");
    ui.press(r, "返回菜单");

    ui.press(r, "灯光测试");
    ui.wait_for(r, "service/lights", secs(1));
    ui.press(r, "shoot");
    assert_eq!(r.k.lights().mode(), hal::LightMode::Shoot);
    ui.press(r, "off");
    assert_eq!(r.k.lights().mode(), hal::LightMode::Off);
    ui.press(r, "返回菜单");

    ui.press(r, "票据解锁与补次");
    ui.wait_for(r, "service/tickets", secs(1));
    let unlock = ui.label_starting("解锁 ");
    assert!(
        ticket.starts_with(unlock.trim_start_matches("解锁 ")),
        "{unlock} is {ticket}"
    );
    ui.press(r, &unlock);
    let grant = ui.label_starting("补一次 ");
    ui.press(r, &grant);
    ui.press(r, &grant);
    let state = &r.k.store().recent_tickets(1).expect("tickets")[0];
    assert!(state.locked.is_none(), "unlocked");
    assert_eq!(state.shots_granted, 2);
    ui.press(r, "返回菜单");

    ui.press(r, "上传队列");
    ui.wait_for(r, "service/uploads", secs(1));
    ui.press(r, "立即重试");
    ui.press(r, "返回菜单");

    ui.press(r, "计数");
    ui.wait_for(r, "service/counters", secs(1));
    ui.press(r, "返回菜单");

    ui.press(r, "校准");
    ui.wait_for(r, "service/calibrate", secs(1));
    ui.press(r, "开始校准");
    ui.wait(r, secs(5));
    ui.press(r, "退出维护模式");
    ui.wait_for(r, "attract", secs(1));

    // Back as a student with 3 shots left: two failed checks in a row impose the cool-down.
    r.k.camera_mut()
        .sim()
        .load_set("fail", &fixtures().join("fail/shots"))
        .expect("fail stills");
    r.k.camera_mut().sim().use_stills("fail", 0).expect("stills");
    to_framing(ui, r);
    ui.assert_reads("第 3/5 次");
    ui.press(r, "拍摄");
    ui.wait_for(r, "result", secs(20));
    assert!(!ui.kiosk().get_passed());
    ui.wait(r, secs(6));
    ui.press(r, "重新拍摄（剩余 2 次）");
    ui.wait_for(r, "framing", secs(1));
    ui.press(r, "拍摄");
    ui.wait_for(r, "cooling-down", secs(20));
    ui.press(r, "确定");
    ui.wait_for(r, "attract", secs(1));
    ui.walked += r.now - r.origin;
}

#[test]
fn every_screen_is_reached_by_touching_the_window() {
    // As `i_slint_backend_testing::init_no_event_loop`, with the software renderer so the window can
    // be rendered (the payment QR is read from its pixels).
    ui::slint::platform::set_platform(Box::new(i_slint_backend_testing::TestingBackend::new(
        i_slint_backend_testing::TestingBackendOptions {
            mock_time: true,
            threading: false,
            renderer_name: Some("software".into()),
        },
    )))
    .expect("platform set once");
    let wall = kiosk::clock::monotonic();
    let mut ui = Ui::new();

    student(&mut ui);
    hard_cases(&mut ui);

    assert_eq!(ui.seen, all_screens(), "screens shown");
    println!(
        "ui_session: {} screens and service pages shown of {}, {} touches, virtual {:.0} s, wall {:.1} s",
        ui.seen.len(),
        all_screens().len(),
        ui.touches,
        ui.walked.as_secs_f64(),
        (kiosk::clock::monotonic() - wall).as_secs_f64()
    );
}
