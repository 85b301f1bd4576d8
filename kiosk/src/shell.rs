//! The shell: wires devices, the store, the checks and the UI to the pure session. The only module with IO.
