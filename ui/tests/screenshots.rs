//! Every screen and service page rendered headless with Slint's software renderer, at 1920x1080,
//! 1080x1920 and 1280x800, in Chinese and English, compared with the reference PNGs in
//! `ui/tests/screenshots/<size>/<lang>/<screen>.png`.
//!
//! Regenerate after an intended change with `UPDATE_SCREENSHOTS=1 cargo test -p ui --test screenshots`
//! and look at every PNG. A mismatch writes `<screen>.actual.png` and `<screen>.diff.png` under
//! `$CARGO_TARGET_TMPDIR/screenshots/`. The font is bundled (WenQuanYi Micro Hei is the window's
//! default family), so the pixels do not depend on the machine's fonts; the tolerance only absorbs
//! anti-aliasing differences: a pixel differs when a channel is off by more than 40, and a screen fails
//! when more than 0.2 % of its pixels differ.

mod common;

use std::path::{Path, PathBuf};

use i_slint_backend_testing::{TestingBackend, TestingBackendOptions};
use slint::ComponentHandle;
use ui::{KioskWindow, Lang, adapters};

const SIZES: [(u32, u32); 3] = [(1920, 1080), (1080, 1920), (1280, 800)];
const CHANNEL_TOLERANCE: u8 = 40;
const MAX_DIFFERING: f64 = 0.002;

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/screenshots")
}

type Rgba = image::RgbaImage;

fn snapshot(window: &KioskWindow) -> Rgba {
    let buffer = window.window().take_snapshot().expect("software snapshot");
    Rgba::from_raw(buffer.width(), buffer.height(), buffer.as_bytes().to_vec()).expect("rgba buffer")
}

/// The fraction of pixels that differ beyond the channel tolerance, and a diff image (red where they do).
fn compare(actual: &Rgba, expected: &Rgba) -> (f64, Rgba) {
    let mut diff = Rgba::new(actual.width(), actual.height());
    let mut differing = 0usize;
    for ((a, e), d) in actual.pixels().zip(expected.pixels()).zip(diff.pixels_mut()) {
        let off =
            a.0.iter()
                .zip(e.0.iter())
                .any(|(x, y)| x.abs_diff(*y) > CHANNEL_TOLERANCE);
        if off {
            differing += 1;
            *d = image::Rgba([255, 0, 0, 255]);
        } else {
            let g = (u16::from(e.0[0]) + u16::from(e.0[1]) + u16::from(e.0[2])) / 6 + 128;
            *d = image::Rgba([g as u8, g as u8, g as u8, 255]);
        }
    }
    (differing as f64 / (actual.width() * actual.height()) as f64, diff)
}

#[test]
fn test_every_screen_matches_its_reference_at_every_size_in_both_languages() {
    slint::platform::set_platform(Box::new(TestingBackend::new(TestingBackendOptions {
        mock_time: true,
        threading: false,
        renderer_name: Some("software".into()),
    })))
    .expect("platform set once");

    let update = std::env::var_os("UPDATE_SCREENSHOTS").is_some_and(|v| v != "0");
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    let mut failures = Vec::new();
    let mut compared = 0;
    for (w, h) in SIZES {
        for lang in [Lang::Zh, Lang::En] {
            let lang_dir = match lang {
                Lang::Zh => "zh",
                Lang::En => "en",
            };
            let rel = PathBuf::from(format!("{w}x{h}")).join(lang_dir);
            for (name, view, pictures) in common::cases(lang) {
                // A fresh window per screen: nothing from an earlier view leaks into a reference.
                let window = KioskWindow::new().expect("window");
                let (tx, _rx) = std::sync::mpsc::channel();
                adapters::kiosk::connect(&window, tx);
                window.window().set_size(slint::PhysicalSize::new(w, h));
                window.show().expect("show");
                adapters::kiosk::apply(&window, &view, pictures);
                let actual = snapshot(&window);
                assert_eq!((actual.width(), actual.height()), (w, h), "{name}: snapshot size");
                let file = reference_dir().join(&rel).join(format!("{name}.png"));
                if update {
                    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
                    actual.save(&file).expect("write reference");
                    continue;
                }
                let Ok(expected) = image::open(&file) else {
                    failures.push(format!(
                        "{}: no reference (run with UPDATE_SCREENSHOTS=1)",
                        file.display()
                    ));
                    continue;
                };
                let expected = expected.to_rgba8();
                compared += 1;
                let differing = if expected.dimensions() == actual.dimensions() {
                    let (fraction, diff) = compare(&actual, &expected);
                    if fraction > MAX_DIFFERING {
                        let dir = out.join(&rel);
                        std::fs::create_dir_all(&dir).unwrap();
                        actual.save(dir.join(format!("{name}.actual.png"))).unwrap();
                        diff.save(dir.join(format!("{name}.diff.png"))).unwrap();
                    }
                    fraction
                } else {
                    1.0
                };
                if differing > MAX_DIFFERING {
                    failures.push(format!(
                        "{}: {:.3} % of pixels differ (limit {:.1} %), see {}",
                        rel.join(name).display(),
                        differing * 100.0,
                        MAX_DIFFERING * 100.0,
                        out.join(&rel).display()
                    ));
                }
                window.hide().unwrap();
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} screens differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    if !update {
        assert_eq!(compared, SIZES.len() * 2 * common::cases(Lang::Zh).len());
    }
}
