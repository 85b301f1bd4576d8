//! Kiosk configuration (TOML).
