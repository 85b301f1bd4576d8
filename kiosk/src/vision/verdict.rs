//! The outcome of the checks on one photo: per check a measured value, its limit, a status and a message
//! in Chinese and English with the guidance to fix it.

use serde::Serialize;

/// Outcome of one check. A check that cannot be measured is `Undetermined`, never `Pass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Worth telling the student, but does not reject the photo.
    Advisory,
    /// Could not be measured on this image; blocks a pass.
    Undetermined,
}

/// One check on one image.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckResult {
    /// Stable id, e.g. `single_face`, `framing`, `roll` (PRODUCT.md section 3; the labelled corpora use them).
    pub id: &'static str,
    pub status: CheckStatus,
    /// Measured value in the check's unit; `None` when undetermined.
    pub value: Option<f64>,
    /// Human-readable limit, e.g. `"== 1"` or `"<= 8 deg"`.
    pub limit: String,
    pub message_zh: String,
    pub message_en: String,
    /// How the student fixes it; empty on a pass.
    pub guidance_zh: String,
    pub guidance_en: String,
}

impl CheckResult {
    /// The same check, marked as not measurable (its message stays; the value is dropped).
    pub fn undetermined(mut self) -> CheckResult {
        self.status = CheckStatus::Undetermined;
        self.value = None;
        self
    }
}

/// Every check run on one image.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    pub checks: Vec<CheckResult>,
}

impl Verdict {
    /// A photo passes when no check failed or stayed undetermined. Advisories do not block.
    pub fn passed(&self) -> bool {
        !self.checks.is_empty()
            && self
                .checks
                .iter()
                .all(|c| matches!(c.status, CheckStatus::Pass | CheckStatus::Advisory))
    }

    /// The checks that block a pass, in order.
    pub fn blocking(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(|c| matches!(c.status, CheckStatus::Fail | CheckStatus::Undetermined))
    }

    pub fn get(&self, id: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.id == id)
    }
}
