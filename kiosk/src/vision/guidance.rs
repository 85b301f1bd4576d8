//! Hysteresis for live guidance: a small stateful filter between the per-frame preview analysis and
//! the framing screen, so advice does not flicker.
//!
//! A message is shown once it has been in `appear_after` consecutive frames and withdrawn once it has
//! been missing from `clear_after` consecutive frames; the eye line is smoothed (exponential moving
//! average, snapping on a large jump so a student who moves is followed at once) and held through
//! `clear_after` frames without a face. The filter is pure: it sees only the [`Guidance`] of each frame,
//! in order; it reads no clock and no image. Which messages exist and when a frame raises them is
//! [`super::analyze`]'s business.

use ui::{EyeLine, Guidance, GuidanceLine};

/// How sticky the filter is, in frames (the shell analyses five preview frames a second).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HysteresisConfig {
    /// A message appears after this many consecutive frames raise it (1 = at once).
    pub appear_after: u32,
    /// A shown message disappears after this many consecutive frames without it (1 = at once).
    pub clear_after: u32,
    /// Weight of the newest eye line in the moving average (1.0 = no smoothing).
    pub eye_alpha: f64,
    /// A jump of the eye line larger than this (thousandths of the frame height) is followed at once:
    /// the student moved, and lagging behind them would be wrong advice.
    pub eye_snap_permille: u16,
}

impl Default for HysteresisConfig {
    /// At five frames a second: advice appears after 0.4 s of agreement and stays at least 0.6 s.
    fn default() -> Self {
        HysteresisConfig {
            appear_after: 2,
            clear_after: 3,
            eye_alpha: 0.5,
            eye_snap_permille: 120,
        }
    }
}

/// One message the filter is watching.
#[derive(Clone, Debug)]
struct Tracked {
    line: GuidanceLine,
    /// Consecutive frames with the message (0 when the last frame lacked it).
    seen: u32,
    /// Consecutive frames without it (0 when the last frame had it).
    missed: u32,
    shown: bool,
    /// Its place in the last frame that raised it (messages come most important first).
    rank: usize,
}

/// A boolean with the same hysteresis as the messages.
#[derive(Clone, Copy, Debug, Default)]
struct Flag {
    seen: u32,
    missed: u32,
    shown: bool,
}

impl Flag {
    fn update(&mut self, raised: bool, cfg: &HysteresisConfig) -> bool {
        if raised {
            self.seen = self.seen.saturating_add(1);
            self.missed = 0;
            if self.seen >= cfg.appear_after.max(1) {
                self.shown = true;
            }
        } else {
            self.missed = self.missed.saturating_add(1);
            self.seen = 0;
            if self.missed >= cfg.clear_after.max(1) {
                self.shown = false;
            }
        }
        self.shown
    }
}

/// Smoothed eye line, in thousandths as [`EyeLine`] but kept fractional between frames.
#[derive(Clone, Copy, Debug)]
struct Eye {
    y: f64,
    top: f64,
    bottom: f64,
    /// Consecutive frames without a face.
    missed: u32,
}

impl Eye {
    fn from(e: EyeLine) -> Eye {
        Eye {
            y: e.y_permille.into(),
            top: e.band_top_permille.into(),
            bottom: e.band_bottom_permille.into(),
            missed: 0,
        }
    }

    fn line(&self) -> EyeLine {
        let p = |v: f64| v.round().clamp(0.0, 1000.0) as u16;
        EyeLine {
            y_permille: p(self.y),
            band_top_permille: p(self.top),
            band_bottom_permille: p(self.bottom),
        }
    }
}

/// The filter. Create one per framing episode (or [`GuidanceFilter::reset`] it) and feed it every
/// analysed frame in order.
#[derive(Clone, Debug)]
pub struct GuidanceFilter {
    config: HysteresisConfig,
    /// No frame seen since the last reset: the first frame is shown as it is (there is nothing to
    /// flicker from, and a blank "looks good" while the filter warms up would be wrong advice).
    fresh: bool,
    tracked: Vec<Tracked>,
    eye: Option<Eye>,
    blink: Flag,
}

impl Default for GuidanceFilter {
    fn default() -> Self {
        GuidanceFilter::new(HysteresisConfig::default())
    }
}

impl GuidanceFilter {
    pub fn new(config: HysteresisConfig) -> GuidanceFilter {
        GuidanceFilter {
            config,
            fresh: true,
            tracked: Vec::new(),
            eye: None,
            blink: Flag::default(),
        }
    }

    pub fn config(&self) -> HysteresisConfig {
        self.config
    }

    /// Forgets everything seen (a new student, or the preview was stopped).
    pub fn reset(&mut self) {
        *self = GuidanceFilter::new(self.config);
    }

