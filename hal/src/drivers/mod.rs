//! The real Linux drivers: the seat-and-lights controller over Modbus RTU (serialport), the seat
//! relays, lights PWM and buttons on a Raspberry Pi (rppal), the serial barcode scanner, and the
//! UVC camera (nokhwa over V4L2).
//!
//! Each implements a trait of this crate and keeps its hardware behind a small seam (a serial port,
//! a pin trait) so that its logic is tested here without the hardware: serial drivers over a pty,
//! GPIO drivers against scripted fake pins. Deliberately no configuration parsing (the kiosk's
//! factory builds these from its TOML) and no clock reads in the drivers' logic.

pub mod camera;
pub mod gpio;
pub mod modbus_master;
pub mod scanner;
pub mod serial_controller;

pub use modbus_master::{ModbusConfig, ModbusError, ModbusMaster, ModbusStats};
pub use scanner::{ScannerError, SerialScanner};
pub use serial_controller::{
    ControllerSetup, ModbusLights, ModbusSeat, SerialLightsError, SerialSeatError, SharedMaster,
};
