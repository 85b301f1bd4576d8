//! `kioskctl selftest [--json]`: exercises every device the configuration selects and prints a
//! verdict per device (camera frame statistics, a light cycle, a seat jog or full travel with
//! timing and limit detection, the scanner, the buttons).
//!
//! Runs on real time (it is a technician's tool, not the session), bounded: each device step has
//! its own deadline. Deliberately does not touch the store or the session, and does not move the
//! seat further than a short jog unless asked (`--seat-travel`), since a student may be seated.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use hal::{Buttons, Camera, Error as _, LightMode, LightTable, Lights, Millis, QrSource, Seat, SeatCommand};
use kiosk::config::KioskConfig;
use kiosk::devices::{self, AnyQr};
use serde_json::json;

#[derive(Debug, clap::Args)]
pub struct SelftestArgs {
    /// The kiosk configuration whose `[devices]` are tested.
    #[arg(long, default_value = "/etc/kiosk/kiosk.toml")]
    config: PathBuf,
    /// One JSON object per device instead of text.
    #[arg(long)]
    json: bool,
    /// Run the seat over its whole travel (up to the top limit, then down to the bottom) instead of
    /// a half-second jog each way.
    #[arg(long)]
    seat_travel: bool,
    /// Seconds to wait for a test scan on a serial scanner (0: only check that it is there).
    #[arg(long, default_value_t = 0)]
    scan_wait_s: u64,
}

struct Verdict {
    device: &'static str,
    ok: bool,
    summary: String,
    details: serde_json::Value,
}

/// Milliseconds on the tool's own timeline.
struct Clock(std::time::Instant);

impl Clock {
    fn now(&self) -> Millis {
        Millis::from_duration(kiosk::clock::monotonic() - self.0)
    }
}

