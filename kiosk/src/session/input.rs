//! What the shell feeds the session: intents from the screen, scanned codes, and the answers to effects.
//!
//! Plain data only. Nothing here is checked for plausibility beyond what the session does on arrival
//! (an answer that does not match the shot or order in flight is ignored there, not here).

use serde::Serialize;

use crate::ticket::{Rejection, Ticket};
use crate::vision::Verdict;

pub use ui::{EyeLine, Guidance, GuidanceLine, Intent};

/// One input to [`super::Session::handle`].
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// An intent from the screen, or from a physical button the shell maps to one (the seat buttons).
    Ui(Intent),
    /// A decoded QR payload (camera or serial scanner).
    Qr(Vec<u8>),
    /// Answer to [`super::Effect::VerifyTicket`]: the offline verification combined with the store.
    TicketVerified(Result<TicketStatus, Rejection>),
    /// Live guidance from the preview analysis.
    Guidance(Guidance),
    /// Answer to [`super::Effect::Capture`]: the still is in the shell's hands.
    Captured { shot_no: u8 },
    /// Answer to [`super::Effect::Capture`]: no still. The shot stays used.
    CaptureFailed { reason: String },
    /// Answer to [`super::Effect::RunChecks`].
    Checked {
        shot_no: u8,
        verdict: Verdict,
        liveness_failed: bool,
    },
    /// Answer to [`super::Effect::CreateOrder`].
    OrderCreated { order_id: String, qr_url: String },
    /// Answer to [`super::Effect::PollOrder`] (or a push from the backend).
    OrderStatus { order_id: String, status: OrderStatus },
    /// Answer to [`super::Effect::CreateOrder`] or [`super::Effect::PollOrder`]: the backend cannot be used.
    OrderFailed { reason: String },
    /// Answer to [`super::Effect::Enqueue`]: the job and the ticket's completion are committed.
    Enqueued { job_id: String },
    /// Answer to [`super::Effect::Enqueue`]: nothing was committed.
    EnqueueFailed { reason: String },
    /// A device the session needs stopped working. The shell sends it only for devices that matter
    /// (a missing serial QR scanner need not, when the camera reads codes).
    DeviceFault {
        device: Device,
        reason_zh: String,
        reason_en: String,
        hint_zh: String,
        hint_en: String,
    },
    /// A device that faulted works again.
    DeviceRecovered { device: Device },
    /// The physical service key was turned: service mode without the PIN (from idle screens only).
    ServiceKey,
    /// Answer to [`super::Effect::Service`]: what a service page shows now (a self-test's progress, the
    /// seat's limits, the recent tickets, ...). Ignored unless that page is open.
    ServiceUpdate(ui::ServicePage),
}

/// What the store knows about a verified ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketStatus {
    pub ticket: Ticket,
    /// Shots already used on this ticket, across every session.
    pub shots_used: u8,
    /// Extra shots a technician granted.
    pub shots_granted: u8,
    /// Liveness failures recorded on this ticket.
    pub liveness_failures: u8,
    /// Other check failures in a row (a pass or a cool-down resets it in the store).
    pub failures_in_a_row: u8,
    /// Passing shots stored earlier (草稿箱), oldest first.
    pub candidates: Vec<Candidate>,
}

/// A passing shot stored for a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub shot_no: u8,
    /// The spec it passed against, which is the spec it is filed under.
    pub spec: String,
}

/// State of a payment order at the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum OrderStatus {
    Pending,
    Paid,
    /// The payer cancelled or the payment was refused.
    Declined,
    /// The backend closed the order (expired on its side).
    Closed,
}

/// A device the session depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Device {
    Camera,
    Lights,
    Seat,
    QrScanner,
    /// The SQLite store: without it nothing consumed or filed can be recorded.
    Store,
    /// The on-device checks (ONNX runtime and models).
    Vision,
    /// Not a device: an operator took the kiosk out of service (operator API, `kioskctl`). It goes
    /// through the same fault path so the session ends cleanly and the screen says why; "recovered"
    /// is the operator putting it back.
    Operator,
}
