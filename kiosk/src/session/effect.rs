//! What the session asks the shell to do, in order, and how a session ended.
//!
//! The session never performs these itself (STYLE.md habit 3). The shell executes a batch of effects in
//! the order given and must not reorder them: `ConsumeShot` is persisted before `Capture` is attempted.
//! There is no "show" effect: the shell renders [`super::Session::view`] after every call.

use serde::Serialize;

use super::input::Device;
use crate::ticket::TicketId;

/// One thing for the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Set the light mode (idempotent).
    SetLights(LightMode),
    /// Run the camera preview and route frames by purpose (idempotent).
    StartPreview(PreviewPurpose),
    StopPreview,
    /// Drive the seat lift.
    Seat(SeatCommand),
    /// Verify the scanned payload offline and look the ticket up in the store; answer
    /// [`super::Input::TicketVerified`].
    VerifyTicket(Vec<u8>),
    /// Persist (durably, before executing the next effect) that shot `shot_no` of `ticket` is used. From
    /// this moment the shot is gone whatever happens next.
    ConsumeShot {
        ticket: TicketId,
        shot_no: u8,
    },
    /// Take the still; answer [`super::Input::Captured`] or [`super::Input::CaptureFailed`].
    Capture {
        shot_no: u8,
    },
    /// Run the checks of `spec` on the still; answer [`super::Input::Checked`]. The shell records the
    /// verdict itself; whether the shot becomes a candidate is decided by the session (below).
    RunChecks {
        shot_no: u8,
        spec: String,
    },
    /// Store the shot as a candidate (草稿箱) of the ticket and reset its failures-in-a-row count.
    StoreCandidate {
        ticket: TicketId,
        shot_no: u8,
        spec: String,
    },
    /// Count one liveness failure on the ticket.
    RecordLivenessFailure {
        ticket: TicketId,
        shot_no: u8,
    },
    /// Count one other check failure in a row on the ticket.
    RecordCheckFailure {
        ticket: TicketId,
        shot_no: u8,
    },
    /// Lock the ticket until a technician unlocks it.
    LockTicket {
        ticket: TicketId,
    },
    /// Store "cooling down until now + minutes" (wall clock, computed by the shell) and reset the
    /// failures-in-a-row count.
    StartCooldown {
        ticket: TicketId,
        minutes: u32,
    },
    /// Create a payment order; answer [`super::Input::OrderCreated`] or [`super::Input::OrderFailed`].
    CreateOrder {
        ticket: TicketId,
        shot_no: u8,
        amount_fen: u32,
    },
    /// Ask the backend for the order's state; answer [`super::Input::OrderStatus`].
    PollOrder {
        order_id: String,
    },
    /// Close the order at the backend (timeout, cancel, fault): a payment arriving later is the backend's
    /// to refund, because nothing will be filed for it.
    CancelOrder {
        order_id: String,
    },
    /// In ONE synchronous=FULL transaction: commit the upload job for this shot and mark the ticket
    /// completed; answer [`super::Input::Enqueued`] or [`super::Input::EnqueueFailed`].
    Enqueue {
        ticket: TicketId,
        shot_no: u8,
        spec: String,
        order_id: Option<String>,
    },
    /// The session is over; record it. Emitted exactly once per session.
    SessionEnded {
        ticket: Option<TicketId>,
        outcome: Outcome,
    },
    /// Something a technician asked for in service mode; the shell answers with
    /// [`super::Input::ServiceUpdate`] carrying the page's new content.
    Service(ServiceCommand),
    /// Append to the store's audit trail (actor "technician"): service mode entered or left, a wrong
    /// PIN, a PIN lockout. `detail` is a JSON object with no personal data.
    Audit {
        event: &'static str,
        detail: String,
    },
}

/// What service mode asks the shell to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServiceCommand {
    /// Fill this page with current data (device status, tickets, queue, counters).
    Load(ui::ServicePageKind),
    /// Run the self-test of every device.
    SelfTest,
    /// Seat jog: `Up`/`Down` while the button is held, `Stop` on release (the driver's maximum run
    /// time still applies).
    SeatJog(SeatCommand),
    /// Put the lights in a test mode (`off`, `idle`, `preview`, `preview-glasses`, `shoot`,
    /// `shoot-glasses`).
    Lights(String),
    /// Clear the liveness lock or the cool-down of a ticket (hex id).
    Unlock(String),
    /// Give a ticket one more shot.
    GrantShot(String),
    /// Ask the uploader to retry failed jobs now.
    RetryUploads,
    /// Measure the empty backdrop and the exposure, time the seat's travel.
    Calibrate,
    /// Service mode is being left: stop whatever it started (seat, lights test, running tests).
    Leave,
}

/// Light modes (PRODUCT.md section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum LightMode {
    Idle,
    Preview,
    PreviewGlasses,
    Shoot,
    ShootGlasses,
}

/// What the preview frames are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PreviewPurpose {
    /// Look for a ticket QR.
    QrScan,
    /// Live guidance (answer with [`super::Input::Guidance`]).
    Framing,
}

/// Seat lift command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SeatCommand {
    Up,
    Down,
    Stop,
}

/// How a session ended, for the record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The job was committed.
    Completed,
    Cancelled,
    TimedOut,
    /// The ticket was refused (its [`crate::ticket::Rejection::code`]).
    Rejected(&'static str),
    /// "信息有误".
    WrongInfo,
    /// Prepaid mode, ticket not paid.
    Unpaid,
    /// None of the ticket's photo types is offered here.
    NoPhotoType,
    OutOfShots,
    Locked,
    CoolingDown,
    PaymentDeclined,
    PaymentFailed,
    PaymentTimedOut,
    /// The store did not commit the job.
    EnqueueFailed,
    Fault(Device),
}
