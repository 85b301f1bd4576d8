//! The English bundle is complete and agrees with `ui::strings`: every `@tr` text of the markup has a
//! non-empty translation in `translations/en/LC_MESSAGES/ui.po` with the same `{}` placeholders, and
//! every text the markup shares with `ui::strings` (same Chinese) has the same English there.

use std::collections::BTreeMap;
use std::path::Path;

use ui::strings::{self as s, Text};

fn unquote(line: &str, key: &str) -> Option<String> {
    let rest = line.strip_prefix(key)?.trim();
    let inner = rest.strip_prefix('"')?.strip_suffix('"')?;
    Some(inner.replace("\\\"", "\"").replace("\\\\", "\\"))
}

fn po() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("translations/en/LC_MESSAGES/ui.po"),
    )
    .expect("ui.po");
    let mut map = BTreeMap::new();
    let mut id = None;
    for line in text.lines() {
        if let Some(m) = unquote(line, "msgid") {
            id = Some(m);
        } else if let Some(m) = unquote(line, "msgstr")
            && let Some(id) = id.take().filter(|i| !i.is_empty())
        {
            map.insert(id, m);
        }
    }
    map
}

fn tr_texts() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("slint");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "slint") {
            let src = std::fs::read_to_string(&path).unwrap();
            for part in src.split("@tr(\"").skip(1) {
                out.push(part.split('"').next().unwrap().to_string());
            }
        }
    }
    out
}

#[test]
fn test_every_tr_text_has_an_english_translation_with_the_same_placeholders() {
    let po = po();
    let texts = tr_texts();
    assert!(texts.len() > 80, "found only {} @tr texts", texts.len());
    for t in texts {
        let en = po.get(&t).unwrap_or_else(|| panic!("no English for {t:?}"));
        assert!(!en.is_empty(), "empty English for {t:?}");
        assert_eq!(
            t.matches("{}").count(),
            en.matches("{}").count(),
            "placeholders of {t:?}"
        );
    }
}

#[test]
fn test_texts_shared_with_ui_strings_read_the_same() {
    let po = po();
    let mut shared: Vec<Text> = vec![
        s::ATTRACT,
        s::ATTRACT_TOUCH,
        s::SCAN,
        s::VERIFYING,
        s::REJECTED,
        s::CONFIRM,
        s::NAME,
        s::SCHOOL,
        s::ID_LAST4,
        s::PHOTO_TYPE,
        s::LIGHTING,
        s::RULES,
        s::FRAMING,
        s::LOOKS_GOOD,
        s::NO_FACE,
        s::COUNTDOWN,
        s::CAPTURING,
        s::CAPTURE_FAILED,
        s::CHECKING,
        s::PASSED,
        s::FAILED,
        s::LIVENESS_FAILED,
        s::ADVISORY,
        s::NO_SHOTS_LEFT,
        s::LOCKED,
        s::DRAFTS_AVAILABLE,
        s::CHOOSE,
        s::PAY,
        s::PAY_CREATING,
        s::FINISHING,
        s::DONE,
        s::DONE_DETAIL,
        s::RECEIPT,
        s::OUT_OF_SERVICE,
    ];
    shared.extend(s::RULE_LINES);
    for reason in [
        ui::EndReason::WrongInfo,
        ui::EndReason::Unpaid,
        ui::EndReason::OutOfShots,
        ui::EndReason::NoPhotoType,
        ui::EndReason::PaymentDeclined,
        ui::EndReason::PaymentFailed,
        ui::EndReason::PaymentTimedOut,
    ] {
        shared.push(s::end_reason(reason));
    }
    for text in shared {
        let en = po
            .get(text.zh)
            .unwrap_or_else(|| panic!("{:?} is not used in the markup", text.zh));
        assert_eq!(en, text.en, "English of {:?}", text.zh);
    }
    // Texts with placeholders: ui::strings writes {k}/{n}/{s}, Slint's @tr writes {}.
    for (text, zh) in [
        (s::SHOT_COUNTER, "第 {}/{} 次拍摄"),
        (s::RETAKE_CALM, "冷静期 {} 秒后可重拍"),
        (s::SHOTS_LEFT, "剩余拍摄次数：{}"),
        (s::COOLING_DOWN, "请仔细阅读拍摄要求，可于 {} 分钟后重新拍摄。"),
        (s::SHOT, "第 {} 次拍摄"),
        (s::BACK_IN, "{} 秒后返回首页"),
        (s::SECONDS_LEFT, "剩余 {} 秒"),
    ] {
        let positional = |t: &str| {
            ["{k}", "{n}", "{s}", "{m}", "{yuan}"]
                .iter()
                .fold(t.to_string(), |acc, p| acc.replace(p, "{}"))
        };
        assert_eq!(positional(text.zh), zh);
        assert_eq!(
            po.get(zh).map(String::as_str),
            Some(positional(text.en).as_str()),
            "{zh}"
        );
    }
}
