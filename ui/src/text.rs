//! Plain-text renderer: any [`View`] as a few readable lines, for the headless demo log and for tests.
//!
//! It draws no boxes and keeps no state; it does not decide what is shown (the view does) and it is not
//! meant to be pretty, only faithful: every fact on the screen appears in the text.

use crate::strings::{self as s, fill};
use crate::{Lang, Screen, SeatMotion, View};

/// Renders `view` in its own language.
pub fn render(view: &View) -> String {
    render_in(view, view.lang)
}

/// Renders `view` in `lang`, whatever the view's own language.
pub fn render_in(view: &View, lang: Lang) -> String {
    let mut out: Vec<String> = Vec::new();
    let pick = |zh: &str, en: &str| lang.pick(zh, en).to_string();
    match &view.screen {
        Screen::Attract => {
            out.push(s::ATTRACT.get(lang).into());
            out.push(s::ATTRACT_TOUCH.get(lang).into());
        }
        Screen::Scan => out.push(s::SCAN.get(lang).into()),
        Screen::Verifying => out.push(s::VERIFYING.get(lang).into()),
        Screen::Rejected {
            code,
            message_zh,
            message_en,
        } => {
            out.push(format!("{} ({code})", s::REJECTED.get(lang)));
            out.push(pick(message_zh, message_en));
        }
        Screen::Confirm {
            masked_name,
            school,
            id_last4,
        } => {
            out.push(s::CONFIRM.get(lang).into());
            out.push(format!("{}: {masked_name}", s::NAME.get(lang)));
            out.push(format!("{}: {school}", s::SCHOOL.get(lang)));
            out.push(format!("{}: {id_last4}", s::ID_LAST4.get(lang)));
            out.push(s::CONFIRM_BUTTONS.get(lang).into());
        }
        Screen::PhotoType { options, selected } => {
            out.push(s::PHOTO_TYPE.get(lang).into());
            for o in options {
                let mark = if &o.id == selected { "(*)" } else { "( )" };
                out.push(format!("{mark} {}", pick(&o.name_zh, &o.name_en)));
            }
        }
        Screen::Lighting { glasses } => {
            out.push(s::LIGHTING.get(lang).into());
            out.push(s::LIGHTING_OPTIONS.get(lang).into());
            if let Some(g) = glasses {
                out.push(if *g {
                    pick("已选：戴眼镜", "Chosen: with glasses")
                } else {
                    pick("已选：不戴眼镜", "Chosen: without glasses")
                });
            }
        }
        Screen::Rules => {
            out.push(s::RULES.get(lang).into());
            out.extend(
                s::RULE_LINES
                    .iter()
                    .enumerate()
                    .map(|(i, r)| format!("{}. {}", i + 1, r.get(lang))),
            );
            out.push(s::RULES_ACCEPT.get(lang).into());
        }
        Screen::Framing {
            shot_no,
            guidance,
            seat,
            drafts,
        } => {
            out.push(s::FRAMING.get(lang).into());
            out.push(shot_counter(lang, *shot_no, view.shots));
            match guidance.eye_line {
                None => out.push(s::NO_FACE.get(lang).into()),
                Some(e) if e.y_permille < e.band_top_permille => out.push(s::EYE_HIGH.get(lang).into()),
                Some(e) if e.y_permille > e.band_bottom_permille => out.push(s::EYE_LOW.get(lang).into()),
                Some(_) if guidance.lines.is_empty() => out.push(s::LOOKS_GOOD.get(lang).into()),
                Some(_) => {}
            }
            out.extend(guidance.lines.iter().map(|g| format!("- {}", pick(&g.zh, &g.en))));
            match seat {
                SeatMotion::Still => {}
                SeatMotion::Up => out.push(pick("座椅上升中", "Seat moving up")),
                SeatMotion::Down => out.push(pick("座椅下降中", "Seat moving down")),
            }
            out.push(s::SEAT_BUTTONS.get(lang).into());
            if *drafts > 0 {
                out.push(s::OPEN_DRAFTS.get(lang).into());
            }
        }
        Screen::Countdown { shot_no } => {
            out.push(shot_counter(lang, *shot_no, view.shots));
            out.push(format!(
                "{} … {}",
                s::COUNTDOWN.get(lang),
                view.seconds_left.unwrap_or(0)
            ));
        }
        Screen::Capturing { shot_no } => {
            out.push(shot_counter(lang, *shot_no, view.shots));
            out.push(s::CAPTURING.get(lang).into());
        }
        Screen::CaptureFailed {
            shot_no,
            shots_left,
            drafts,
        } => {
            out.push(shot_counter(lang, *shot_no, view.shots));
            out.push(s::CAPTURE_FAILED.get(lang).into());
            out.push(shots_left_line(lang, *shots_left));
            if *shots_left > 0 {
                out.push(s::RETAKE.get(lang).into());
            }
            if *drafts > 0 {
                out.push(s::OPEN_DRAFTS.get(lang).into());
            }
        }
        Screen::Checking { shot_no } => {
            out.push(shot_counter(lang, *shot_no, view.shots));
            out.push(s::CHECKING.get(lang).into());
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
            out.push(shot_counter(lang, *shot_no, view.shots));
            out.push(if *passed { s::PASSED } else { s::FAILED }.get(lang).into());
            if *liveness_failed {
                out.push(format!("- {}", s::LIVENESS_FAILED.get(lang)));
            }
            for item in items {
                let head = if item.blocking { "-" } else { s::ADVISORY.get(lang) };
                let guidance = pick(&item.guidance_zh, &item.guidance_en);
                let message = pick(&item.message_zh, &item.message_en);
                if guidance.is_empty() {
                    out.push(format!("{head} {message} [{}]", item.id));
                } else {
                    out.push(format!("{head} {message} → {guidance} [{}]", item.id));
                }
            }
            out.push(shots_left_line(lang, *shots_left));
            let mut buttons = Vec::new();
            if *passed {
                buttons.push(s::USE_THIS.get(lang).to_string());
            }
            if *shots_left > 0 {
                if *retake_enabled {
                    buttons.push(s::RETAKE.get(lang).into());
                } else if let Some(secs) = retake_in {
                    buttons.push(fill(s::RETAKE_CALM.get(lang), &[("s", &secs.to_string())]));
                }
            }
            if *drafts > 0 && !*passed {
                buttons.push(s::OPEN_DRAFTS.get(lang).into());
            }
            if !buttons.is_empty() {
                out.push(buttons.join("  "));
            }
        }
        Screen::Locked { has_drafts } => {
            out.push(s::LOCKED.get(lang).into());
            if *has_drafts {
                out.push(s::DRAFTS_AVAILABLE.get(lang).into());
                out.push(s::OPEN_DRAFTS.get(lang).into());
            }
        }
        Screen::CoolingDown { minutes, has_drafts } => {
            out.push(fill(s::COOLING_DOWN.get(lang), &[("m", &minutes.to_string())]));
            if *has_drafts {
                out.push(s::DRAFTS_AVAILABLE.get(lang).into());
                out.push(s::OPEN_DRAFTS.get(lang).into());
            }
        }
        Screen::Choose { candidates } => {
            out.push(s::CHOOSE.get(lang).into());
            out.extend(
                candidates
                    .iter()
                    .map(|k| format!("[{}]", fill(s::SHOT.get(lang), &[("k", &k.to_string())]))),
            );
        }
        Screen::Pay { amount_fen, order } => {
            out.push(s::PAY.get(lang).into());
            let yuan = format!("{}.{:02}", amount_fen / 100, amount_fen % 100);
            out.push(fill(s::PAY_AMOUNT.get(lang), &[("yuan", &yuan)]));
            match order {
                None => out.push(s::PAY_CREATING.get(lang).into()),
                Some(o) => out.push(format!("QR: {} ({})", o.qr_url, o.order_id)),
            }
        }
        Screen::Finishing => out.push(s::FINISHING.get(lang).into()),
        Screen::Done { job_id, masked_name } => {
            out.push(format!("{} {masked_name}", s::DONE.get(lang)));
            out.push(s::DONE_DETAIL.get(lang).into());
            out.push(format!("{}: {job_id}", s::RECEIPT.get(lang)));
        }
        Screen::Ended { reason } => out.push(s::end_reason(*reason).get(lang).into()),
        Screen::OutOfService {
            reason_zh,
            reason_en,
            hint_zh,
            hint_en,
        } => {
            out.push(s::OUT_OF_SERVICE.get(lang).into());
            out.push(pick(reason_zh, reason_en));
            let hint = pick(hint_zh, hint_en);
            if !hint.is_empty() {
                out.push(hint);
            }
        }
        // Technicians read English and Chinese alike; the text renderer lists what the page holds.
        Screen::Service(page) => out.push(format!("[service] {page:?}")),
    }
    if let Some(secs) = view.seconds_left {
        // The countdown shows its number inline; every other screen says what the seconds mean.
        let template = match view.screen {
            Screen::Countdown { .. } => None,
            Screen::Pay { .. } => Some(s::SECONDS_LEFT),
            _ => Some(s::BACK_IN),
        };
        if let Some(t) = template {
            out.push(fill(t.get(lang), &[("s", &secs.to_string())]));
        }
    }
    if view.can_cancel {
        out.push(s::CANCEL.get(lang).into());
    }
    out.join("\n")
}

