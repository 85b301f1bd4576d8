//! Touches become intents: every button of every screen, found by its accessible label as a screen
//! reader (or a test robot) would, is activated and must emit the intent the view model promises. Runs
//! on Slint's testing backend without rendering.

mod common;

use std::sync::mpsc::{Receiver, channel};

use i_slint_backend_testing::{AccessibleRole, ElementHandle};
use slint::ComponentHandle;
use ui::{Intent, KioskWindow, Lang, ServiceIntent, ServicePageKind, View, adapters};

struct Rig {
    window: KioskWindow,
    rx: Receiver<Intent>,
}

impl Rig {
    fn new() -> Rig {
        let window = KioskWindow::new().expect("window");
        let (tx, rx) = channel();
        adapters::kiosk::connect(&window, tx);
        window.show().expect("show");
        Rig { window, rx }
    }

    fn show(&self, name: &str, lang: Lang) {
        let (_, view, pictures) = common::cases(lang)
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .unwrap_or_else(|| panic!("no case {name}"));
        adapters::kiosk::apply(&self.window, &view, pictures);
    }

    fn apply(&self, view: &View) {
        adapters::kiosk::apply(&self.window, view, vec![]);
    }

    /// Activates the one enabled element labelled `label` and returns the intents it emitted.
    fn press(&self, label: &str) -> Vec<Intent> {
        let found: Vec<ElementHandle> = ElementHandle::find_by_accessible_label(&self.window, label)
            .filter(|e| e.accessible_role() == Some(AccessibleRole::Button))
            .collect();
        assert!(!found.is_empty(), "no element labelled {label:?}");
        assert_eq!(found.len(), 1, "several elements labelled {label:?}");
        found[0].invoke_accessible_default_action();
        self.rx.try_iter().collect()
    }

    fn has(&self, label: &str) -> bool {
        ElementHandle::find_by_accessible_label(&self.window, label)
            .next()
            .is_some()
    }
}

