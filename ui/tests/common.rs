//! Views with representative (fictional) data for every screen and service page, and synthetic
//! pictures, shared by the UI tests.
#![allow(dead_code)]

use std::sync::Arc;

use ui::*;

/// A flat-colour stand-in for a person in front of the backdrop (compresses well in reference PNGs).
pub fn person(width: u32, height: u32, backdrop: [u8; 3]) -> RgbImage {
    let mut pixels = Vec::with_capacity((width * height * 3) as usize);
    let (w, h) = (width as f32, height as f32);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / w, y as f32 / h);
            let head = ((fx - 0.5) / 0.17).powi(2) + ((fy - 0.42) / 0.2).powi(2) <= 1.0;
            let hair = ((fx - 0.5) / 0.18).powi(2) + ((fy - 0.36) / 0.17).powi(2) <= 1.0 && fy < 0.33;
            let body = fy > 0.68 && ((fx - 0.5) / 0.42).powi(2) + ((fy - 1.05) / 0.4).powi(2) <= 1.0;
            let eye = (fy - 0.41).abs() < 0.012 && ((fx - 0.43).abs() < 0.03 || (fx - 0.57).abs() < 0.03);
            let c = if eye {
                [30, 30, 30]
            } else if hair {
                [40, 32, 28]
            } else if head {
                [226, 190, 160]
            } else if body {
                [25, 40, 80]
            } else {
                backdrop
            };
            pixels.extend_from_slice(&c);
        }
    }
    RgbImage {
        width,
        height,
        pixels: Arc::new(pixels),
    }
}

pub fn preview() -> Picture {
    Picture::Preview(person(640, 480, [200, 205, 210]))
}

pub fn shot(shot_no: u8) -> Picture {
    let backdrop = if shot_no == 1 {
        [120, 170, 230]
    } else {
        [100, 160, 225]
    };
    Picture::Shot {
        shot_no,
        image: person(240, 320, backdrop),
    }
}

fn line(zh: &str, en: &str) -> GuidanceLine {
    GuidanceLine {
        zh: zh.into(),
        en: en.into(),
    }
}

