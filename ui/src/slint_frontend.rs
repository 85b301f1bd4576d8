//! [`SlintFrontend`]: the Slint window as a [`Frontend`] the kiosk's main loop can own on another
//! thread. `present` hands the view to the UI thread (`upgrade_in_event_loop`); touches come back
//! through a channel. It neither renders nor decides anything itself (the adapters render, the
//! session decides).

use std::sync::mpsc::{Receiver, channel};

use crate::generated::KioskWindow;
use crate::{Frontend, Intent, Picture, View, adapters};

pub struct SlintFrontend {
    window: slint::Weak<KioskWindow>,
    intents: Receiver<Intent>,
}

impl std::fmt::Debug for SlintFrontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlintFrontend").finish_non_exhaustive()
    }
}

impl SlintFrontend {
    /// Connects `window`'s callbacks. Call on the UI thread, before the event loop runs; the returned
    /// frontend may move to any thread.
    pub fn new(window: &KioskWindow) -> SlintFrontend {
        let (tx, rx) = channel();
        adapters::kiosk::connect(window, tx);
        SlintFrontend {
            window: slint::ComponentHandle::as_weak(window),
            intents: rx,
        }
    }
}

impl Frontend for SlintFrontend {
    fn present(&mut self, view: &View, pictures: Vec<Picture>) {
        let view = view.clone();
        // Fails only when the event loop has quit (the window is closing); nothing left to show.
        let _ = self
            .window
            .upgrade_in_event_loop(move |w| adapters::kiosk::apply(&w, &view, pictures));
    }

    fn intents(&mut self) -> Vec<Intent> {
        self.intents.try_iter().collect()
    }
}
