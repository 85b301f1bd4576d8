//! A rig shared by the shell-level tests: the real shell (`kiosk::shell::Kiosk`) with the real store,
//! ticket verification and checks, on simulated devices showing the committed demo fixtures, stepped on
//! a virtual timeline. Needs `scripts/setup.sh` (the shell loads the face models).
//!
//! `Rig::new` is the plain rig (a `SimCamera`, no payment gateway); `Rig::with` takes a payment gateway
//! and wraps the simulated camera (in a test's fault injector, say), for tests that need either.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hal::sim::{PreviewFit, SimCamera, SimCameraConfig, SimLights, SimSeat, SimSeatConfig};
use hal::{Camera, LightTable, Millis};
use kiosk::config::KioskConfig;
use kiosk::session::{Input, StateKind};
use kiosk::shell::payment::{NoGateway, PaymentGateway};
use kiosk::shell::{Kiosk, Parts};
use kiosk::vision::analyze::Analyzer;

/// 2026-11-21 10:00 in China: the fixtures' tickets are valid then.
pub const WALL: i64 = 1_795_226_400;

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/demo")
}

/// A camera the rig can stage: the simulated camera itself, or a wrapper around it.
pub trait SimFront: Camera {
    /// The simulated camera inside, to choose what it shows.
    fn sim(&mut self) -> &mut SimCamera;
}

impl SimFront for SimCamera {
    fn sim(&mut self) -> &mut SimCamera {
        self
    }
}

pub struct Rig<C: Camera = SimCamera> {
    pub k: Kiosk<C, SimSeat, SimLights>,
    pub origin: Instant,
    pub now: Instant,
    /// Unix seconds at `origin`.
    pub wall0: i64,
    /// The set shown on the scan screen (`scan`: the phone with the ticket).
    pub scan_set: &'static str,
    pub _dir: tempfile::TempDir,
}

impl Rig {
    /// A kiosk on the attract screen; `edit` may change the configuration first.
    pub fn new(edit: impl FnOnce(&mut KioskConfig)) -> Rig {
        Rig::with(edit, Box::new(NoGateway), |camera| camera)
    }

    /// The kiosk switched off and on again `after` later, on the same data directory.
    pub fn restart(self, after: Duration, edit: impl FnOnce(&mut KioskConfig)) -> Rig {
        let wall = self.wall0 + i64::try_from((self.now - self.origin + after).as_secs()).unwrap();
        let Rig { k, _dir, .. } = self;
        drop(k);
        Rig::open(_dir, wall, edit, Box::new(NoGateway), |camera| camera)
    }
}

impl<C: SimFront> Rig<C> {
    /// A kiosk on the attract screen with `gateway` as its payment backend and the simulated camera
    /// passed through `camera` (e.g. into a fault injector).
    pub fn with(
        edit: impl FnOnce(&mut KioskConfig),
        gateway: Box<dyn PaymentGateway>,
        camera: impl FnOnce(SimCamera) -> C,
    ) -> Rig<C> {
        Rig::open(tempfile::tempdir().expect("tempdir"), WALL, edit, gateway, camera)
    }

    fn open(
        dir: tempfile::TempDir,
        wall: i64,
        edit: impl FnOnce(&mut KioskConfig),
        gateway: Box<dyn PaymentGateway>,
        wrap: impl FnOnce(SimCamera) -> C,
    ) -> Rig<C> {
        let fx = fixtures();
        let mut config = KioskConfig::load(&fx.join("kiosk.toml")).expect("fixture config");
        edit(&mut config);
        let paths = kiosk::runtime::setup().expect("ONNX Runtime and models (run scripts/setup.sh)");
        let analyzer = Analyzer::new(&paths).expect("face models");
        let mut camera = SimCamera::new(SimCameraConfig {
            preview_width: 1920,
            preview_height: 1080,
            fit: PreviewFit::Crop,
            frame_interval_ms: 40,
        });
        camera
            .load_set("scan", &fx.join("pass/scan"))
            .expect("scan frames");
        camera.load_set("shots", &fx.join("pass/shots")).expect("shots");
        // The second still of the fixture is the passing one.
        camera.use_stills("shots", 1).expect("stills");
        camera.show_preview_set("shots", Millis::ZERO).expect("show");
        let origin = kiosk::clock::monotonic();
        let parts = Parts::from_config(&config, dir.path().to_path_buf(), wall).expect("config");
        let seat = SimSeat::new(SimSeatConfig::default());
        let lights = SimLights::new(LightTable::default());
        let mut k = Kiosk::new(parts, analyzer, gateway, wrap(camera), seat, lights, origin).expect("kiosk");
        // The simulated camera plays still photographs, which cannot blink: as in `kiosk demo`, an
        // undetermined liveness is an advisory here (liveness itself is tested in liveness_frames.rs).
        k.set_liveness_required(false);
        Rig {
            k,
            origin,
            now: origin,
            wall0: wall,
            scan_set: "scan",
            _dir: dir,
        }
    }

    pub fn millis(&self) -> Millis {
        Millis::from_duration(self.now - self.origin)
    }

    pub fn state(&self) -> StateKind {
        self.k.session().state()
    }

    pub fn input(&mut self, input: Input) {
        self.k.input(self.now, input);
    }

    pub fn ui(&mut self, intent: ui::Intent) {
        self.input(Input::Ui(intent));
    }

    /// Ticks the kiosk at every wakeup it asks for until `d` of virtual time has passed, calling `each`
    /// after every tick. The camera shows the phone with the ticket on the scan screen and the seated
    /// student everywhere else (so an idle kiosk reads no code).
    pub fn run_for(&mut self, d: Duration, mut each: impl FnMut(&mut Rig<C>)) {
        let end = self.now + d;
        while self.now < end {
            let showing = match self.state() {
                StateKind::Scan | StateKind::Verify | StateKind::Rejected => self.scan_set,
                _ => "shots",
            };
            let t = self.millis();
            let camera = self.k.camera_mut().sim();
            if camera.showing() != Some(showing) {
                camera.show_preview_set(showing, t).expect("set");
            }
            self.k.tick(self.now);
            each(self);
            let next = self
                .k
                .next_wakeup(self.now)
                .max(self.now + Duration::from_millis(1));
            self.now = next.min(end);
        }
    }

    /// Runs until the session reaches `state` (or panics after `limit`).
    pub fn run_until(&mut self, state: StateKind, limit: Duration) {
        let end = self.now + limit;
        while self.state() != state {
            assert!(
                self.now < end,
                "still in {:?} waiting for {state:?}",
                self.state()
            );
            self.run_for(Duration::from_millis(20), |_| {});
        }
    }
}
