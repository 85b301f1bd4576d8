//! Tests of `kiosk::runtime`: the search order for the ONNX Runtime library and the models, the
//! error that lists every place looked in, the manifest lookup, and loading ONNX Runtime.
//!
//! The search-order tests build fake trees in temporary directories and need nothing installed. The
//! tests named `setup_*` need `scripts/setup.sh` to have run and fail (never skip) with a message
//! saying so: CI runs the setup first, so a missing file there is a real failure.

use std::fs;
use std::path::{Path, PathBuf};

use kiosk::runtime::{self, ModelSet, RuntimeError, RuntimePaths, SearchContext};

/// A fake set-up tree: `<root>/.runtime/onnxruntime/libonnxruntime.so.1.31.1` and
/// `<root>/models/manifest.toml` naming one model whose file exists.
fn fake_tree(root: &Path) {
    fs::create_dir_all(root.join(".runtime/onnxruntime")).unwrap();
    fs::write(root.join(".runtime/onnxruntime/libonnxruntime.so.1.31.1"), b"").unwrap();
    fs::create_dir_all(root.join("models")).unwrap();
    fs::write(
        root.join("models/manifest.toml"),
        "[models.demo]\nfile = \"demo.onnx\"\nsha256 = \"2C26B46B68FFC68FF99B453C1D30413413422D706483BFA0F98A5E886266E7AE\"\n\
         [models.gone]\nfile = \"gone.onnx\"\nsha256 = \"00\"\n",
    )
    .unwrap();
    // sha256("foo"), given upper-case in the manifest above to check it is compared case-blind.
    fs::write(root.join("models/demo.onnx"), b"foo").unwrap();
}

fn ctx(cwd: Option<PathBuf>, exe: Option<PathBuf>) -> SearchContext {
    SearchContext {
        cwd,
        exe,
        ..SearchContext::default()
    }
}

#[test]
fn locate_walks_up_from_a_subdirectory_of_the_repo() {
    let tmp = tempfile::tempdir().unwrap();
    fake_tree(tmp.path());
    let deep = tmp.path().join("kiosk/src/vision");
    fs::create_dir_all(&deep).unwrap();
    let paths = RuntimePaths::locate_in(&ctx(Some(deep), None)).unwrap();
    assert_eq!(
        paths.ort_dylib(),
        tmp.path().join(".runtime/onnxruntime/libonnxruntime.so.1.31.1")
    );
    assert_eq!(paths.models_dir(), tmp.path().join("models"));
}

#[test]
fn locate_prefers_the_unversioned_symlink_name() {
    let tmp = tempfile::tempdir().unwrap();
    fake_tree(tmp.path());
    fs::write(tmp.path().join(".runtime/onnxruntime/libonnxruntime.so"), b"").unwrap();
    let paths = RuntimePaths::locate_in(&ctx(Some(tmp.path().into()), None)).unwrap();
    assert_eq!(
        paths.ort_dylib(),
        tmp.path().join(".runtime/onnxruntime/libonnxruntime.so")
    );
}

#[test]
fn locate_finds_files_relative_to_the_executable() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    fake_tree(&repo);
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    // `..` is resolved by the kernel, so the executable's directory must exist, as it does for real.
    let exe = repo.join("target/debug/kiosk");
    fs::create_dir_all(exe.parent().unwrap()).unwrap();
    let paths = RuntimePaths::locate_in(&ctx(Some(elsewhere), Some(exe))).unwrap();
    assert!(paths.ort_dylib().is_file());
    assert!(paths.models_dir().join("manifest.toml").is_file());
    assert!(paths.models_dir().starts_with(repo.join("target/debug")));
}

#[test]
fn locate_finds_an_installed_prefix() {
    let tmp = tempfile::tempdir().unwrap();
    let prefix = tmp.path().join("opt/kiosk");
    fs::create_dir_all(prefix.join("lib/kiosk")).unwrap();
    fs::write(prefix.join("lib/kiosk/libonnxruntime.so"), b"").unwrap();
    fs::create_dir_all(prefix.join("share/kiosk/models")).unwrap();
    fs::write(prefix.join("share/kiosk/models/manifest.toml"), "").unwrap();
    fs::create_dir_all(prefix.join("bin")).unwrap();
    let paths = RuntimePaths::locate_in(&ctx(None, Some(prefix.join("bin/kiosk")))).unwrap();
    assert!(paths.ort_dylib().ends_with("lib/kiosk/libonnxruntime.so"));
    assert!(paths.models_dir().ends_with("share/kiosk/models"));
}

