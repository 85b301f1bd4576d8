//! Compiles the Slint markup (`slint/kiosk.slint`) with the English translation bundled into the binary
//! (`translations/en/LC_MESSAGES/ui.po`; the source strings are Chinese). No translation context: a
//! text reads the same on every screen.
fn main() {
    let config = slint_build::CompilerConfiguration::new()
        .with_bundled_translations(concat!(env!("CARGO_MANIFEST_DIR"), "/translations"))
        .with_default_translation_context(slint_build::DefaultTranslationContext::None)
        // Element debug info lets tests (and assistive tooling) find elements by accessible label.
        .with_debug_info(true);
    slint_build::compile_with_config("slint/kiosk.slint", config).expect("Slint markup compiles");
}
