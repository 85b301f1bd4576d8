//! The `Kiosk` global: a [`View`] and its [`Picture`]s in, touches out as [`Intent`]s.
//!
//! `apply` only copies and formats what the view says (texts in the view's language, numbers as the
//! screen shows them); it never infers a transition. Shot pictures are kept in the global between views
//! (they arrive once, when the shot is checked) until [`Picture::ClearShots`].

use std::rc::Rc;
use std::sync::mpsc::Sender;

use slint::{ComponentHandle, Model, ModelRc, SharedString, VecModel};

use crate::generated::{Candidate, CheckItem, Choice, EndKind, Kiosk, KioskWindow, ScreenKind, ShotPicture};
use crate::pictures;
use crate::{EndReason, Intent, Lang, Picture, Screen, SeatMotion, View};

/// Wires every callback of the `Kiosk` global to `intents`. A closed channel (the main loop is gone)
/// drops the touch.
pub fn connect(window: &KioskWindow, intents: Sender<Intent>) {
    let k = window.global::<Kiosk>();
    let send = move |tx: &Sender<Intent>, intent: Intent| {
        let _ = tx.send(intent);
    };
    macro_rules! on {
        ($setter:ident, $intent:expr) => {{
            let tx = intents.clone();
            k.$setter(move || send(&tx, $intent));
        }};
    }
    on!(on_start, Intent::Start);
    on!(on_cancel, Intent::Cancel);
    on!(on_confirm, Intent::Confirm);
    on!(on_wrong_info, Intent::WrongInfo);
    on!(on_next, Intent::Next);
    on!(on_accept_rules, Intent::AcceptRules);
    on!(on_seat_up, Intent::SeatUp);
    on!(on_seat_down, Intent::SeatDown);
    on!(on_seat_stop, Intent::SeatStop);
    on!(on_shoot, Intent::Shoot);
    on!(on_retake, Intent::Retake);
    on!(on_use_this, Intent::UseThis);
    on!(on_open_drafts, Intent::OpenDrafts);
    on!(on_continue, Intent::Continue);
    on!(on_toggle_language, Intent::ToggleLanguage);
    on!(on_service_request, Intent::ServiceRequest);
    let tx = intents.clone();
    k.on_select_photo_type(move |id| send(&tx, Intent::SelectPhotoType(id.to_string())));
    let tx = intents.clone();
    k.on_lighting(move |glasses| send(&tx, Intent::Lighting { glasses }));
    let tx = intents.clone();
    k.on_choose(move |shot| {
        if let Ok(shot) = u8::try_from(shot) {
            send(&tx, Intent::Choose(shot));
        }
    });
    super::service::connect(window, intents);
    // Chinese until a view says otherwise, whatever the system locale.
    let _ = slint::select_bundled_translation("");
    k.set_language_selected(true);
}

