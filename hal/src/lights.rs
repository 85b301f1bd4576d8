//! The studio lights: two key lights at 45 degrees and a background light, driven by mode.
//!
//! The caller picks a [`LightMode`]; the mode-to-levels table is configuration
//! ([`LightTable`]), not code, because every booth is calibrated on site. Shaped for PWM via
//! rppal and for a dimmer controller on Modbus. Deliberately no PWM frequency, channel number or
//! gamma curve in the API: levels are permille of full output and the driver maps them.

use thiserror::Error;

use crate::{Error, Millis};

/// What the lights are for right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LightMode {
    /// Everything off (service, power saving).
    Off,
    /// Attract screen: low light.
    Idle,
    /// Live preview and framing without glasses.
    Preview,
    /// Live preview for a student wearing glasses: key lights dimmed so that the preview shows
    /// the lens reflections the shot will have.
    PreviewGlasses,
    /// The shot.
    Shoot,
    /// The shot for a student wearing glasses: key lights dimmed (and re-aimed, on booths whose
    /// upper key heads are separate channels mapped by the driver) to keep reflections off the
    /// lenses.
    ShootGlasses,
}

/// Output per channel in permille of full power (0-1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChannelLevels {
    /// The left key light.
    pub key_left: u16,
    /// The right key light.
    pub key_right: u16,
    /// The backdrop light.
    pub background: u16,
}

impl ChannelLevels {
    /// All channels off.
    pub const OFF: ChannelLevels = ChannelLevels {
        key_left: 0,
        key_right: 0,
        background: 0,
    };

    fn max_channel(self) -> u16 {
        self.key_left.max(self.key_right).max(self.background)
    }
}

/// A level above 1000 permille in the light table.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("light level {level} permille in mode {mode:?} is above 1000")]
pub struct LightTableError {
    /// The offending mode.
    pub mode: LightMode,
    /// The offending level.
    pub level: u16,
}

/// The configured levels for every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LightTable {
    /// Levels for [`LightMode::Off`]; normally all zero.
    pub off: ChannelLevels,
    /// Levels for [`LightMode::Idle`].
    pub idle: ChannelLevels,
    /// Levels for [`LightMode::Preview`].
    pub preview: ChannelLevels,
    /// Levels for [`LightMode::PreviewGlasses`].
    pub preview_glasses: ChannelLevels,
    /// Levels for [`LightMode::Shoot`].
    pub shoot: ChannelLevels,
    /// Levels for [`LightMode::ShootGlasses`].
    pub shoot_glasses: ChannelLevels,
}

impl Default for LightTable {
    /// A plausible starting point before on-site calibration: equal keys so the face is evenly
    /// lit (no 阴阳脸), glasses modes with the keys about a quarter lower and the backdrop
    /// unchanged so the background colour stays on spec.
    fn default() -> Self {
        let lv = |k: u16, b: u16| ChannelLevels {
            key_left: k,
            key_right: k,
            background: b,
        };
        LightTable {
            off: ChannelLevels::OFF,
            idle: lv(150, 300),
            preview: lv(600, 700),
            preview_glasses: lv(450, 700),
            shoot: lv(900, 800),
            shoot_glasses: lv(680, 800),
        }
    }
}

impl LightTable {
    /// The levels for a mode.
    pub fn levels(&self, mode: LightMode) -> ChannelLevels {
        match mode {
            LightMode::Off => self.off,
            LightMode::Idle => self.idle,
            LightMode::Preview => self.preview,
            LightMode::PreviewGlasses => self.preview_glasses,
            LightMode::Shoot => self.shoot,
            LightMode::ShootGlasses => self.shoot_glasses,
        }
    }

    /// Checks that no level exceeds 1000 permille; run when loading config.
    pub fn validate(&self) -> Result<(), LightTableError> {
        const MODES: [LightMode; 6] = [
            LightMode::Off,
            LightMode::Idle,
            LightMode::Preview,
            LightMode::PreviewGlasses,
            LightMode::Shoot,
            LightMode::ShootGlasses,
        ];
        for mode in MODES {
            let level = self.levels(mode).max_channel();
            if level > 1000 {
                return Err(LightTableError { mode, level });
            }
        }
        Ok(())
    }
}

/// The booth lights.
pub trait Lights {
    /// The driver's error.
    type Error: Error;

    /// Switches to a mode; the driver applies the configured levels.
    fn set_mode(&mut self, mode: LightMode, now: Millis) -> Result<(), Self::Error>;

    /// The levels last applied successfully.
    fn levels(&self) -> ChannelLevels;
}

impl<T: Lights + ?Sized> Lights for &mut T {
    type Error = T::Error;

    fn set_mode(&mut self, mode: LightMode, now: Millis) -> Result<(), Self::Error> {
        T::set_mode(self, mode, now)
    }

    fn levels(&self) -> ChannelLevels {
        T::levels(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_table_is_valid_and_glasses_dim_the_keys() {
        let t = LightTable::default();
        assert_eq!(t.validate(), Ok(()));
        assert!(t.shoot_glasses.key_left < t.shoot.key_left);
        assert!(t.preview_glasses.key_right < t.preview.key_right);
        assert_eq!(t.shoot_glasses.background, t.shoot.background);
        assert_eq!(t.levels(LightMode::Off), ChannelLevels::OFF);
    }

    #[test]
    fn validate_names_the_mode_over_1000() {
        let mut t = LightTable::default();
        t.shoot.background = 1001;
        assert_eq!(
            t.validate(),
            Err(LightTableError {
                mode: LightMode::Shoot,
                level: 1001
            })
        );
    }
}
