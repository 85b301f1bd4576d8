//! View models of the kiosk's screens and their renderers. Decides nothing.
