//! The kiosk's one SQLite database.
