//! The session state machine (PRODUCT.md section 2). Pure: time is passed in, effects come out, no IO.
