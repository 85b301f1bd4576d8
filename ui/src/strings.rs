//! Fixed texts of the kiosk's screens, in Chinese and English, shared by every renderer.
//!
//! Only texts that do not come with data live here; a rejection reason, a check message or a fault
//! description arrives inside the view in both languages. This module does not format numbers or
//! choose what to show: renderers do.

use crate::{EndReason, Lang};

/// A fixed text in both languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Text {
    pub zh: &'static str,
    pub en: &'static str,
}

impl Text {
    pub fn get(self, lang: Lang) -> &'static str {
        lang.pick(self.zh, self.en)
    }
}

const fn t(zh: &'static str, en: &'static str) -> Text {
    Text { zh, en }
}

pub const ATTRACT: Text = t("请扫描拍摄二维码", "Please scan your shooting QR code");
pub const ATTRACT_TOUCH: Text = t("触摸屏幕开始", "Touch the screen to start");
pub const SCAN: Text = t(
    "请将手机上的拍摄二维码对准屏幕上方的摄像头",
    "Hold the shooting QR code on your phone up to the camera above the screen",
);
pub const VERIFYING: Text = t("正在验证二维码…", "Checking your code…");
pub const REJECTED: Text = t("无法使用此二维码", "This code cannot be used");
pub const CONFIRM: Text = t("请确认您的信息", "Please confirm your details");
pub const NAME: Text = t("姓名", "Name");
pub const SCHOOL: Text = t("学校", "School");
pub const ID_LAST4: Text = t("身份证号后四位", "ID number, last 4");
pub const CONFIRM_BUTTONS: Text = t("[确认]  [信息有误]", "[Confirm]  [Details are wrong]");
pub const PHOTO_TYPE: Text = t("请选择拍摄类型", "Choose the photo type");
pub const LIGHTING: Text = t("请选择灯光模式", "Choose the lighting mode");
pub const LIGHTING_OPTIONS: Text = t(
    "[戴眼镜]  [不戴眼镜]（推荐不戴眼镜拍摄）",
    "[With glasses]  [Without glasses] (without is recommended)",
);
pub const RULES: Text = t("拍摄之前请您注意以下事项", "Before you shoot, please note");
pub const RULE_LINES: [Text; 4] = [
    t(
        "坐姿端正，表情自然，双眼自然睁开并平视，耳朵对称",
        "Sit upright, natural expression, eyes open and level, ears symmetric",
    ),
    t(
        "左右肩膀平衡，嘴唇自然闭合，不可以露出牙齿",
        "Shoulders level, lips closed, no teeth showing",
    ),
    t("不得使用头部覆盖物", "No head covering"),
    t(
        "不得佩戴耳环、项链等饰品；头发不得遮挡眉毛、眼睛和耳朵",
        "No earrings or necklaces; hair must not cover eyebrows, eyes or ears",
    ),
];
pub const RULES_ACCEPT: Text = t("[开始拍摄]", "[Start]");
pub const FRAMING: Text = t(
    "请调整座椅高度，身体坐直，目视前方，背部紧靠座椅",
    "Adjust the seat, sit up straight, look ahead, back against the seat",
);
pub const LOOKS_GOOD: Text = t("位置合适，可以拍摄", "Looks good, ready to shoot");
pub const NO_FACE: Text = t(
    "未检测到人脸，请坐到镜头前",
    "No face seen; please sit in front of the camera",
);
pub const EYE_HIGH: Text = t("请坐低一点", "Please sit lower");
pub const EYE_LOW: Text = t("请坐高一点", "Please sit higher");
pub const SEAT_BUTTONS: Text = t("[座椅升]  [座椅降]  [拍摄]", "[Seat up]  [Seat down]  [Shoot]");
pub const SHOT_COUNTER: Text = t("第 {k}/{n} 次拍摄", "Shot {k} of {n}");
pub const COUNTDOWN: Text = t("请保持不动", "Hold still");
pub const CAPTURING: Text = t("正在拍摄…", "Taking the photo…");
pub const CAPTURE_FAILED: Text = t(
    "拍摄失败，本次拍摄次数已计入；如需补拍次数请联系工作人员",
    "The photo could not be taken. This shot still counts; ask the staff if you need an extra shot",
);
pub const CHECKING: Text = t("正在检测照片，请不要离开…", "Checking your photo, please stay…");
pub const PASSED: Text = t("检测通过，已存入草稿箱", "Passed, saved to your drafts");
pub const FAILED: Text = t("检测未通过", "The photo did not pass");
pub const LIVENESS_FAILED: Text = t(
    "未通过活体检测，请本人正对镜头拍摄，不要翻拍照片或屏幕",
    "Liveness check failed: face the camera yourself; do not photograph a photo or a screen",
);
pub const ADVISORY: Text = t("提示", "Note");
pub const USE_THIS: Text = t("[使用此照片]", "[Use this photo]");
pub const RETAKE: Text = t("[重新拍摄]", "[Shoot again]");
pub const RETAKE_CALM: Text = t("冷静期 {s} 秒后可重拍", "Retake available in {s} s");
pub const SHOTS_LEFT: Text = t("剩余拍摄次数：{n}", "Shots left: {n}");
pub const NO_SHOTS_LEFT: Text = t("拍摄次数已用完", "No shots left");
pub const OPEN_DRAFTS: Text = t("[去草稿箱]", "[Open drafts]");
pub const LOCKED: Text = t(
    "系统检测到您的照片多次未通过活体检测，请联系学校图采工作部门进行账号解锁。",
    "Your photos failed the liveness check several times. Please ask your school's photo office to unlock your account.",
);
pub const COOLING_DOWN: Text = t(
    "请仔细阅读拍摄要求，可于 {m} 分钟后重新拍摄。",
    "Please read the shooting rules carefully; you can shoot again in {m} minutes.",
);
pub const DRAFTS_AVAILABLE: Text = t(
    "系统检测到草稿箱有照片，可以选择进行上传。",
    "There are photos in your drafts; you can choose one to upload.",
);
pub const CHOOSE: Text = t(
    "请选择要上传的照片（草稿箱）",
    "Choose the photo to upload (drafts)",
);
pub const SHOT: Text = t("第 {k} 次拍摄", "Shot {k}");
pub const PAY: Text = t("请使用微信扫码支付", "Scan with WeChat to pay");
pub const PAY_AMOUNT: Text = t("金额：{yuan} 元", "Amount: CNY {yuan}");
pub const PAY_CREATING: Text = t("正在生成支付二维码…", "Creating the payment code…");
pub const FINISHING: Text = t("正在保存，请稍候…", "Saving, please wait…");
pub const DONE: Text = t("完成", "Done");
pub const DONE_DETAIL: Text = t(
    "照片已保存并排队上传，后期统一冲印，现场无需等待。",
    "Your photo is saved and queued for upload; prints are made centrally, no need to wait.",
);
pub const RECEIPT: Text = t("回执编号", "Receipt");
pub const OUT_OF_SERVICE: Text = t("暂停服务", "Out of service");
pub const BACK_IN: Text = t("{s} 秒后返回首页", "Back to start in {s} s");
pub const SECONDS_LEFT: Text = t("剩余 {s} 秒", "{s} s left");
pub const CANCEL: Text = t("[取消]", "[Cancel]");
pub const LANG_TOGGLE: Text = t("[English]", "[中文]");

