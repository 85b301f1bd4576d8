//! `kiosk run --window`: the touchscreen. Slint's event loop must own the main thread, so the kiosk's
//! main loop ([`run_with`]) runs on a worker thread and reaches the window through
//! [`ui::SlintFrontend`] (views and pictures in, touches out). Closing the window stops the loop; the
//! loop ending (`--for`, SIGTERM) closes the window.
//!
//! With `--stats` it also measures what the issue holds the window to: frames drawn and the longest gap
//! between two (Slint's rendering notifier where the renderer offers one), the time from process start
//! to the first frame drawn (cold start), and the process's peak RSS.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use ui::slint::{self, ComponentHandle};

use super::run::{RunOptions, run_with};

/// Opens the kiosk window and runs the kiosk behind it until the window closes or the loop ends.
/// `process_start` is when `main` began (cold start is measured from it).
pub fn run_windowed(opts: &RunOptions, process_start: std::time::Instant) -> anyhow::Result<()> {
    select_renderer();
    let window = ui::KioskWindow::new().context(
        "opening the kiosk window (is there a display? DISPLAY/WAYLAND_DISPLAY, or the linuxkms backend)",
    )?;
    let frontend = ui::SlintFrontend::new(&window);
    if let Some(stats) = opts.stats.clone() {
        let frame = move || {
            let now = crate::clock::monotonic();
            let mut st = stats.lock().unwrap_or_else(|p| p.into_inner());
            st.frame_drawn(process_start, now);
        };
        count_frames(&window, frame);
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

/// The kiosk's screen is flat 2D (text, rectangles, one camera picture): Slint's software renderer
/// draws it with partial repaints on the CPU, where OpenGL on a machine without a GPU goes through
/// Mesa's llvmpipe (measured under Xvfb: 17 s of CPU per 30 s of session against 1.5 s, and ~100 MB
/// more memory for LLVM and the GL buffers). `SLINT_BACKEND` still chooses, when set.
fn select_renderer() {
    if std::env::var_os("SLINT_BACKEND").is_some() {
        return;
    }
    if let Err(e) = slint::BackendSelector::new()
        .backend_name("winit".into())
        .renderer_name("software".into())
        .select()
    {
        // No display for winit (the device: linuxkms): Slint's own choice applies.
        tracing::warn!(error = %e, "winit with the software renderer is not available");
    }
}

/// Calls `frame` for every frame the window draws: Slint's rendering notifier where the renderer
/// has one (OpenGL), else every redraw winit asks Slint for (the software renderer, which has no
/// notifier; Slint draws on each of them).
fn count_frames(window: &ui::KioskWindow, frame: impl Fn() + Clone + 'static) {
    let notified = frame.clone();
    let notifier = window.window().set_rendering_notifier(move |state, _| {
        if matches!(state, slint::RenderingState::AfterRendering) {
            notified();
        }
    });
    if notifier.is_ok() {
        return;
    }
    use slint::winit_030::{EventResult, WinitWindowAccessor, winit::event::WindowEvent};
    window.window().on_winit_window_event(move |_, event| {
        if matches!(event, WindowEvent::RedrawRequested) {
            frame();
        }
        EventResult::Propagate
    });
}
