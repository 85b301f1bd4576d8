//! Pictures for the screen (`Kiosk::take_pictures`): live previews only while the screen shows the
//! camera, downscaled and paced at 25 a second at most; the standardized photo of a checked shot; and
//! `ClearShots` when the session ends. Real shell, store and checks on simulated devices.

mod sim_kiosk;

use std::time::Duration;

use kiosk::session::StateKind;
use sim_kiosk::Rig;
use ui::{Intent, Picture};

fn previews(p: &[Picture]) -> Vec<&ui::RgbImage> {
    p.iter()
        .filter_map(|p| match p {
            Picture::Preview(img) => Some(img),
            _ => None,
        })
        .collect()
}

#[test]
fn previews_follow_the_camera_screens_and_shots_are_shown_then_cleared() {
    let mut r = Rig::new(|_| {});
    // Nobody asked for pictures yet: none are made (the headless demo pays nothing).
    r.ui(Intent::Start);
    r.run_for(Duration::from_millis(200), |_| {});
    assert!(r.k.take_pictures().is_empty(), "no pictures before a screen asks");

    // The scan screen shows the camera: at most one preview per take, at most 25 a second.
    let mut r = Rig::new(|_| {});
    assert!(r.k.take_pictures().is_empty());
    r.run_for(Duration::from_millis(400), |_| {});
    assert!(
        previews(&r.k.take_pictures()).is_empty(),
        "the attract screen shows no camera"
    );
    // The student has not raised the phone yet: the scan screen shows them, no code.
    r.scan_set = "shots";
    r.ui(Intent::Start);
    assert_eq!(r.state(), StateKind::Scan);
    let mut shown = 0usize;
    let mut sizes = Vec::new();
    r.run_for(Duration::from_secs(1), |r| {
        let pics = r.k.take_pictures();
        let p = previews(&pics);
        assert!(p.len() <= 1, "at most one preview per tick");
        if r.state() == StateKind::Scan {
            shown += p.len();
            sizes.extend(p.iter().map(|i| (i.width, i.height, i.pixels.len())));
        }
    });
    assert!(
        (20..=26).contains(&shown),
        "the scan screen at the camera's 25 frames a second: {shown}"
    );
    for (w, h, len) in &sizes {
        assert!(*w <= 960 && *h <= 960, "{w}x{h}");
        assert_eq!(*len, (*w * *h * 3) as usize);
    }
    assert_eq!(sizes[0].0, 960, "a 1080p frame is halved");

    // The phone is raised; past the scan the screens show no camera until framing.
    r.scan_set = "scan";
    r.run_until(StateKind::Confirm, Duration::from_secs(5));
    r.k.take_pictures();
    r.run_for(Duration::from_millis(300), |_| {});
    assert!(
        previews(&r.k.take_pictures()).is_empty(),
        "confirm shows no camera"
    );
    r.ui(Intent::Confirm);
    r.ui(Intent::Next);
    r.ui(Intent::Lighting { glasses: false });
    r.ui(Intent::AcceptRules);
    assert_eq!(r.state(), StateKind::Framing);
    let mut framing_previews = 0usize;
    r.run_for(Duration::from_secs(1), |r| {
        framing_previews += previews(&r.k.take_pictures()).len();
    });
    // Every new camera frame (this rig's camera runs at 25 frames a second) goes to the screen; a
    // one-second window can hold 26 frame starts.
    assert!(
        (20..=26).contains(&framing_previews),
        "framing at the camera's 25 frames a second: {framing_previews}"
    );

    // A shot: its standardized photo arrives as it would be filed.
    r.ui(Intent::Shoot);
    let mut shot = None;
    r.run_for(Duration::from_secs(6), |r| {
        for p in r.k.take_pictures() {
            if let Picture::Shot { shot_no, image } = p {
                shot = Some((shot_no, image));
            }
        }
    });
    assert_eq!(r.state(), StateKind::Result);
    let (shot_no, image) = shot.expect("the standardized photo of the shot");
    assert_eq!(shot_no, 1);
    assert_eq!((image.width, image.height), (480, 640), "the spec's size");
    // The photo is a real picture, not a blank: the backdrop is light blue at the top corners.
    let px = &image.pixels[..3];
    assert!(px[2] > px[0], "backdrop blue at the corner: {px:?}");

    // The session ends: the screen is told to forget the shots.
    r.ui(Intent::Cancel);
    assert_eq!(r.state(), StateKind::Attract);
    let pics = r.k.take_pictures();
    assert!(pics.contains(&Picture::ClearShots), "{}", pics.len());
}