/// Shows `view` and takes in `pictures`.
pub fn apply(window: &KioskWindow, view: &View, pictures: Vec<Picture>) {
    let k = window.global::<Kiosk>();
    take_pictures(&k, pictures);
    let lang = view.lang;
    let english = lang == Lang::En;
    if english != k.get_english() || !k.get_language_selected() {
        // Errors only when nothing is bundled, which build.rs rules out.
        let _ = slint::select_bundled_translation(if english { "en" } else { "" });
        k.set_language_selected(true);
    }
    k.set_english(english);
    let (used, total) = view.shots.unwrap_or((0, 0));
    k.set_shots_used(i32::from(used));
    k.set_shots_total(i32::from(total));
    k.set_seconds_left(view.seconds_left.map_or(-1, clamp_i32));
    k.set_can_cancel(view.can_cancel);
    let pick = |zh: &str, en: &str| SharedString::from(lang.pick(zh, en));

    let kind = match &view.screen {
        Screen::Attract => ScreenKind::Attract,
        Screen::Scan => ScreenKind::Scan,
        Screen::Verifying => ScreenKind::Verifying,
        Screen::Rejected {
            code,
            message_zh,
            message_en,
        } => {
            k.set_code(code.into());
            k.set_message(pick(message_zh, message_en));
            ScreenKind::Rejected
        }
        Screen::Confirm {
            masked_name,
            school,
            id_last4,
        } => {
            k.set_masked_name(masked_name.into());
            k.set_school(school.into());
            k.set_id_last4(id_last4.into());
            ScreenKind::Confirm
        }
        Screen::PhotoType { options, selected } => {
            let choices: Vec<Choice> = options
                .iter()
                .map(|o| Choice {
                    id: o.id.as_str().into(),
                    label: pick(&o.name_zh, &o.name_en),
                    selected: &o.id == selected,
                })
                .collect();
            k.set_photo_types(model_of(choices));
            ScreenKind::PhotoType
        }
        Screen::Lighting { glasses } => {
            k.set_glasses(glasses.map_or(-1, i32::from));
            ScreenKind::Lighting
        }
        Screen::Rules => ScreenKind::Rules,
        Screen::Framing {
            shot_no,
            guidance,
            seat,
            drafts,
        } => {
            k.set_shot_no(i32::from(*shot_no));
            let lines: Vec<SharedString> = guidance.lines.iter().map(|l| pick(&l.zh, &l.en)).collect();
            k.set_guidance(model_of(lines));
            k.set_face_seen(guidance.eye_line.is_some());
            if let Some(eye) = guidance.eye_line {
                k.set_eye_y(permille(eye.y_permille));
                k.set_band_top(permille(eye.band_top_permille));
                k.set_band_bottom(permille(eye.band_bottom_permille));
            }
            k.set_blink_prompt(guidance.blink_prompt);
            k.set_seat_motion(seat_motion(*seat));
            k.set_drafts(i32::from(*drafts));
            ScreenKind::Framing
        }
        Screen::Countdown { shot_no } => {
            k.set_shot_no(i32::from(*shot_no));
            ScreenKind::Countdown
        }
        Screen::Capturing { shot_no } => {
            k.set_shot_no(i32::from(*shot_no));
            ScreenKind::Capturing
        }
        Screen::CaptureFailed {
            shot_no,
            shots_left,
            drafts,
        } => {
            k.set_shot_no(i32::from(*shot_no));
            k.set_shots_left(i32::from(*shots_left));
            k.set_drafts(i32::from(*drafts));
            ScreenKind::CaptureFailed
        }
        Screen::Checking { shot_no } => {
            k.set_shot_no(i32::from(*shot_no));
            ScreenKind::Checking
        }
        Screen::Result {
            shot_no,
            passed,
            liveness_failed,
            items,
            shots_left,
            retake_enabled,
            retake_in,
            drafts,
        } => {
            k.set_shot_no(i32::from(*shot_no));
            k.set_passed(*passed);
            k.set_liveness_failed(*liveness_failed);
            let checks: Vec<CheckItem> = items
                .iter()
                .map(|c| CheckItem {
                    blocking: c.blocking,
                    message: pick(&c.message_zh, &c.message_en),
                    guidance: pick(&c.guidance_zh, &c.guidance_en),
                })
                .collect();
            k.set_checks(model_of(checks));
            k.set_shots_left(i32::from(*shots_left));
            k.set_retake_enabled(*retake_enabled);
            k.set_retake_in(retake_in.map_or(-1, clamp_i32));
            k.set_drafts(i32::from(*drafts));
            match shot_picture(&k, *shot_no) {
                Some(image) => {
                    k.set_shot_photo(image);
                    k.set_has_shot_photo(true);
                }
                None => k.set_has_shot_photo(false),
            }
            ScreenKind::Result
        }
        Screen::Locked { has_drafts } => {
            k.set_has_drafts(*has_drafts);
            ScreenKind::Locked
        }
        Screen::CoolingDown { minutes, has_drafts } => {
            k.set_minutes(clamp_i32(*minutes));
            k.set_has_drafts(*has_drafts);
            ScreenKind::CoolingDown
        }
        Screen::Choose { candidates } => {
            let cards: Vec<Candidate> = candidates
                .iter()
                .map(|&shot| {
                    let image = shot_picture(&k, shot);
                    Candidate {
                        shot_no: i32::from(shot),
                        has_image: image.is_some(),
                        image: image.unwrap_or_default(),
                    }
                })
                .collect();
            k.set_candidates(model_of(cards));
            ScreenKind::Choose
        }
        Screen::Pay { amount_fen, order } => {
            k.set_amount(yuan(*amount_fen).into());
            match order.as_ref().map(|o| (o, pictures::qr_image(&o.qr_url))) {
                Some((o, Ok(qr))) => {
                    k.set_pay_qr(qr);
                    k.set_order_id(o.order_id.as_str().into());
                    k.set_has_order(true);
                }
                // An order URL too long for a QR code cannot be shown: the screen keeps saying the
                // code is being made and the session's payment timeout ends it.
                Some((_, Err(_))) | None => k.set_has_order(false),
            }
            ScreenKind::Pay
        }
        Screen::Finishing => ScreenKind::Finishing,
        Screen::Done { job_id, masked_name } => {
            k.set_job_id(job_id.as_str().into());
            k.set_masked_name(masked_name.as_str().into());
            ScreenKind::Done
        }
        Screen::Ended { reason } => {
            k.set_end_reason(end_kind(*reason));
            ScreenKind::Ended
        }
        Screen::OutOfService {
            reason_zh,
            reason_en,
            hint_zh,
            hint_en,
        } => {
            k.set_message(pick(reason_zh, reason_en));
            k.set_hint(pick(hint_zh, hint_en));
            ScreenKind::OutOfService
        }
        Screen::Service(page) => {
            super::service::apply(&k, page, lang);
            ScreenKind::Service
        }
    };
    k.set_screen(kind);
}