pub fn run(args: SelftestArgs) -> anyhow::Result<ExitCode> {
    let config =
        KioskConfig::load(&args.config).with_context(|| format!("loading {}", args.config.display()))?;
    let clock = Clock(kiosk::clock::monotonic());
    let mut d = match devices::build(&config.devices, LightTable::default()) {
        Ok(d) => d,
        Err(e) => {
            let v = Verdict {
                device: e.key,
                ok: false,
                summary: format!("cannot open: {}", e.source),
                details: json!({ "kind": e.source.kind().as_str() }),
            };
            print(&[v], args.json);
            return Ok(ExitCode::from(1));
        }
    };
    let verdicts = vec![
        camera(&mut d.camera, &clock),
        lights(&mut d.lights, &clock),
        seat(&mut d.seat, &clock, args.seat_travel, &config.devices.seat),
        scanner(&mut d.qr, &mut d.camera, &clock, args.scan_wait_s),
        buttons(&mut d.buttons, &clock),
    ];
    print(&verdicts, args.json);
    Ok(if verdicts.iter().all(|v| v.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print(verdicts: &[Verdict], as_json: bool) {
    for v in verdicts {
        if as_json {
            println!(
                "{}",
                json!({ "device": v.device, "ok": v.ok, "summary": v.summary, "details": v.details })
            );
        } else {
            println!(
                "{:<10} {:<4} {}",
                v.device,
                if v.ok { "OK" } else { "FAIL" },
                v.summary
            );
        }
    }
}

fn camera(cam: &mut devices::AnyCamera, clock: &Clock) -> Verdict {
    if !cam.is_connected()
        && let Err(e) = cam.reconnect(clock.now())
    {
        return fail("camera", &e);
    }
    let frame = match cam.preview_frame(clock.now()) {
        Ok(f) => f,
        Err(e) => return fail("camera", &e),
    };
    let gray = image::imageops::grayscale(&frame.image);
    let n = gray.as_raw().len().max(1) as f64;
    let mean = gray.as_raw().iter().map(|&p| f64::from(p)).sum::<f64>() / n;
    let var = gray
        .as_raw()
        .iter()
        .map(|&p| (f64::from(p) - mean).powi(2))
        .sum::<f64>()
        / n;
    let still = cam.capture_still(clock.now()).map(|f| f.image.dimensions());
    // A black or flat frame means a covered lens, lights off or a dead sensor.
    let exposed = (8.0..=247.0).contains(&mean) && var.sqrt() >= 3.0;
    let ok = exposed && still.is_ok();
    Verdict {
        device: "camera",
        ok,
        summary: format!(
            "preview {}x{}, mean luma {mean:.0}, contrast {:.0}; still {}",
            frame.image.width(),
            frame.image.height(),
            var.sqrt(),
            match &still {
                Ok((w, h)) => format!("{w}x{h}"),
                Err(e) => format!("failed: {e}"),
            }
        ),
        details: json!({
            "preview": [frame.image.width(), frame.image.height()],
            "mean_luma": mean.round(),
            "contrast": var.sqrt().round(),
            "still": still.ok(),
            "exposed": exposed,
        }),
    }
}

fn lights(l: &mut devices::AnyLights, clock: &Clock) -> Verdict {
    let modes = [
        LightMode::Idle,
        LightMode::Preview,
        LightMode::PreviewGlasses,
        LightMode::Shoot,
        LightMode::ShootGlasses,
        LightMode::Idle,
    ];
    for mode in modes {
        if let Err(e) = l.set_mode(mode, clock.now()) {
            return fail("lights", &e);
        }
        // Long enough for a technician to see each step, short enough not to bore.
        std::thread::sleep(Duration::from_millis(150));
    }
    Verdict {
        device: "lights",
        ok: true,
        summary: format!("cycled {} modes, now idle", modes.len()),
        details: json!({ "modes": modes.len() }),
    }
}

/// Drives one direction until the seat stops by itself (limit or fault) or `limit_ms` passes.
fn run_seat(
    s: &mut devices::AnySeat,
    clock: &Clock,
    cmd: SeatCommand,
    limit_ms: u64,
) -> Result<serde_json::Value, devices::DeviceError> {
    let start = clock.now();
    match s.command(cmd, start) {
        Ok(()) => {}
        // Already at that end: report it, do not fail.
        Err(e) if e.kind() == hal::ErrorKind::LimitReached => {
            return Ok(json!({ "ms": 0, "stopped_by": "already_at_limit" }));
        }
        Err(e) => return Err(e),
    }
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = clock.now();
        let st = s.poll(now)?;
        let ms = now.since(start);
        if st.fault.is_some() {
            let _ = s.command(SeatCommand::Stop, clock.now());
            return Ok(json!({ "ms": ms, "stopped_by": format!("fault {:?}", st.fault) }));
        }
        if st.moving.is_none() {
            let by = if st.at_top || st.at_bottom {
                "limit"
            } else {
                "target"
            };
            return Ok(json!({ "ms": ms, "stopped_by": by, "at_top": st.at_top, "at_bottom": st.at_bottom }));
        }
        if ms >= limit_ms {
            s.command(SeatCommand::Stop, clock.now())?;
            return Ok(json!({ "ms": ms, "stopped_by": "selftest" , "position_mm": st.position_mm}));
        }
    }
}

fn seat(s: &mut devices::AnySeat, clock: &Clock, travel: bool, cfg: &devices::SeatConfig) -> Verdict {
    let max_run = match cfg {
        devices::SeatConfig::Sim { max_run_ms }
        | devices::SeatConfig::Gpio { max_run_ms, .. }
        | devices::SeatConfig::Modbus { max_run_ms, .. } => *max_run_ms,
    };
    let limit = if travel { max_run + 1000 } else { 500 };
    let up = match run_seat(s, clock, SeatCommand::Up, limit) {
        Ok(v) => v,
        Err(e) => return fail("seat", &e),
    };
    let down = match run_seat(s, clock, SeatCommand::Down, limit) {
        Ok(v) => v,
        Err(e) => return fail("seat", &e),
    };
    let faulted = [&up, &down]
        .iter()
        .any(|v| v["stopped_by"].as_str().is_some_and(|s| s.starts_with("fault")));
    // Full travel must end at both limits; a jog only has to move and stop.
    let limits_seen = !travel || (up["stopped_by"] != "selftest" && down["stopped_by"] != "selftest");
    Verdict {
        device: "seat",
        ok: !faulted && limits_seen,
        summary: format!(
            "up {} ms (stopped by {}), down {} ms (stopped by {})",
            up["ms"],
            up["stopped_by"].as_str().unwrap_or("?"),
            down["ms"],
            down["stopped_by"].as_str().unwrap_or("?")
        ),
        details: json!({ "up": up, "down": down, "full_travel": travel }),
    }
}

fn scanner(q: &mut devices::AnyQr, cam: &mut devices::AnyCamera, clock: &Clock, wait_s: u64) -> Verdict {
    match q {
        AnyQr::Camera => {
            // The camera path: decode one preview frame and say what it sees.
            let codes = cam
                .preview_frame(clock.now())
                .map(|f| hal::qr::decode_rgb(&f.image).len())
                .unwrap_or(0);
            Verdict {
                device: "qr",
                ok: true,
                summary: format!("camera decoding; {codes} code(s) in view now"),
                details: json!({ "source": "camera", "codes_in_view": codes }),
            }
        }
        _ => {
            let deadline = clock.now().after_ms(wait_s * 1000);
            loop {
                match q.poll(clock.now()) {
                    Ok(Some(p)) => {
                        return Verdict {
                            device: "qr",
                            ok: true,
                            summary: format!("scanned {} bytes: {}", p.len(), p.escape_ascii()),
                            details: json!({ "scanned": p.escape_ascii().to_string() }),
                        };
                    }
                    Ok(None) if clock.now() >= deadline => {
                        return Verdict {
                            device: "qr",
                            ok: true,
                            summary: if wait_s > 0 {
                                format!("present; no scan within {wait_s} s")
                            } else {
                                "present".into()
                            },
                            details: json!({ "scanned": null }),
                        };
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                    Err(e) => return fail("qr", &e),
                }
            }
        }
    }
}

fn buttons(b: &mut devices::AnyButtons, clock: &Clock) -> Verdict {
    let mut events = Vec::new();
    for _ in 0..10 {
        match b.poll(clock.now()) {
            Ok(e) => events.extend(e),
            Err(e) => return fail("buttons", &e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A switch reported pressed while nobody touches the kiosk is stuck (or the key is on).
    let held: Vec<String> = events
        .iter()
        .filter(|e| e.pressed)
        .map(|e| format!("{:?}", e.switch))
        .collect();
    Verdict {
        device: "buttons",
        ok: true,
        summary: if held.is_empty() {
            "readable; nothing pressed".into()
        } else {
            format!("readable; pressed now: {}", held.join(", "))
        },
        details: json!({ "pressed": held }),
    }
}

fn fail(device: &'static str, e: &devices::DeviceError) -> Verdict {
    Verdict {
        device,
        ok: false,
        summary: format!("{} ({})", e, e.kind()),
        details: json!({ "kind": e.kind().as_str(), "hint_en": hal::supervisor::hint(device_id(device), e.kind()).en }),
    }
}

fn device_id(device: &str) -> hal::DeviceId {
    match device {
        "camera" => hal::DeviceId::Camera,
        "seat" => hal::DeviceId::Seat,
        "lights" => hal::DeviceId::Lights,
        "buttons" => hal::DeviceId::Buttons,
        _ => hal::DeviceId::QrScanner,
    }
}
