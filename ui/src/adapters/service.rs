//! Service mode in the `Kiosk` global: a [`ServicePage`] in, technician touches out as
//! [`Intent::Service`]. Decides nothing (the PIN is checked by the session, not here).

use std::sync::mpsc::Sender;

use slint::{ComponentHandle, SharedString};

use super::kiosk::model_of;
use crate::generated::{CounterRow, Kiosk, KioskWindow, Level, ServiceKind, TestRow, TicketRow};
use crate::{Intent, Lang, SeatMotion, ServiceIntent, ServicePage, ServicePageKind};

/// Wires the service callbacks of the `Kiosk` global to `intents`.
pub fn connect(window: &KioskWindow, intents: Sender<Intent>) {
    let k = window.global::<Kiosk>();
    let send = move |tx: &Sender<Intent>, intent: ServiceIntent| {
        let _ = tx.send(Intent::Service(intent));
    };
    macro_rules! on {
        ($setter:ident, $intent:expr) => {{
            let tx = intents.clone();
            k.$setter(move || send(&tx, $intent));
        }};
    }
    on!(on_pin_backspace, ServiceIntent::PinBackspace);
    on!(on_service_back, ServiceIntent::Back);
    on!(on_service_exit, ServiceIntent::Exit);
    on!(on_run_self_test, ServiceIntent::RunSelfTest);
    on!(on_jog_up, ServiceIntent::SeatJogUp);
    on!(on_jog_down, ServiceIntent::SeatJogDown);
    on!(on_jog_stop, ServiceIntent::SeatJogStop);
    on!(on_retry_uploads, ServiceIntent::RetryUploads);
    on!(on_run_calibration, ServiceIntent::RunCalibration);
    on!(
        on_service_calibrate,
        ServiceIntent::Open(ServicePageKind::Calibrate)
    );
    let tx = intents.clone();
    k.on_pin_digit(move |d| {
        if let Ok(d @ 0..=9) = u8::try_from(d) {
            send(&tx, ServiceIntent::PinDigit(d));
        }
    });
    let tx = intents.clone();
    k.on_service_open(move |page| send(&tx, ServiceIntent::Open(page_kind(page))));
    let tx = intents.clone();
    k.on_lights_mode_set(move |mode| send(&tx, ServiceIntent::LightsMode(mode.to_string())));
    let tx = intents.clone();
    k.on_unlock(move |ticket| {
        send(
            &tx,
            ServiceIntent::Unlock {
                ticket: ticket.to_string(),
            },
        )
    });
    let tx = intents;
    k.on_grant(move |ticket| {
        send(
            &tx,
            ServiceIntent::GrantShot {
                ticket: ticket.to_string(),
            },
        )
    });
}

/// Shows one service page.
pub fn apply(k: &Kiosk<'_>, page: &ServicePage, lang: Lang) {
    let kind = match page {
        ServicePage::Pin {
            entered,
            wrong,
            locked_for,
        } => {
            k.set_pin_entered(i32::from(*entered));
            k.set_pin_wrong(*wrong);
            k.set_pin_locked_for(locked_for.map_or(-1, |s| i32::try_from(s).unwrap_or(i32::MAX)));
            ServiceKind::Pin
        }
        ServicePage::Menu => ServiceKind::Menu,
        ServicePage::SelfTest { running, checks } | ServicePage::Calibrate { running, checks } => {
            k.set_test_running(*running);
            k.set_tests(model_of(
                checks
                    .iter()
                    .map(|c| TestRow {
                        name: c.name.as_str().into(),
                        state: match c.ok {
                            None => 0,
                            Some(true) => 1,
                            Some(false) => 2,
                        },
                        detail: c.detail.as_str().into(),
                    })
                    .collect(),
            ));
            if matches!(page, ServicePage::Calibrate { .. }) {
                ServiceKind::Calibrate
            } else {
                ServiceKind::SelfTest
            }
        }
        ServicePage::Seat {
            motion,
            at_top,
            at_bottom,
            position_permille,
            fault,
        } => {
            k.set_seat_motion(match motion {
                SeatMotion::Still => 0,
                SeatMotion::Up => 1,
                SeatMotion::Down => 2,
            });
            k.set_seat_at_top(*at_top);
            k.set_seat_at_bottom(*at_bottom);
            k.set_seat_position(position_permille.map_or(-1, |p| i32::from(p.min(1000))));
            k.set_seat_fault(fault.as_deref().unwrap_or("").into());
            ServiceKind::Seat
        }
        ServicePage::Lights { mode, levels } => {
            k.set_lights_mode(mode.as_str().into());
            k.set_levels(model_of(
                levels
                    .iter()
                    .map(|(name, pct)| Level {
                        name: name.as_str().into(),
                        percent: i32::from((*pct).min(100)),
                    })
                    .collect(),
            ));
            ServiceKind::Lights
        }
        ServicePage::Tickets { tickets, message } => {
            k.set_tickets(model_of(
                tickets
                    .iter()
                    .map(|t| TicketRow {
                        ticket: t.ticket.as_str().into(),
                        name: t.masked_name.as_str().into(),
                        used: i32::from(t.shots_used),
                        total: i32::from(t.shots_total),
                        status: t.status.as_str().into(),
                    })
                    .collect(),
            ));
            k.set_ticket_message(
                message
                    .as_ref()
                    .map_or_else(SharedString::default, |m| lang.pick(&m.zh, &m.en).into()),
            );
            ServiceKind::Tickets
        }
        ServicePage::Uploads {
            queued,
            failed,
            acked_today,
            oldest_age_s,
            last_error,
        } => {
            k.set_uploads_queued(clamp(*queued));
            k.set_uploads_failed(clamp(*failed));
            k.set_uploads_acked(clamp(*acked_today));
            k.set_uploads_oldest(oldest_age_s.map_or_else(SharedString::default, |s| age(s).into()));
            k.set_uploads_error(last_error.as_deref().unwrap_or("").into());
            ServiceKind::Uploads
        }
        ServicePage::Counters { rows } => {
            k.set_counters(model_of(
                rows.iter()
                    .map(|(name, total, today)| CounterRow {
                        name: name.as_str().into(),
                        total: total.to_string().into(),
                        today: today.to_string().into(),
                    })
                    .collect(),
            ));
            ServiceKind::Counters
        }
    };
    k.set_service_page(kind);
}

/// "3 h 05 min", "4 min 10 s", "12 s": the age of the oldest queued upload.
pub fn age(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{} min {:02} s", s / 60, s % 60),
        s => format!("{s} s"),
    }
}

fn clamp(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn page_kind(k: ServiceKind) -> ServicePageKind {
    match k {
        ServiceKind::Pin | ServiceKind::Menu => ServicePageKind::Menu,
        ServiceKind::SelfTest => ServicePageKind::SelfTest,
        ServiceKind::Seat => ServicePageKind::Seat,
        ServiceKind::Lights => ServicePageKind::Lights,
        ServiceKind::Tickets => ServicePageKind::Tickets,
        ServiceKind::Uploads => ServicePageKind::Uploads,
        ServiceKind::Counters => ServicePageKind::Counters,
        ServiceKind::Calibrate => ServicePageKind::Calibrate,
    }
}

#[cfg(test)]
mod tests {
    use super::age;

    #[test]
    fn test_age_reads_in_the_largest_unit() {
        assert_eq!(age(12), "12 s");
        assert_eq!(age(250), "4 min 10 s");
        assert_eq!(age(3 * 3600 + 5 * 60 + 9), "3 h 05 min");
    }
}