/// "12.50" from 1250 fen.
pub fn yuan(fen: u32) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

fn take_pictures(k: &Kiosk<'_>, pictures: Vec<Picture>) {
    for picture in pictures {
        match picture {
            Picture::Preview(frame) => {
                if let Some(image) = pictures::to_image(&frame) {
                    k.set_preview(image);
                    k.set_has_preview(true);
                }
            }
            Picture::Shot { shot_no, image } => {
                let Some(image) = pictures::to_image(&image) else {
                    continue;
                };
                let mut shots: Vec<ShotPicture> = k
                    .get_shot_pictures()
                    .iter()
                    .filter(|s| s.shot_no != i32::from(shot_no))
                    .collect();
                shots.push(ShotPicture {
                    shot_no: i32::from(shot_no),
                    image,
                });
                k.set_shot_pictures(model_of(shots));
            }
            Picture::ClearShots => {
                k.set_shot_pictures(model_of(Vec::new()));
                k.set_candidates(model_of(Vec::new()));
                k.set_has_shot_photo(false);
                k.set_shot_photo(slint::Image::default());
            }
        }
    }
}

fn shot_picture(k: &Kiosk<'_>, shot_no: u8) -> Option<slint::Image> {
    k.get_shot_pictures()
        .iter()
        .find(|s| s.shot_no == i32::from(shot_no))
        .map(|s| s.image)
}

pub(crate) fn model_of<T: Clone + 'static>(items: Vec<T>) -> ModelRc<T> {
    ModelRc::from(Rc::new(VecModel::from(items)))
}

fn permille(v: u16) -> f32 {
    f32::from(v.min(1000)) / 1000.0
}

fn clamp_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn seat_motion(m: SeatMotion) -> i32 {
    match m {
        SeatMotion::Still => 0,
        SeatMotion::Up => 1,
        SeatMotion::Down => 2,
    }
}

fn end_kind(r: EndReason) -> EndKind {
    match r {
        EndReason::WrongInfo => EndKind::WrongInfo,
        EndReason::Unpaid => EndKind::Unpaid,
        EndReason::OutOfShots => EndKind::OutOfShots,
        EndReason::NoPhotoType => EndKind::NoPhotoType,
        EndReason::PaymentDeclined => EndKind::PaymentDeclined,
        EndReason::PaymentFailed => EndKind::PaymentFailed,
        EndReason::PaymentTimedOut => EndKind::PaymentTimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::yuan;

    #[test]
    fn test_yuan_formats_fen() {
        assert_eq!(yuan(1250), "12.50");
        assert_eq!(yuan(5), "0.05");
        assert_eq!(yuan(3000), "30.00");
    }
}
