//! The payment gateway as the shell sees it: create an order for the chosen photo, poll its state,
//! close it. The session only emits effects for these; an implementation talks to the unit's backend.
//!
//! This file holds the trait and the "no gateway configured" implementation. The HTTP adapter to the
//! unit's backend is its own module (the upload pipeline's issue); tests use scripted fakes.

use crate::session::OrderStatus;
use crate::ticket::TicketId;

/// A created order: its id at the backend and the URL the payment QR encodes (WeChat Native pay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub qr_url: String,
}

/// Why the gateway could not be used. The message is for logs and the operator, not the student.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("payment gateway: {0}")]
pub struct GatewayError(pub String);

/// The unit's payment backend.
pub trait PaymentGateway {
    /// Creates an order of `amount_fen` (1/100 yuan) for one photo of `ticket`.
    fn create_order(
        &mut self,
        ticket: &TicketId,
        shot_no: u8,
        amount_fen: u32,
    ) -> Result<Order, GatewayError>;
    /// The order's current state.
    fn poll(&mut self, order_id: &str) -> Result<OrderStatus, GatewayError>;
    /// Closes the order; a payment arriving later is the backend's to refund.
    fn cancel(&mut self, order_id: &str) -> Result<(), GatewayError>;
}

/// For kiosks in payment mode "none" or "prepaid": any call is a configuration error, reported as such.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoGateway;

impl PaymentGateway for NoGateway {
    fn create_order(&mut self, _: &TicketId, _: u8, _: u32) -> Result<Order, GatewayError> {
        Err(GatewayError(
            "no payment gateway is configured on this kiosk".into(),
        ))
    }
    fn poll(&mut self, _: &str) -> Result<OrderStatus, GatewayError> {
        Err(GatewayError(
            "no payment gateway is configured on this kiosk".into(),
        ))
    }
    fn cancel(&mut self, _: &str) -> Result<(), GatewayError> {
        Ok(())
    }
}