#[test]
fn locate_finds_a_bundle_kept_under_share() {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("opt/kiosk/share/kiosk");
    fs::create_dir_all(share.join("onnxruntime")).unwrap();
    fs::write(share.join("onnxruntime/libonnxruntime.so.1.31.1"), b"").unwrap();
    fs::create_dir_all(share.join("models")).unwrap();
    fs::write(share.join("models/manifest.toml"), "").unwrap();
    fs::create_dir_all(tmp.path().join("opt/kiosk/bin")).unwrap();
    let exe = tmp.path().join("opt/kiosk/bin/kiosk");
    let paths = RuntimePaths::locate_in(&ctx(None, Some(exe))).unwrap();
    assert!(
        paths
            .ort_dylib()
            .ends_with("share/kiosk/onnxruntime/libonnxruntime.so.1.31.1")
    );
    assert!(paths.models_dir().ends_with("share/kiosk/models"));
}

#[test]
fn locate_uses_system_directories_last() {
    let tmp = tempfile::tempdir().unwrap();
    let sys_lib = tmp.path().join("usr/lib/kiosk");
    let sys_models = tmp.path().join("usr/share/kiosk/models");
    fs::create_dir_all(&sys_lib).unwrap();
    fs::write(sys_lib.join("libonnxruntime.so.1.31.1"), b"").unwrap();
    fs::create_dir_all(&sys_models).unwrap();
    fs::write(sys_models.join("manifest.toml"), "").unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let c = SearchContext {
        system: vec![(sys_lib.clone(), sys_models.clone())],
        ..ctx(Some(empty), None)
    };
    let paths = RuntimePaths::locate_in(&c).unwrap();
    assert_eq!(paths.ort_dylib(), sys_lib.join("libonnxruntime.so.1.31.1"));
    assert_eq!(paths.models_dir(), sys_models);
}

#[test]
fn locate_error_names_every_place_and_the_setup_script() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("a/b");
    fs::create_dir_all(&empty).unwrap();
    let c = SearchContext {
        system: vec![("/nonexistent/lib".into(), "/nonexistent/models".into())],
        ..ctx(Some(empty.clone()), Some(tmp.path().join("bin/kiosk")))
    };
    let err = RuntimePaths::locate_in(&c).unwrap_err();
    let RuntimeError::NotFound { searched, .. } = &err else {
        panic!("expected NotFound, got {err:?}");
    };
    // Ancestors of the cwd, two places next to the executable, the system directory.
    assert!(searched.contains(&empty.join(".runtime/onnxruntime")));
    assert!(searched.contains(&tmp.path().join(".runtime/onnxruntime")));
    assert!(searched.contains(&tmp.path().join("bin/../lib/kiosk")));
    assert!(searched.contains(&tmp.path().join("bin/../share/kiosk/onnxruntime")));
    assert_eq!(searched.last().unwrap(), Path::new("/nonexistent/lib"));
    let msg = err.to_string();
    assert!(msg.contains("run scripts/setup.sh"), "{msg}");
    assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
    for p in searched {
        assert!(msg.contains(&p.display().to_string()), "{msg} lacks {p:?}");
    }
}

#[test]
fn locate_reports_missing_models_separately_from_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    fake_tree(tmp.path());
    fs::remove_file(tmp.path().join("models/manifest.toml")).unwrap();
    let err = RuntimePaths::locate_in(&ctx(Some(tmp.path().into()), None)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("models/manifest.toml"), "{msg}");
    assert!(msg.contains("KIOSK_MODELS_DIR"), "{msg}");
}