#[test]
fn test_every_button_emits_its_intent_in_both_languages() {
    i_slint_backend_testing::init_no_event_loop();
    let rig = Rig::new();

    rig.show("attract", Lang::Zh);
    assert_eq!(rig.press("触摸屏幕开始"), vec![Intent::Start]);
    assert_eq!(rig.press("English"), vec![Intent::ToggleLanguage]);
    assert_eq!(rig.press("service"), vec![Intent::ServiceRequest]);

    rig.show("attract", Lang::En);
    assert_eq!(rig.press("Touch the screen to start"), vec![Intent::Start]);
    assert_eq!(rig.press("中文"), vec![Intent::ToggleLanguage]);

    rig.show("rejected", Lang::Zh);
    assert_eq!(rig.press("确定"), vec![Intent::Continue]);

    rig.show("confirm", Lang::Zh);
    assert_eq!(rig.press("确认"), vec![Intent::Confirm]);
    assert_eq!(rig.press("信息有误"), vec![Intent::WrongInfo]);
    assert_eq!(rig.press("取消"), vec![Intent::Cancel]);
    rig.show("confirm", Lang::En);
    assert_eq!(rig.press("Confirm"), vec![Intent::Confirm]);
    assert_eq!(rig.press("Details are wrong"), vec![Intent::WrongInfo]);
    assert_eq!(rig.press("Cancel"), vec![Intent::Cancel]);

    rig.show("photo-type", Lang::Zh);
    assert_eq!(
        rig.press("高等院校学籍照片"),
        vec![Intent::SelectPhotoType("student-id".into())]
    );
    assert_eq!(rig.press("下一步"), vec![Intent::Next]);

    rig.show("lighting", Lang::En);
    assert_eq!(
        rig.press("With glasses"),
        vec![Intent::Lighting { glasses: true }]
    );
    assert_eq!(
        rig.press("Without glasses"),
        vec![Intent::Lighting { glasses: false }]
    );

    rig.show("rules", Lang::Zh);
    assert_eq!(rig.press("我已阅读，开始拍摄"), vec![Intent::AcceptRules]);

    rig.show("framing", Lang::Zh);
    assert_eq!(rig.press("座椅升"), vec![Intent::SeatUp, Intent::SeatStop]);
    assert_eq!(rig.press("座椅降"), vec![Intent::SeatDown, Intent::SeatStop]);
    assert_eq!(rig.press("拍摄"), vec![Intent::Shoot]);
    assert_eq!(rig.press("去草稿箱 (1)"), vec![Intent::OpenDrafts]);
    assert!(rig.has("请坐高一点"), "guidance line shown");

    rig.show("capture-failed", Lang::Zh);
    assert_eq!(rig.press("重新拍摄"), vec![Intent::Retake]);
    assert_eq!(rig.press("去草稿箱"), vec![Intent::OpenDrafts]);

    rig.show("result-pass", Lang::Zh);
    assert_eq!(rig.press("使用此照片"), vec![Intent::UseThis]);
    assert_eq!(rig.press("重新拍摄（剩余 1 次）"), vec![Intent::Retake]);
    // During the calm period the retake button is shown but does nothing.
    rig.show("result-fail", Lang::Zh);
    assert_eq!(rig.press("重新拍摄（剩余 2 次）"), vec![]);
    assert!(rig.has("头部倾斜（7.5°，上限 5°）"));

    rig.show("locked", Lang::Zh);
    assert_eq!(rig.press("去草稿箱"), vec![Intent::OpenDrafts]);
    assert_eq!(rig.press("确定"), vec![Intent::Continue]);

    rig.show("choose", Lang::Zh);
    assert_eq!(rig.press("选择第 3 次拍摄"), vec![Intent::Choose(3)]);
    assert_eq!(rig.press("选择第 1 次拍摄"), vec![Intent::Choose(1)]);
    rig.show("choose", Lang::En);
    assert_eq!(rig.press("Choose shot 3"), vec![Intent::Choose(3)]);

    rig.show("done", Lang::Zh);
    assert!(rig.has("回执编号：346e9a0c51d2"));
    assert_eq!(rig.press("确定"), vec![Intent::Continue]);

    rig.show("ended", Lang::Zh);
    assert_eq!(rig.press("确定"), vec![Intent::Continue]);

    // Service mode.
    rig.show("service-pin", Lang::Zh);
    for d in 0..=9u8 {
        assert_eq!(
            rig.press(&d.to_string()),
            vec![Intent::Service(ServiceIntent::PinDigit(d))]
        );
    }
    assert_eq!(
        rig.press("删除"),
        vec![Intent::Service(ServiceIntent::PinBackspace)]
    );
    assert_eq!(rig.press("退出"), vec![Intent::Service(ServiceIntent::Exit)]);

    rig.show("service-menu", Lang::Zh);
    for (label, page) in [
        ("设备自检", ServicePageKind::SelfTest),
        ("座椅点动", ServicePageKind::Seat),
        ("灯光测试", ServicePageKind::Lights),
        ("票据解锁与补次", ServicePageKind::Tickets),
        ("上传队列", ServicePageKind::Uploads),
        ("计数", ServicePageKind::Counters),
        ("校准", ServicePageKind::Calibrate),
    ] {
        assert_eq!(rig.press(label), vec![Intent::Service(ServiceIntent::Open(page))]);
    }
    assert_eq!(
        rig.press("退出维护模式"),
        vec![Intent::Service(ServiceIntent::Exit)]
    );

    rig.show("service-self-test", Lang::Zh);
    assert_eq!(
        rig.press("开始自检"),
        vec![Intent::Service(ServiceIntent::RunSelfTest)]
    );
    assert_eq!(rig.press("返回菜单"), vec![Intent::Service(ServiceIntent::Back)]);

    rig.show("service-seat", Lang::Zh);
    assert_eq!(
        rig.press("上升"),
        vec![
            Intent::Service(ServiceIntent::SeatJogUp),
            Intent::Service(ServiceIntent::SeatJogStop)
        ]
    );
    assert_eq!(
        rig.press("下降"),
        vec![
            Intent::Service(ServiceIntent::SeatJogDown),
            Intent::Service(ServiceIntent::SeatJogStop)
        ]
    );

    rig.show("service-lights", Lang::Zh);
    assert_eq!(
        rig.press("shoot-glasses"),
        vec![Intent::Service(ServiceIntent::LightsMode("shoot-glasses".into()))]
    );
    assert_eq!(
        rig.press("off"),
        vec![Intent::Service(ServiceIntent::LightsMode("off".into()))]
    );

    rig.show("service-tickets", Lang::Zh);
    assert_eq!(
        rig.press("解锁 45eb19c2"),
        vec![Intent::Service(ServiceIntent::Unlock {
            ticket: "45eb19c2".into()
        })]
    );
    assert_eq!(
        rig.press("补一次 9a1f0c77"),
        vec![Intent::Service(ServiceIntent::GrantShot {
            ticket: "9a1f0c77".into()
        })]
    );
    // A completed ticket has nothing to unlock.
    assert_eq!(rig.press("解锁 c03e55d1"), vec![]);

    rig.show("service-uploads", Lang::Zh);
    assert_eq!(
        rig.press("立即重试"),
        vec![Intent::Service(ServiceIntent::RetryUploads)]
    );

    // Language follows the view: the same window switches back to Chinese.
    let mut view = common::cases(Lang::En).remove(0).1;
    rig.apply(&view);
    assert!(rig.has("中文"));
    view.lang = Lang::Zh;
    rig.apply(&view);
    assert!(rig.has("English"));
    assert!(rig.has("触摸屏幕开始"));
}
