//! `kiosk`: the kiosk's main program.
fn main() {}