    /// Takes one frame's raw guidance and returns what the screen should show now.
    pub fn update(&mut self, raw: &Guidance) -> Guidance {
        let cfg = self.config;
        let fresh = std::mem::replace(&mut self.fresh, false);
        for (rank, line) in raw.lines.iter().enumerate() {
            match self.tracked.iter_mut().find(|t| t.line == *line) {
                Some(t) => {
                    t.seen = if t.missed == 0 {
                        t.seen.saturating_add(1)
                    } else {
                        1
                    };
                    t.missed = 0;
                    t.rank = rank;
                }
                None => self.tracked.push(Tracked {
                    line: line.clone(),
                    seen: 1,
                    missed: 0,
                    shown: false,
                    rank,
                }),
            }
        }
        for t in &mut self.tracked {
            let raised = raw.lines.contains(&t.line);
            if raised {
                if fresh || t.seen >= cfg.appear_after.max(1) {
                    t.shown = true;
                }
            } else {
                t.missed = t.missed.saturating_add(1);
                t.seen = 0;
                if t.missed >= cfg.clear_after.max(1) {
                    t.shown = false;
                }
            }
        }
        // Forget what is neither shown nor building up.
        self.tracked.retain(|t| t.shown || t.missed == 0);

        let mut shown: Vec<&Tracked> = self.tracked.iter().filter(|t| t.shown).collect();
        // Most important first, as the analysis ranked them when it last raised them; ties keep the
        // order in which they were first seen.
        shown.sort_by_key(|t| t.rank);
        let lines = shown.into_iter().map(|t| t.line.clone()).collect();

        let blink_prompt = if fresh {
            self.blink.shown = raw.blink_prompt;
            self.blink.seen = u32::from(raw.blink_prompt);
            raw.blink_prompt
        } else {
            self.blink.update(raw.blink_prompt, &cfg)
        };

        let eye_line = self.smooth_eye(raw.eye_line);
        Guidance {
            lines,
            eye_line,
            blink_prompt,
        }
    }