#[test]
fn overrides_win_and_a_bad_override_is_an_error_not_a_fallback() {
    let tmp = tempfile::tempdir().unwrap();
    fake_tree(tmp.path());
    let other = tmp.path().join("other");
    fake_tree(&other);
    let c = SearchContext {
        ort_override: Some(other.join(".runtime/onnxruntime/libonnxruntime.so.1.31.1")),
        models_override: Some(other.join("models")),
        ..ctx(Some(tmp.path().into()), None)
    };
    let paths = RuntimePaths::locate_in(&c).unwrap();
    assert!(paths.ort_dylib().starts_with(&other));
    assert!(paths.models_dir().starts_with(&other));

    let bad = SearchContext {
        ort_override: Some(tmp.path().join("no/such/lib.so")),
        ..ctx(Some(tmp.path().into()), None)
    };
    let err = RuntimePaths::locate_in(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::BadOverride {
                env: "ORT_DYLIB_PATH",
                ..
            }
        ),
        "{err:?}"
    );

    let bad = SearchContext {
        models_override: Some(tmp.path().join(".runtime")),
        ..ctx(Some(tmp.path().into()), None)
    };
    let err = RuntimePaths::locate_in(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::BadOverride {
                env: "KIOSK_MODELS_DIR",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn model_set_looks_up_by_name_and_checks_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    fake_tree(tmp.path());
    let set = ModelSet::load(&tmp.path().join("models")).unwrap();
    assert_eq!(set.names().collect::<Vec<_>>(), ["demo", "gone"]);
    assert_eq!(set.path("demo").unwrap(), tmp.path().join("models/demo.onnx"));
    set.verify("demo").unwrap();

    let err = set.path("gone").unwrap_err();
    assert!(matches!(err, RuntimeError::ModelMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("run scripts/setup.sh"));

    let err = set.path("nope").unwrap_err();
    assert!(err.to_string().contains("demo, gone"), "{err}");

    fs::write(tmp.path().join("models/demo.onnx"), b"bar").unwrap();
    let err = set.verify("demo").unwrap_err();
    assert!(matches!(err, RuntimeError::HashMismatch { .. }), "{err:?}");
}

#[test]
fn model_set_rejects_a_malformed_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("manifest.toml"), "[models.x]\nfile = 3\n").unwrap();
    let err = ModelSet::load(tmp.path()).unwrap_err();
    assert!(matches!(err, RuntimeError::Manifest { .. }), "{err:?}");
}

/// What a test needing the real files says when they are absent.
fn setup_paths() -> RuntimePaths {
    RuntimePaths::locate().unwrap_or_else(|e| {
        panic!("this test needs the files of scripts/setup.sh (run it from the repo first): {e}")
    })
}

#[test]
fn setup_files_are_found_from_the_test_directory() {
    let paths = setup_paths();
    assert!(paths.ort_dylib().is_file(), "{paths:?}");
    let models = paths.models().unwrap();
    for name in [
        runtime::FACE_DETECTION_FULL_RANGE,
        runtime::FACE_LANDMARK,
        runtime::IRIS_LANDMARK,
        runtime::FACE_DETECTION_FRONT_128,
    ] {
        let p = models
            .path(name)
            .unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh)"));
        assert!(p.is_file());
    }
    // One hash in Rust as well, so the Rust and the script agree on what the manifest means.
    models.verify(runtime::FACE_DETECTION_FULL_RANGE).unwrap();
}

#[test]
fn setup_ort_initialises_once_and_again_is_a_no_op() {
    let paths = setup_paths();
    runtime::init_ort(&paths).unwrap_or_else(|e| panic!("{e}"));
    runtime::init_ort(&paths).unwrap();
    // A second call with another path does not try to load it: one library per process.
    runtime::init_ort(&RuntimePaths::new(
        "/nonexistent/libonnxruntime.so",
        "/nonexistent",
    ))
    .unwrap();
    assert!(runtime::environment().is_ok());
}

#[test]
fn errors_and_models_can_cross_threads() {
    // Binaries wrap these errors in anyhow (Send + Sync) and the shell runs vision on a worker
    // thread; a non-Send field sneaking in would only show up there, so check it here.
    fn send_sync<T: Send + Sync + 'static>() {}
    fn send<T: Send + 'static>() {}
    send_sync::<RuntimeError>();
    send_sync::<kiosk::vision::DetectError>();
    send::<kiosk::vision::FaceDetector>();
    send::<kiosk::vision::FaceMesh>();
}
