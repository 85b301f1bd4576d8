//! Decoding QR codes from camera frames with `rqrr`.