fn shot_counter(lang: Lang, shot_no: u8, shots: Option<(u8, u8)>) -> String {
    let total = shots.map(|(_, total)| total).unwrap_or(shot_no);
    fill(
        s::SHOT_COUNTER.get(lang),
        &[("k", &shot_no.to_string()), ("n", &total.to_string())],
    )
}

fn shots_left_line(lang: Lang, left: u8) -> String {
    if left == 0 {
        s::NO_SHOTS_LEFT.get(lang).into()
    } else {
        fill(s::SHOTS_LEFT.get(lang), &[("n", &left.to_string())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckLine, EndReason, EyeLine, Guidance, GuidanceLine, PayOrder};

    fn view(screen: Screen) -> View {
        View {
            screen,
            lang: Lang::Zh,
            shots: Some((1, 3)),
            seconds_left: None,
            can_cancel: true,
        }
    }

    /// One view of every screen, so a new variant without a rendering fails to compile here first.
    fn every_screen() -> Vec<Screen> {
        let line = CheckLine {
            id: "roll".into(),
            blocking: true,
            message_zh: "头部倾斜".into(),
            message_en: "Head tilted".into(),
            guidance_zh: "请摆正头部".into(),
            guidance_en: "Keep your head level".into(),
        };
        vec![
            Screen::Attract,
            Screen::Scan,
            Screen::Verifying,
            Screen::Rejected {
                code: "expired".into(),
                message_zh: "已过期".into(),
                message_en: "Expired".into(),
            },
            Screen::Confirm {
                masked_name: "张*明".into(),
                school: "某大学".into(),
                id_last4: "123X".into(),
            },
            Screen::PhotoType {
                options: vec![],
                selected: "chsi-graduate".into(),
            },
            Screen::Lighting { glasses: Some(true) },
            Screen::Rules,
            Screen::Framing {
                shot_no: 2,
                guidance: Guidance::default(),
                seat: SeatMotion::Up,
                drafts: 1,
            },
            Screen::Countdown { shot_no: 2 },
            Screen::Capturing { shot_no: 2 },
            Screen::CaptureFailed {
                shot_no: 2,
                shots_left: 1,
                drafts: 0,
            },
            Screen::Checking { shot_no: 2 },
            Screen::Result {
                shot_no: 2,
                passed: false,
                liveness_failed: true,
                items: vec![line],
                shots_left: 1,
                retake_enabled: false,
                retake_in: Some(4),
                drafts: 1,
            },
            Screen::Locked { has_drafts: true },
            Screen::CoolingDown {
                minutes: 30,
                has_drafts: false,
            },
            Screen::Choose {
                candidates: vec![1, 3],
            },
            Screen::Pay {
                amount_fen: 2500,
                order: None,
            },
            Screen::Finishing,
            Screen::Done {
                job_id: "job-1".into(),
                masked_name: "张*明".into(),
            },
            Screen::Ended {
                reason: EndReason::WrongInfo,
            },
            Screen::OutOfService {
                reason_zh: "摄像头已断开".into(),
                reason_en: "Camera disconnected".into(),
                hint_zh: "请联系工作人员".into(),
                hint_en: "Please ask the staff".into(),
            },
        ]
    }

    #[test]
    fn test_render_every_screen_in_both_languages_is_nonempty_and_differs() {
        for screen in every_screen() {
            let v = view(screen);
            let zh = render_in(&v, Lang::Zh);
            let en = render_in(&v, Lang::En);
            assert!(!zh.trim().is_empty(), "{v:?}");
            assert!(!en.trim().is_empty(), "{v:?}");
            assert_ne!(zh, en, "{v:?}");
        }
    }

    #[test]
    fn test_render_uses_the_views_language() {
        let mut v = view(Screen::Attract);
        assert!(render(&v).contains("请扫描拍摄二维码"));
        v.lang = Lang::En;
        assert!(render(&v).contains("Please scan your shooting QR code"));
    }

    #[test]
    fn test_render_confirm_shows_identity() {
        let v = view(Screen::Confirm {
            masked_name: "张*明".into(),
            school: "某大学".into(),
            id_last4: "123X".into(),
        });
        let text = render(&v);
        assert!(
            text.contains("张*明") && text.contains("某大学") && text.contains("123X"),
            "{text}"
        );
    }

    #[test]
    fn test_render_result_lists_reasons_and_calm_period() {
        let screen = every_screen()
            .into_iter()
            .find(|s| matches!(s, Screen::Result { .. }))
            .unwrap();
        let text = render(&view(screen));
        assert!(text.contains("头部倾斜") && text.contains("请摆正头部"), "{text}");
        assert!(text.contains("活体检测"), "{text}");
        assert!(text.contains("冷静期 4 秒"), "{text}");
        assert!(
            !text.contains("[重新拍摄]"),
            "retake is disabled during the calm period: {text}"
        );
    }

    #[test]
    fn test_render_done_says_done_and_finishing_does_not() {
        let done = render(&view(Screen::Done {
            job_id: "job-7".into(),
            masked_name: "李*".into(),
        }));
        assert!(done.contains("完成") && done.contains("job-7"), "{done}");
        for screen in every_screen() {
            if matches!(screen, Screen::Done { .. }) {
                continue;
            }
            let text = render(&view(screen));
            assert!(!text.contains("完成"), "only Done may say 完成: {text}");
        }
    }

    #[test]
    fn test_render_framing_guidance_and_eye_line() {
        let guidance = Guidance {
            lines: vec![GuidanceLine {
                zh: "请摆正头部".into(),
                en: "Level your head".into(),
            }],
            eye_line: Some(EyeLine {
                y_permille: 700,
                band_top_permille: 300,
                band_bottom_permille: 450,
            }),
            blink_prompt: false,
        };
        let mut v = view(Screen::Framing {
            shot_no: 2,
            guidance,
            seat: SeatMotion::Still,
            drafts: 0,
        });
        let text = render(&v);
        assert!(
            text.contains("第 2/3 次拍摄") && text.contains("请坐高一点") && text.contains("请摆正头部"),
            "{text}"
        );
        v.lang = Lang::En;
        let text = render(&v);
        assert!(
            text.contains("Shot 2 of 3") && text.contains("Please sit higher"),
            "{text}"
        );
    }

    #[test]
    fn test_render_pay_shows_amount_qr_and_seconds() {
        let mut v = view(Screen::Pay {
            amount_fen: 2505,
            order: Some(PayOrder {
                order_id: "o-1".into(),
                qr_url: "weixin://wxpay/x".into(),
            }),
        });
        v.seconds_left = Some(90);
        let text = render(&v);
        assert!(
            text.contains("25.05") && text.contains("weixin://wxpay/x") && text.contains("剩余 90 秒"),
            "{text}"
        );
    }
}
