//! A simulated light controller that records every mode it was set to.
//!
//! Lets tests assert "the shot was taken under ShootGlasses". Deliberately no fading or
//! warm-up: a real dimmer's ramp is not something the session reasons about.

use std::convert::Infallible;

use crate::{ChannelLevels, LightMode, LightTable, Lights, Millis};

/// Simulated lights with a mode history.
#[derive(Debug, Clone)]
pub struct SimLights {
    table: LightTable,
    mode: LightMode,
    levels: ChannelLevels,
    history: Vec<(Millis, LightMode)>,
}

impl SimLights {
    /// Lights using `table`, starting off.
    pub fn new(table: LightTable) -> SimLights {
        SimLights {
            table,
            mode: LightMode::Off,
            levels: table.off,
            history: Vec::new(),
        }
    }

    /// The current mode.
    pub fn mode(&self) -> LightMode {
        self.mode
    }

    /// Every `set_mode` call, in order, with its time.
    pub fn history(&self) -> &[(Millis, LightMode)] {
        &self.history
    }

    /// The mode in force at `t` according to the history (Off before the first call).
    pub fn mode_at(&self, t: Millis) -> LightMode {
        self.history
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(LightMode::Off, |(_, m)| *m)
    }
}

impl Default for SimLights {
    fn default() -> Self {
        SimLights::new(LightTable::default())
    }
}

impl Lights for SimLights {
    type Error = Infallible;

    fn set_mode(&mut self, mode: LightMode, now: Millis) -> Result<(), Infallible> {
        self.mode = mode;
        self.levels = self.table.levels(mode);
        self.history.push((now, mode));
        Ok(())
    }

    fn levels(&self) -> ChannelLevels {
        self.levels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_table_per_mode_and_history_is_kept() {
        let table = LightTable::default();
        let mut l = SimLights::new(table);
        assert_eq!(l.levels(), ChannelLevels::OFF);
        let modes = [
            LightMode::Idle,
            LightMode::Preview,
            LightMode::PreviewGlasses,
            LightMode::Shoot,
            LightMode::ShootGlasses,
            LightMode::Off,
        ];
        for (i, m) in modes.into_iter().enumerate() {
            let t = Millis(u64::try_from(i).unwrap_or(0) * 100);
            assert_eq!(l.set_mode(m, t), Ok(()));
            assert_eq!(l.levels(), table.levels(m));
            assert_eq!(l.mode(), m);
        }
        assert_eq!(l.history().len(), 6);
        assert_eq!(l.mode_at(Millis(350)), LightMode::Shoot);
        assert_eq!(l.mode_at(Millis(0)), LightMode::Idle);
    }
}
