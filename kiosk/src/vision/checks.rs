//! The individual checks: each turns a measurement into a [`CheckResult`] with value, limit, status and
//! a Chinese and English message with the guidance to fix it.
//!
//! Functions here are pure and cheap; measuring (models, pixels) happens in the analyzer. A check whose
//! measurement is missing returns `Undetermined`, never `Pass`.

use super::geometry::{CropPlan, FramingProblem};
use super::standardize::StandardizeError;
use super::verdict::{CheckResult, CheckStatus};

fn result(
    id: &'static str,
    status: CheckStatus,
    value: Option<f64>,
    limit: impl Into<String>,
    (message_zh, message_en): (&str, &str),
    (guidance_zh, guidance_en): (&str, &str),
) -> CheckResult {
    let passed = status == CheckStatus::Pass;
    CheckResult {
        id,
        status,
        value,
        limit: limit.into(),
        message_zh: message_zh.to_string(),
        message_en: message_en.to_string(),
        guidance_zh: if passed {
            String::new()
        } else {
            guidance_zh.to_string()
        },
        guidance_en: if passed {
            String::new()
        } else {
            guidance_en.to_string()
        },
    }
}

/// Exactly one face where the photo will be cropped. `faces_in_crop` counts faces whose centre lies in
/// the crop (or in the whole frame when no crop could be planned); faces outside it are only advisory.
pub fn single_face(faces_in_crop: usize, faces_outside: usize) -> CheckResult {
    let n = faces_in_crop as f64;
    match faces_in_crop {
        0 => result(
            "single_face",
            CheckStatus::Fail,
            Some(n),
            "== 1",
            ("未检测到人脸", "No face found"),
            (
                "请正对镜头坐好，露出完整面部",
                "Sit facing the camera with your whole face visible",
            ),
        ),
        1 if faces_outside == 0 => result(
            "single_face",
            CheckStatus::Pass,
            Some(n),
            "== 1",
            ("检测到一张人脸", "One face found"),
            ("", ""),
        ),
        1 => result(
            "single_face",
            CheckStatus::Advisory,
            Some(n),
            "== 1",
            ("画面边缘有其他人", "Someone else is at the edge of the picture"),
            (
                "请确保拍摄时身后没有其他人",
                "Make sure nobody else is behind you when shooting",
            ),
        ),
        _ => result(
            "single_face",
            CheckStatus::Fail,
            Some(n),
            "== 1",
            ("画面中有多张人脸", "More than one face in the photo"),
            (
                "拍摄时画面中只能有本人，请其他人离开",
                "Only you may be in the photo; ask others to step away",
            ),
        ),
    }
}

/// Whether a crop meeting the spec's geometry exists; the value is the smallest slack to a band edge in
/// output pixels.
pub fn framing(plan: Result<&CropPlan, FramingProblem>) -> CheckResult {
    match plan {
        Ok(p) => result(
            "framing",
            CheckStatus::Pass,
            Some(round1(p.slack)),
            ">= 0 px slack",
            ("头部位置和大小合适", "Head position and size are right"),
            ("", ""),
        ),
        Err(problem) => {
            let (zh, en) = match problem {
                FramingProblem::TooFar => ("人脸太小", "The face is too small in the picture"),
                FramingProblem::TooClose => ("人脸太大", "The face is too large in the picture"),
                FramingProblem::TooHigh => ("头部位置太高", "The head is too high in the picture"),
                FramingProblem::TooLow => ("头部位置太低", "The head is too low in the picture"),
                FramingProblem::OffCentre => ("头部没有居中", "The head is not centred"),
                FramingProblem::Proportions => {
                    ("无法按规格裁剪头部", "The head cannot be cropped to the spec")
                }
            };
            result(
                "framing",
                CheckStatus::Fail,
                None,
                ">= 0 px slack",
                (zh, en),
                (problem.guidance_zh(), problem.guidance_en()),
            )
        }
    }
}

/// Head roll from the eye line, in degrees (positive: right eye lower in the picture).
pub fn roll(roll_deg: Option<f64>, max_deg: f64) -> CheckResult {
    let limit = format!("<= {max_deg} deg");
    match roll_deg {
        None => result(
            "roll",
            CheckStatus::Undetermined,
            None,
            limit,
            ("无法测量头部倾斜", "Head tilt could not be measured"),
            ("请正对镜头", "Please face the camera"),
        ),
        Some(r) if r.abs() <= max_deg => result(
            "roll",
            CheckStatus::Pass,
            Some(round1(r)),
            limit,
            ("头部端正", "Head is level"),
            ("", ""),
        ),
        Some(r) => result(
            "roll",
            CheckStatus::Fail,
            Some(round1(r)),
            limit,
            (
                "头部歪斜（双眼不在同一水平线）",
                "Head is tilted (eyes not level)",
            ),
            (
                "请摆正头部，双眼保持水平",
                "Please straighten your head so your eyes are level",
            ),
        ),
    }
}

/// Whether the filed JPEG met the spec's size window at an allowed quality.
pub fn output_file(outcome: Result<(usize, u8), &StandardizeError>, min_kb: u32, max_kb: u32) -> CheckResult {
    let limit = format!("{min_kb}-{max_kb} KB");
    match outcome {
        Ok((bytes, _quality)) => result(
            "output_file",
            CheckStatus::Pass,
            Some(round1(bytes as f64 / 1024.0)),
            limit,
            ("照片文件符合规格", "Photo file meets the spec"),
            ("", ""),
        ),
        Err(e) => {
            let value = match e {
                StandardizeError::TooLarge { size_kb, .. } | StandardizeError::TooSmall { size_kb, .. } => {
                    Some(round1(*size_kb))
                }
                _ => None,
            };
            CheckResult {
                id: "output_file",
                status: CheckStatus::Fail,
                value,
                limit,
                message_zh: "照片文件无法满足规格要求".into(),
                message_en: format!("The photo file cannot meet the spec: {e}"),
                guidance_zh: "请重拍；如仍失败请联系工作人员".into(),
                guidance_en: "Please shoot again; if it fails again, ask the staff".into(),
            }
        }
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_face_counts() {
        assert_eq!(single_face(1, 0).status, CheckStatus::Pass);
        assert_eq!(single_face(0, 0).status, CheckStatus::Fail);
        assert_eq!(single_face(2, 0).status, CheckStatus::Fail);
        assert_eq!(single_face(1, 1).status, CheckStatus::Advisory);
        assert!(single_face(1, 0).guidance_zh.is_empty(), "no guidance on a pass");
    }

    #[test]
    fn roll_limits_and_undetermined() {
        assert_eq!(roll(Some(7.9), 8.0).status, CheckStatus::Pass);
        assert_eq!(roll(Some(-8.1), 8.0).status, CheckStatus::Fail);
        assert_eq!(roll(None, 8.0).status, CheckStatus::Undetermined);
        assert!(!roll(Some(12.0), 8.0).guidance_en.is_empty());
    }

    #[test]
    fn framing_failure_carries_the_guidance() {
        let r = framing(Err(FramingProblem::TooLow));
        assert_eq!(r.status, CheckStatus::Fail);
        assert_eq!(r.guidance_zh, "请把座椅调高一点");
    }
}