/// The message of a fixed end notice.
pub fn end_reason(reason: EndReason) -> Text {
    match reason {
        EndReason::WrongInfo => t(
            "如信息有误，请联系学校图采工作部门或现场工作人员",
            "If your details are wrong, please contact your school's photo office or the staff on site",
        ),
        EndReason::Unpaid => t(
            "请先在小程序中完成缴费，再扫码拍摄",
            "Please pay in the mini-program first, then scan again",
        ),
        EndReason::OutOfShots => t(
            "拍摄次数已用完且草稿箱没有照片，请联系工作人员",
            "All shots are used and there is no photo in your drafts; please ask the staff",
        ),
        EndReason::NoPhotoType => t(
            "本机不支持此二维码的拍摄类型，请联系工作人员",
            "This kiosk does not offer the photo type of your code; please ask the staff",
        ),
        EndReason::PaymentDeclined => t(
            "支付未成功，照片已保留在草稿箱，可重新扫码支付",
            "Payment did not go through; your photo stays in your drafts, scan again to pay",
        ),
        EndReason::PaymentFailed => t(
            "暂时无法创建支付订单，照片已保留在草稿箱，请稍后重新扫码",
            "Payment is unavailable right now; your photo stays in your drafts, please scan again later",
        ),
        EndReason::PaymentTimedOut => t(
            "支付超时，照片已保留在草稿箱，可重新扫码支付",
            "Payment timed out; your photo stays in your drafts, scan again to pay",
        ),
    }
}

/// Fills `{name}` placeholders; kept trivial on purpose (no plural rules needed for these texts).
pub fn fill(template: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (key, value) in pairs {
        out = out.replace(&format!("{{{key}}}"), value);
    }
    out
}

/// Shown out of service when the store could not commit the job (the session supplies it as the fault).
pub const STORE_FAILED: Text = t(
    "保存失败，本次照片未提交，草稿箱中的照片仍然保留",
    "Saving failed; the photo was not filed. Photos in your drafts are kept",
);
pub const STORE_FAILED_HINT: Text = t(
    "请联系现场工作人员检查设备",
    "Please ask the staff on site to check the kiosk",
);