    fn smooth_eye(&mut self, raw: Option<EyeLine>) -> Option<EyeLine> {
        let cfg = self.config;
        match (raw, self.eye.as_mut()) {
            (Some(new), None) => {
                self.eye = Some(Eye::from(new));
            }
            (Some(new), Some(eye)) => {
                let n = Eye::from(new);
                let jump = (n.y - eye.y).abs() > f64::from(cfg.eye_snap_permille);
                // A long gap means the old position is stale, not a place to drift from.
                if jump || eye.missed > 0 {
                    *eye = n;
                } else {
                    let a = cfg.eye_alpha.clamp(0.0, 1.0);
                    let mix = |old: f64, new: f64| old + a * (new - old);
                    eye.y = mix(eye.y, n.y);
                    eye.top = mix(eye.top, n.top);
                    eye.bottom = mix(eye.bottom, n.bottom);
                    eye.missed = 0;
                }
            }
            (None, Some(eye)) => {
                eye.missed = eye.missed.saturating_add(1);
                if eye.missed >= cfg.clear_after.max(1) {
                    self.eye = None;
                }
            }
            (None, None) => {}
        }
        self.eye.map(|e| e.line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(en: &str) -> GuidanceLine {
        GuidanceLine {
            zh: format!("zh:{en}"),
            en: en.into(),
        }
    }

    fn frame(lines: &[&str], eye: Option<u16>) -> Guidance {
        Guidance {
            lines: lines.iter().map(|l| line(l)).collect(),
            eye_line: eye.map(|y| EyeLine {
                y_permille: y,
                band_top_permille: 400,
                band_bottom_permille: 480,
            }),
            blink_prompt: false,
        }
    }

    fn shown(g: &Guidance) -> Vec<String> {
        g.lines.iter().map(|l| l.en.clone()).collect()
    }

    fn cfg(appear_after: u32, clear_after: u32) -> HysteresisConfig {
        HysteresisConfig {
            appear_after,
            clear_after,
            eye_alpha: 0.5,
            eye_snap_permille: 120,
        }
    }

    /// A scripted sequence: advice that flickers frame to frame is held steady; advice that really
    /// appears or goes away follows after N and M frames.
    #[test]
    fn messages_appear_after_n_frames_and_clear_after_m_frames() {
        let mut f = GuidanceFilter::new(cfg(3, 2));
        // (raw messages of the frame, what the screen must show after it)
        let script: &[(&[&str], &[&str])] = &[
            (&[], &[]),                 // fresh: shown as is
            (&["raise"], &[]),          // 1 of 3
            (&["raise"], &[]),          // 2 of 3
            (&[], &[]),                 // the run is broken
            (&["raise"], &[]),          // 1 of 3 again
            (&["raise"], &[]),          // 2
            (&["raise"], &["raise"]),   // 3: appears
            (&[], &["raise"]),          // missing 1 of 2: held
            (&["raise"], &["raise"]),   // back: held, the miss count restarts
            (&[], &["raise"]),          // missing 1
            (&[], &[]),                 // missing 2: cleared
            (&["level", "raise"], &[]), // two new runs start
            (&["level", "raise"], &[]),
            (&["level", "raise"], &["level", "raise"]),
            (&["raise", "level"], &["raise", "level"]), // the analysis re-ranked them
            (&["raise"], &["raise", "level"]),          // level missing 1: still shown, ranked after
            (&["raise"], &["raise"]),                   // missing 2: gone
        ];
        for (i, (raw, want)) in script.iter().enumerate() {
            let got = shown(&f.update(&frame(raw, Some(440))));
            assert_eq!(got, *want, "frame {i}: raw {raw:?}");
        }
    }

    #[test]
    fn a_flickering_message_never_shows_and_a_flickering_absence_never_hides() {
        let mut f = GuidanceFilter::new(cfg(2, 2));
        f.update(&frame(&[], Some(440)));
        for i in 0..20 {
            let raw: &[&str] = if i % 2 == 0 { &["close"] } else { &[] };
            assert!(shown(&f.update(&frame(raw, Some(440)))).is_empty(), "frame {i}");
        }
        let mut f = GuidanceFilter::new(cfg(2, 2));
        f.update(&frame(&["close"], Some(440)));
        for i in 0..20 {
            let raw: &[&str] = if i % 2 == 0 { &[] } else { &["close"] };
            assert_eq!(shown(&f.update(&frame(raw, Some(440)))), ["close"], "frame {i}");
        }
    }

    #[test]
    fn the_first_frame_is_shown_as_it_is_and_reset_forgets() {
        let mut f = GuidanceFilter::new(cfg(3, 3));
        assert_eq!(shown(&f.update(&frame(&["sit"], None))), ["sit"]);
        assert_eq!(shown(&f.update(&frame(&[], None))), ["sit"]);
        f.reset();
        assert!(shown(&f.update(&frame(&[], Some(440)))).is_empty());
        assert_eq!(f.config(), cfg(3, 3));
    }

    #[test]
    fn the_eye_line_is_smoothed_snaps_on_a_jump_and_is_held_through_short_gaps() {
        let mut f = GuidanceFilter::new(cfg(2, 2));
        let y = |g: Guidance| g.eye_line.map(|e| e.y_permille);
        assert_eq!(y(f.update(&frame(&[], Some(400)))), Some(400));
        // Jitter of +-20 is halved each frame.
        assert_eq!(y(f.update(&frame(&[], Some(420)))), Some(410));
        assert_eq!(y(f.update(&frame(&[], Some(400)))), Some(405));
        assert_eq!(y(f.update(&frame(&[], Some(420)))), Some(413));
        // The student stands up: followed at once.
        assert_eq!(y(f.update(&frame(&[], Some(700)))), Some(700));
        // One frame without a face: the line stays; a second clears it (clear_after = 2).
        assert_eq!(y(f.update(&frame(&[], None))), Some(700));
        assert_eq!(
            y(f.update(&frame(&[], Some(690)))),
            Some(690),
            "after a gap: no drift"
        );
        assert_eq!(y(f.update(&frame(&[], None))), Some(690));
        assert_eq!(y(f.update(&frame(&[], None))), None);
        // The band is smoothed the same way.
        let mut g = frame(&[], Some(690));
        g.eye_line.as_mut().unwrap().band_top_permille = 420;
        let e = f.update(&g).eye_line.unwrap();
        assert_eq!((e.band_top_permille, e.band_bottom_permille), (420, 480));
        let e = f.update(&frame(&[], Some(690))).eye_line.unwrap();
        assert_eq!(e.band_top_permille, 410);
    }

    #[test]
    fn the_blink_prompt_has_the_same_hysteresis() {
        let mut f = GuidanceFilter::new(cfg(2, 2));
        let blink = |on: bool| Guidance {
            blink_prompt: on,
            ..frame(&[], Some(440))
        };
        assert!(!f.update(&blink(false)).blink_prompt);
        assert!(!f.update(&blink(true)).blink_prompt);
        assert!(f.update(&blink(true)).blink_prompt);
        assert!(f.update(&blink(false)).blink_prompt);
        assert!(!f.update(&blink(false)).blink_prompt);
    }

    #[test]
    fn n_and_m_of_one_pass_every_frame_through() {
        let mut f = GuidanceFilter::new(HysteresisConfig {
            eye_alpha: 1.0,
            ..cfg(1, 1)
        });
        for raw in [
            frame(&["a"], Some(100)),
            frame(&[], None),
            frame(&["b", "a"], Some(300)),
            frame(&["a"], Some(310)),
        ] {
            assert_eq!(f.update(&raw), raw);
        }
    }
}
