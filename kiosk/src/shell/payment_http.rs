//! The payment gateway adapter for the session's gateway mode: the unit's backend creates a WeChat Native
//! order for the chosen photo, the kiosk shows its QR URL and polls the order's state (the API is in
//! `docs/payment-api.md`).
//!
//! Every call is bounded by short timeouts because the shell runs it between two ticks of the main loop:
//! a backend that hangs costs the student a few seconds and an `OrderFailed`, never a frozen screen.
//! What it deliberately does not do: decide anything about the session (a payment confirmed after the
//! kiosk gave up is ignored by the session and refunded by the backend after `cancel`), or talk to
//! WeChat itself (the backend holds the merchant keys; the kiosk holds none).

use std::time::Duration;

use serde::Deserialize;

use super::payment::{GatewayError, Order, PaymentGateway};
use crate::session::OrderStatus;
use crate::ticket::TicketId;

/// Where the unit's backend is and how to reach it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Base URL, e.g. `https://pay.example-unit.cn/kiosk`. Plain `http://` is accepted only for a
    /// loopback host (a local test backend).
    pub url: String,
    /// Bearer token of this kiosk at the backend.
    pub token: String,
    /// Bound on each request, connect included (default 3 s).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_timeout_ms() -> u64 {
    3000
}

/// The HTTP adapter.
#[derive(Debug)]
pub struct HttpGateway {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

#[derive(Deserialize)]
struct OrderBody {
    order_id: String,
    qr_url: String,
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

fn loopback(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    if let Some(after) = rest.strip_prefix("[::1]") {
        return after.is_empty() || after.starts_with([':', '/']);
    }
    let host = rest.split(['/', ':']).next().unwrap_or_default();
    matches!(host, "127.0.0.1" | "localhost")
}

impl HttpGateway {
    pub fn new(config: &GatewayConfig) -> Result<HttpGateway, GatewayError> {
        let base = config.url.trim_end_matches('/').to_string();
        if !(base.starts_with("https://") || loopback(&base)) {
            return Err(GatewayError(format!(
                "payment backend {base:?} must be https (http only on loopback)"
            )));
        }
        let timeout = Duration::from_millis(config.timeout_ms.clamp(100, 30_000));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(timeout))
            .timeout_global(Some(timeout))
            .build()
            .new_agent();
        Ok(HttpGateway {
            agent,
            base,
            auth: format!("Bearer {}", config.token),
        })
    }

    fn order_url(&self, order_id: &str) -> Result<String, GatewayError> {
        // Order ids come from the backend; refuse anything that could change the path.
        if order_id.is_empty()
            || !order_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(GatewayError(format!("unusable order id {order_id:?}")));
        }
        Ok(format!("{}/v1/orders/{order_id}", self.base))
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> GatewayError {
    GatewayError(format!("{what}: {e}"))
}

fn read<T: serde::de::DeserializeOwned>(
    what: &str,
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ok: &[u16],
) -> Result<T, GatewayError> {
    let mut resp = resp.map_err(|e| failed(what, e))?;
    let status = resp.status().as_u16();
    if !ok.contains(&status) {
        return Err(GatewayError(format!("{what}: the backend answered {status}")));
    }
    resp.body_mut().read_json::<T>().map_err(|e| failed(what, e))
}

impl PaymentGateway for HttpGateway {
    fn create_order(
        &mut self,
        ticket: &TicketId,
        shot_no: u8,
        amount_fen: u32,
    ) -> Result<Order, GatewayError> {
        let body =
            serde_json::json!({ "ticket": ticket.to_string(), "shot_no": shot_no, "amount_fen": amount_fen });
        let resp = self
            .agent
            .post(format!("{}/v1/orders", self.base))
            .header("Authorization", &self.auth)
            .send_json(&body);
        let order: OrderBody = read("create order", resp, &[200, 201])?;
        // The QR the student scans must be the backend's WeChat URL, never something a page could run.
        if !(order.qr_url.starts_with("weixin://") || order.qr_url.starts_with("https://")) {
            return Err(GatewayError(format!(
                "create order: unexpected payment URL {:?}",
                order.qr_url
            )));
        }
        self.order_url(&order.order_id)?;
        Ok(Order {
            order_id: order.order_id,
            qr_url: order.qr_url,
        })
    }

    fn poll(&mut self, order_id: &str) -> Result<OrderStatus, GatewayError> {
        let url = self.order_url(order_id)?;
        let resp = self.agent.get(&url).header("Authorization", &self.auth).call();
        let body: StatusBody = read("poll order", resp, &[200])?;
        match body.status.as_str() {
            "pending" => Ok(OrderStatus::Pending),
            "paid" => Ok(OrderStatus::Paid),
            "declined" => Ok(OrderStatus::Declined),
            "closed" => Ok(OrderStatus::Closed),
            other => Err(GatewayError(format!("poll order: unknown status {other:?}"))),
        }
    }

    fn cancel(&mut self, order_id: &str) -> Result<(), GatewayError> {
        let url = format!("{}/cancel", self.order_url(order_id)?);
        let resp = self
            .agent
            .post(&url)
            .header("Authorization", &self.auth)
            .send_empty();
        let resp = resp.map_err(|e| failed("cancel order", e))?;
        match resp.status().as_u16() {
            // 409: already paid or closed; the backend refunds a payment for a cancelled order.
            200 | 204 | 409 => Ok(()),
            s => Err(GatewayError(format!("cancel order: the backend answered {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        let cfg = |url: &str| GatewayConfig {
            url: url.into(),
            token: "t".into(),
            timeout_ms: 500,
        };
        assert!(HttpGateway::new(&cfg("https://pay.example.cn")).is_ok());
        assert!(HttpGateway::new(&cfg("http://127.0.0.1:8080")).is_ok());
        assert!(HttpGateway::new(&cfg("http://localhost/x")).is_ok());
        assert!(HttpGateway::new(&cfg("http://pay.example.cn")).is_err());
        assert!(HttpGateway::new(&cfg("http://127.0.0.1.evil.cn")).is_err());
        assert!(HttpGateway::new(&cfg("http://[::1]:9000")).is_ok());
        assert!(HttpGateway::new(&cfg("http://[2001:db8::1]/")).is_err());
    }

    #[test]
    fn order_ids_cannot_change_the_path() {
        let g = HttpGateway::new(&GatewayConfig {
            url: "https://p.cn".into(),
            token: "t".into(),
            timeout_ms: 500,
        })
        .unwrap();
        assert!(g.order_url("A1-b_2").is_ok());
        for bad in ["", "../x", "a/b", "a?b", "a b"] {
            assert!(g.order_url(bad).is_err(), "{bad:?}");
        }
    }
}
