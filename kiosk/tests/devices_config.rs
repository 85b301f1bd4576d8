//! The `[devices]` section: the shipped samples load and validate, bad values are refused with
//! the key named, and the factory builds simulated devices, a Modbus controller over a real pty,
//! and names the key of a real device that is absent.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hal::sim::{ControllerCore, SimController, SimSeatConfig};
use hal::{Camera, Error as _, ErrorKind, LightMode, LightTable, Lights, Millis, Seat, SeatCommand};
use kiosk::config::KioskConfig;
use kiosk::devices::{self, AnyLights, AnySeat, CameraConfig, DevicesConfig, QrConfig, SeatConfig};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

const HEAD: &str = "site = \"S1\"\n[tickets]\nissuers = [{ key_id = 7, public_key = \"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\" }]\n[storage]\nrecipients = [\"age1qrcj7czlzfkl4j773vknnfg8y8hzka62mvka0nv0evm2dh5q7dfspll9ng\"]\n";

fn load(devices: &str) -> Result<KioskConfig, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let p = dir.path().join("kiosk.toml");
    std::fs::write(&p, format!("{HEAD}{devices}")).map_err(|e| e.to_string())?;
    KioskConfig::load(&p).map_err(|e| e.to_string())
}

#[test]
fn the_samples_load_and_validate() {
    let sim = KioskConfig::load(&repo().join("config/sim.toml")).expect("config/sim.toml");
    assert!(matches!(sim.devices.camera, CameraConfig::Sim { frames: Some(ref f) } if f.is_dir()));
    let pi = KioskConfig::load(&repo().join("config/pi.toml")).expect("config/pi.toml");
    assert!(matches!(pi.devices.seat, SeatConfig::Gpio { up_pin: 23, .. }));
    assert!(matches!(pi.devices.qr, QrConfig::Serial { .. }));
    // No [devices] at all: everything simulated.
    assert_eq!(load("").expect("plain").devices, DevicesConfig::default());
}

#[test]
fn errors_name_the_key() {
    let cases = [
        (
            "[devices.seat]\ndriver = \"gpio\"\nup_pin = 23\ndown_pin = 23\ntop_limit_pin = 5\nbottom_limit_pin = 6\n",
            "devices.seat.down_pin",
        ),
        (
            "[devices.seat]\ndriver = \"gpio\"\nup_pin = 40\ndown_pin = 23\ntop_limit_pin = 5\nbottom_limit_pin = 6\n",
            "devices.seat.up_pin",
        ),
        (
            "[devices.seat]\ndriver = \"sim\"\nmax_run_ms = 999999\n",
            "devices.seat.max_run_ms",
        ),
        ("[devices.seat]\ndriver = \"modbus\"\n", "devices.controller"),
        (
            "[devices.lights]\ndriver = \"modbus\"\n[devices.controller]\npath = \"/dev/x\"\nslave_id = 0\n",
            "devices.controller.slave_id",
        ),
        (
            "[devices.controller]\npath = \"/dev/x\"\nbaud = 1234\n",
            "devices.controller.baud",
        ),
        (
            "[devices.camera]\ndriver = \"v4l2\"\nwidth = 10\n",
            "devices.camera.width",
        ),
        (
            "[devices.qr]\ndriver = \"serial\"\npath = \"\"\n",
            "devices.qr.path",
        ),
        (
            "[devices.lights]\ndriver = \"pwm\"\nkey_left = { channel = 0 }\nkey_right = { channel = 0 }\nbackground = { pin = 26 }\n",
            "devices.lights.key_right",
        ),
        (
            "[devices.buttons]\ndriver = \"gpio\"\nseat_up_pin = 16\nseat_down_pin = 20\nservice_key_pin = 16\n",
            "devices.buttons.service_key_pin",
        ),
        // Unknown keys and drivers are refused by the parser, which names them.
        ("[devices.seat]\ndriver = \"gpio\"\nup_pins = 23\n", "up_pins"),
        ("[devices.camera]\ndriver = \"gphoto\"\n", "gphoto"),
    ];
    for (toml, key) in cases {
        let e = load(toml).expect_err(toml);
        assert!(e.contains(key), "{toml}\n=> {e}");
    }
}

#[test]
fn the_factory_builds_the_simulation() {
    let sim = KioskConfig::load(&repo().join("config/sim.toml")).expect("config/sim.toml");
    let mut d = devices::build(&sim.devices, LightTable::default()).expect("sim devices");
    assert!(
        d.camera.preview_frame(Millis(0)).is_ok(),
        "frames loaded and showing"
    );
    d.seat.command(SeatCommand::Up, Millis(0)).expect("seat");
    d.lights.set_mode(LightMode::Shoot, Millis(0)).expect("lights");
    assert_eq!(d.lights.levels(), LightTable::default().shoot);
}

#[test]
fn the_factory_names_an_absent_real_device() {
    let c = DevicesConfig {
        qr: QrConfig::Serial {
            path: "/dev/kiosk-no-such-scanner".into(),
            baud: 9600,
            max_line: 1024,
        },
        ..DevicesConfig::default()
    };
    let e = devices::build(&c, LightTable::default()).expect_err("absent scanner");
    assert_eq!(e.key, "devices.qr.path");
    assert_eq!(e.source.kind(), ErrorKind::Disconnected);
    // On a machine that is not a Pi, the GPIO seat fails at its first pin with that key.
    if std::env::var_os("KIOSK_HW_GPIO").is_none() {
        let pi = KioskConfig::load(&repo().join("config/pi.toml")).expect("config/pi.toml");
        let mut no_camera = pi.devices.clone();
        no_camera.camera = CameraConfig::Sim { frames: None };
        let e = devices::build(&no_camera, LightTable::default()).expect_err("not a Pi");
        assert_eq!(e.key, "devices.seat.up_pin", "{e}");
    } else {
        println!("KIOSK_HW_GPIO set: not asserting the off-Pi failure");
    }
}

static PAIR: Mutex<()> = Mutex::new(());

#[test]
fn the_factory_builds_a_modbus_seat_and_lights_on_a_pty() {
    let (master, slave) = {
        let _g = PAIR.lock().unwrap_or_else(|p| p.into_inner());
        serialport::TTYPort::pair().expect("pty")
    };
    let path = serialport::SerialPort::name(&slave).expect("pty path");
    let sim = SimController::spawn(
        Box::new(master),
        ControllerCore::new(5, SimSeatConfig::default()),
        1,
    );
    let toml = format!(
        "[devices.seat]\ndriver = \"modbus\"\n[devices.lights]\ndriver = \"modbus\"\n[devices.controller]\npath = \"{path}\"\nslave_id = 5\nbaud = 19200\n"
    );
    let c = load(&toml).expect("config");
    let mut d = devices::build(&c.devices, LightTable::default()).expect("modbus devices");
    assert!(matches!(d.seat, AnySeat::Modbus(_)) && matches!(d.lights, AnyLights::Modbus(_)));
    d.lights.set_mode(LightMode::Preview, Millis(0)).expect("lights");
    let p = LightTable::default().preview;
    assert_eq!(
        sim.with_core(|c| c.lights()),
        [p.key_left, p.key_right, p.background]
    );
    d.seat.command(SeatCommand::Down, Millis(0)).expect("down");
    assert!(d.seat.poll(Millis(10)).expect("status").moving.is_some());
    d.seat.command(SeatCommand::Stop, Millis(20)).expect("stop");
    drop(slave);
}