/// Every screen (and every service page) with representative data: (name, view, pictures).
pub fn cases(lang: Lang) -> Vec<(&'static str, View, Vec<Picture>)> {
    let v = |screen: Screen| View {
        screen,
        lang,
        shots: Some((1, 3)),
        seconds_left: Some(45),
        can_cancel: true,
    };
    let bare = |screen: Screen| View::bare(screen, lang);
    let service = |page: ServicePage| View::bare(Screen::Service(page), lang);
    let check = |id: &str, blocking: bool, mz: &str, me: &str, gz: &str, ge: &str| CheckLine {
        id: id.into(),
        blocking,
        message_zh: mz.into(),
        message_en: me.into(),
        guidance_zh: gz.into(),
        guidance_en: ge.into(),
    };
    vec![
        ("attract", bare(Screen::Attract), vec![]),
        (
            "scan",
            View { shots: None, ..v(Screen::Scan) },
            vec![preview()],
        ),
        ("verifying", View { shots: None, ..bare(Screen::Verifying) }, vec![]),
        (
            "rejected",
            View {
                seconds_left: Some(20),
                ..bare(Screen::Rejected {
                    code: "raw_chsi_code".into(),
                    message_zh: "请先在小程序中生成拍摄二维码，不要直接扫描学信网采集码".into(),
                    message_en: "Create your shooting QR code in the mini-program first; do not scan the CHSI collection code directly".into(),
                })
            },
            vec![],
        ),
        (
            "confirm",
            View {
                shots: Some((0, 3)),
                ..v(Screen::Confirm {
                    masked_name: "张*明".into(),
                    school: "示例理工大学".into(),
                    id_last4: "042X".into(),
                })
            },
            vec![],
        ),
        (
            "photo-type",
            View {
                shots: Some((0, 3)),
                ..v(Screen::PhotoType {
                    options: vec![
                        PhotoTypeOption {
                            id: "chsi-graduate".into(),
                            name_zh: "高等院校毕业生照".into(),
                            name_en: "University graduate photo".into(),
                        },
                        PhotoTypeOption {
                            id: "student-id".into(),
                            name_zh: "高等院校学籍照片".into(),
                            name_en: "Student record photo".into(),
                        },
                    ],
                    selected: "chsi-graduate".into(),
                })
            },
            vec![],
        ),
        (
            "lighting",
            View { shots: Some((0, 3)), ..v(Screen::Lighting { glasses: Some(false) }) },
            vec![],
        ),
        ("rules", View { shots: Some((0, 3)), ..v(Screen::Rules) }, vec![]),
        (
            "framing",
            View {
                seconds_left: Some(110),
                ..v(Screen::Framing {
                    shot_no: 2,
                    guidance: Guidance {
                        lines: vec![
                            line("请坐高一点", "Please sit higher"),
                            line("请摆正头部", "Please hold your head straight"),
                        ],
                        eye_line: Some(EyeLine {
                            y_permille: 470,
                            band_top_permille: 340,
                            band_bottom_permille: 420,
                        }),
                        blink_prompt: true,
                    },
                    seat: SeatMotion::Up,
                    drafts: 1,
                })
            },
            vec![preview()],
        ),
        (
            "framing-good",
            v(Screen::Framing {
                shot_no: 1,
                guidance: Guidance {
                    lines: vec![],
                    eye_line: Some(EyeLine {
                        y_permille: 400,
                        band_top_permille: 360,
                        band_bottom_permille: 440,
                    }),
                    blink_prompt: false,
                },
                seat: SeatMotion::Still,
                drafts: 0,
            }),
            vec![preview()],
        ),
        (
            "framing-no-face",
            v(Screen::Framing {
                shot_no: 1,
                guidance: Guidance::default(),
                seat: SeatMotion::Still,
                drafts: 0,
            }),
            vec![Picture::Preview(person(640, 480, [200, 205, 210]))],
        ),
        (
            "countdown",
            View { seconds_left: Some(3), can_cancel: false, ..v(Screen::Countdown { shot_no: 2 }) },
            vec![preview()],
        ),
        (
            "capturing",
            View { seconds_left: None, can_cancel: false, ..v(Screen::Capturing { shot_no: 2 }) },
            vec![],
        ),
        (
            "capture-failed",
            v(Screen::CaptureFailed { shot_no: 2, shots_left: 1, drafts: 1 }),
            vec![],
        ),
        (
            "checking",
            View { seconds_left: None, can_cancel: false, ..v(Screen::Checking { shot_no: 2 }) },
            vec![],
        ),
        (
            "result-pass",
            View {
                shots: Some((2, 3)),
                ..v(Screen::Result {
                    shot_no: 2,
                    passed: true,
                    liveness_failed: false,
                    items: vec![check(
                        "glasses-glare",
                        false,
                        "镜片有轻微反光",
                        "Slight reflection on the lenses",
                        "可稍微低头再拍",
                        "Tilt your head down a little if you shoot again",
                    )],
                    shots_left: 1,
                    retake_enabled: true,
                    retake_in: None,
                    drafts: 1,
                })
            },
            vec![shot(2)],
        ),
        (
            "result-fail",
            View {
                shots: Some((1, 3)),
                ..v(Screen::Result {
                    shot_no: 1,
                    passed: false,
                    liveness_failed: false,
                    items: vec![
                        check(
                            "roll",
                            true,
                            "头部倾斜（7.5°，上限 5°）",
                            "Head tilted (7.5°, limit 5°)",
                            "请摆正头部，双眼保持水平",
                            "Hold your head straight, eyes level",
                        ),
                        check(
                            "mouth",
                            true,
                            "嘴唇未闭合",
                            "Lips not closed",
                            "请自然闭合嘴唇，不要露出牙齿",
                            "Close your lips naturally, no teeth showing",
                        ),
                    ],
                    shots_left: 2,
                    retake_enabled: false,
                    retake_in: Some(8),
                    drafts: 0,
                })
            },
            vec![],
        ),
        (
            "result-liveness",
            View {
                shots: Some((2, 3)),
                ..v(Screen::Result {
                    shot_no: 2,
                    passed: false,
                    liveness_failed: true,
                    items: vec![],
                    shots_left: 1,
                    retake_enabled: true,
                    retake_in: None,
                    drafts: 1,
                })
            },
            vec![],
        ),
        ("locked", v(Screen::Locked { has_drafts: true }), vec![]),
        (
            "cooling-down",
            v(Screen::CoolingDown { minutes: 30, has_drafts: false }),
            vec![],
        ),
        (
            "choose",
            View { shots: Some((3, 3)), ..v(Screen::Choose { candidates: vec![1, 3] }) },
            vec![shot(1), shot(3)],
        ),
        (
            "pay",
            View {
                seconds_left: Some(118),
                ..v(Screen::Pay {
                    amount_fen: 3000,
                    order: Some(PayOrder {
                        order_id: "K20260521-0042".into(),
                        qr_url: "weixin://wxpay/bizpayurl?pr=Fict10nal".into(),
                    }),
                })
            },
            vec![],
        ),
        (
            "pay-creating",
            v(Screen::Pay { amount_fen: 3000, order: None }),
            vec![],
        ),
        (
            "finishing",
            View { can_cancel: false, seconds_left: None, ..v(Screen::Finishing) },
            vec![],
        ),
        (
            "done",
            View {
                shots: Some((2, 3)),
                seconds_left: Some(15),
                can_cancel: false,
                ..v(Screen::Done {
                    job_id: "346e9a0c51d2".into(),
                    masked_name: "张*明".into(),
                })
            },
            vec![],
        ),
        (
            "ended",
            View {
                seconds_left: Some(10),
                ..bare(Screen::Ended { reason: EndReason::PaymentTimedOut })
            },
            vec![],
        ),
        (
            "out-of-service",
            bare(Screen::OutOfService {
                reason_zh: "摄像头无响应".into(),
                reason_en: "The camera does not respond".into(),
                hint_zh: "检查摄像头 USB 连接（/dev/kiosk-camera），然后在维护模式中运行设备自检".into(),
                hint_en: "Check the camera's USB cable (/dev/kiosk-camera), then run the self-test in service mode".into(),
            }),
            vec![],
        ),
        (
            "service-pin",
            service(ServicePage::Pin { entered: 3, wrong: true, locked_for: None }),
            vec![],
        ),
        ("service-menu", service(ServicePage::Menu), vec![]),
        (
            "service-self-test",
            service(ServicePage::SelfTest {
                running: false,
                checks: vec![
                    ServiceCheck { name: "camera".into(), ok: Some(true), detail: "1920x1080 MJPEG, mean 112".into() },
                    ServiceCheck { name: "seat".into(), ok: Some(false), detail: "no answer on /dev/kiosk-seat (Modbus 1)".into() },
                    ServiceCheck { name: "lights".into(), ok: Some(true), detail: "4 channels".into() },
                    ServiceCheck { name: "scanner".into(), ok: None, detail: String::new() },
                    ServiceCheck { name: "database".into(), ok: Some(true), detail: "kiosk.db, 14 MB".into() },
                    ServiceCheck { name: "disk".into(), ok: Some(true), detail: "21.4 GB free".into() },
                ],
            }),
            vec![],
        ),
        (
            "service-calibrate",
            service(ServicePage::Calibrate {
                running: false,
                checks: vec![
                    ServiceCheck { name: "backdrop".into(), ok: Some(true), detail: "97 % of the centre is backdrop".into() },
                    ServiceCheck { name: "colour".into(), ok: Some(false), detail: "ΔE 14.2 to spec (limit 10)".into() },
                    ServiceCheck { name: "evenness".into(), ok: Some(true), detail: "left/centre/right 1.06".into() },
                    ServiceCheck { name: "exposure".into(), ok: Some(true), detail: "0.2 % clipped, 0.0 % crushed".into() },
                    ServiceCheck { name: "seat travel".into(), ok: Some(true), detail: "up 4.0 s, down 8.0 s, limits".into() },
                ],
            }),
            vec![],
        ),
        (
            "service-seat",
            service(ServicePage::Seat {
                motion: SeatMotion::Down,
                at_top: false,
                at_bottom: true,
                position_permille: Some(40),
                fault: Some("overcurrent at 12:04".into()),
            }),
            vec![],
        ),
        (
            "service-lights",
            service(ServicePage::Lights {
                mode: "shoot-glasses".into(),
                levels: vec![
                    ("key-left".into(), 60),
                    ("key-right".into(), 60),
                    ("fill".into(), 80),
                    ("backdrop".into(), 100),
                ],
            }),
            vec![],
        ),
        (
            "service-tickets",
            service(ServicePage::Tickets {
                tickets: vec![
                    ServiceTicket { ticket: "45eb19c2".into(), masked_name: "张*明".into(), shots_used: 3, shots_total: 3, status: "locked".into() },
                    ServiceTicket { ticket: "9a1f0c77".into(), masked_name: "李*".into(), shots_used: 2, shots_total: 3, status: "cooling-down".into() },
                    ServiceTicket { ticket: "c03e55d1".into(), masked_name: "欧阳*华".into(), shots_used: 1, shots_total: 3, status: "completed".into() },
                ],
                message: Some(line("已为 45eb19c2 补一次拍摄", "One shot granted to 45eb19c2")),
            }),
            vec![],
        ),
        (
            "service-uploads",
            service(ServicePage::Uploads {
                queued: 4,
                failed: 1,
                acked_today: 37,
                oldest_age_s: Some(3 * 3600 + 300),
                last_error: Some("intake: HTTP 503, retry after 60 s".into()),
            }),
            vec![],
        ),
        (
            "service-counters",
            service(ServicePage::Counters {
                rows: vec![
                    ("sessions".into(), 1240, 37),
                    ("shots".into(), 2911, 81),
                    ("passed".into(), 1198, 35),
                    ("uploads".into(), 1190, 33),
                ],
            }),
            vec![],
        ),
    ]
}
