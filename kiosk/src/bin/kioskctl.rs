//! `kioskctl`: the technician's and operator's command-line tool.
fn main() {}
