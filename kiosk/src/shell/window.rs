//! `kiosk run --window`: the touchscreen. Slint's event loop must own the main thread, so the kiosk's
//! main loop ([`run_with`]) runs on a worker thread and reaches the window through
//! [`ui::SlintFrontend`] (views and pictures in, touches out). Closing the window stops the loop; the
//! loop ending (`--for`, SIGTERM) closes the window.
//!
//! With `--stats` it also measures what the issue holds the window to: frames drawn and the longest gap
//! between two (Slint's rendering notifier where the renderer offers one), the time from process start
//! to the first frame drawn (cold start), and the process's peak RSS.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use ui::slint::{self, ComponentHandle};

use super::run::{RunOptions, run_with};

/// Opens the kiosk window and runs the kiosk behind it until the window closes or the loop ends.
/// `process_start` is when `main` began (cold start is measured from it).
pub fn run_windowed(opts: &RunOptions, process_start: std::time::Instant) -> anyhow::Result<()> {
    let window = ui::KioskWindow::new().context(
        "opening the kiosk window (is there a display? DISPLAY/WAYLAND_DISPLAY, or the linuxkms backend)",
    )?;
    let frontend = ui::SlintFrontend::new(&window);
    if let Some(stats) = opts.stats.clone() {
        let last = Cell::new(None::<std::time::Instant>);
        let notifier = window.window().set_rendering_notifier(move |state, _| {
            if !matches!(state, slint::RenderingState::AfterRendering) {
                return;
            }
            let now = crate::clock::monotonic();
            let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
            if st.frames_drawn == 0 {
                st.first_frame_ms = Some((now - process_start).as_secs_f64() * 1000.0);
            }
            st.frames_drawn += 1;
            if let Some(prev) = last.get() {
                st.frame_gap_ms_max = st.frame_gap_ms_max.max((now - prev).as_secs_f64() * 1000.0);
            }
            last.set(Some(now));
        });
        if let Err(e) = notifier {
            // The software renderer on some backends draws without telling: the loop's own figures
            // (presents, tick times) still come out.
            tracing::warn!(error = ?e, "this renderer reports no frames; --stats shows the loop only");
        }
    }
    let stop = opts
        .stop
        .clone()
        .unwrap_or_else(|| Arc::new(AtomicBool::new(false)));
    let mut worker_opts = opts.clone();
    worker_opts.stop = Some(stop.clone());
    let worker = std::thread::Builder::new()
        .name("kiosk-main-loop".into())
        .spawn(move || {
            let result = run_with(&worker_opts, Some(Box::new(frontend)));
            // The loop ended by itself (--for, SIGTERM, an error): close the window too.
            let _ = slint::quit_event_loop();
            result
        })
        .context("starting the main loop thread")?;
    window.show().context("showing the kiosk window")?;
    let ui_result = slint::run_event_loop_until_quit().context("the window's event loop");
    // The window was closed (or the loop already ended): stop the loop between two ticks.
    stop.store(true, Ordering::Relaxed);
    let _ = window.hide();
    let loop_result = worker
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    loop_result.and(ui_result)
}
