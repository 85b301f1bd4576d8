//! Read-only counters for operators: sessions and their outcomes, shots checked and passed, failures
//! per check, per day (`/v1/stats`) and in total (`/metrics`).
//!
//! Everything is computed from the rows the kiosk already keeps (sessions, shots, check_results), so
//! there is no counter to drift from the truth and nothing new to migrate. What it deliberately does
//! not do: write anything, or know anything about tickets beyond counts (no ids leave this module).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Store, StoreError};

/// One day's counters. Days are calendar days at `utc_offset_secs` (China is +8 h).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DayStats {
    /// `YYYY-MM-DD`.
    pub day: String,
    /// Sessions that ended that day, by outcome code ("completed", "timed_out", "rejected:expired", ...).
    pub sessions: BTreeMap<String, u64>,
    pub shots_checked: u64,
    pub shots_passed: u64,
    /// `shots_passed / shots_checked`, absent when nothing was checked.
    pub pass_rate: Option<f64>,
    /// Shots on which each check failed.
    pub failures_by_check: BTreeMap<String, u64>,
}

/// All-time counters, for Prometheus counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub sessions: BTreeMap<String, u64>,
    pub shots_checked: u64,
    pub shots_passed: u64,
    pub failures_by_check: BTreeMap<String, u64>,
}

fn count(n: i64) -> u64 {
    n.max(0).unsigned_abs()
}

impl Store {
    /// Counters per day for everything that happened at or after `since_unix`, oldest day first.
    pub fn stats_by_day(&self, since_unix: i64, utc_offset_secs: i64) -> Result<Vec<DayStats>, StoreError> {
        let off = format!("{utc_offset_secs} seconds");
        self.read(|tx| {
            let mut days: BTreeMap<String, DayStats> = BTreeMap::new();
            let day = |d: String| -> DayStats {
                DayStats {
                    day: d,
                    ..DayStats::default()
                }
            };
            let mut stmt = tx.prepare_cached(
                "SELECT date(ended_at, 'unixepoch', ?2), outcome, count(*) FROM sessions \
                 WHERE ended_at IS NOT NULL AND ended_at >= ?1 GROUP BY 1, 2",
            )?;
            for row in stmt.query_map(rusqlite::params![since_unix, off], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })? {
                let (d, outcome, n) = row?;
                days.entry(d.clone())
                    .or_insert_with(|| day(d))
                    .sessions
                    .insert(outcome, count(n));
            }
            let mut stmt = tx.prepare_cached(
                "SELECT date(checked_at, 'unixepoch', ?2), count(*), coalesce(sum(passed), 0) FROM shots \
                 WHERE checked_at IS NOT NULL AND checked_at >= ?1 GROUP BY 1",
            )?;
            for row in stmt.query_map(rusqlite::params![since_unix, off], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })? {
                let (d, checked, passed) = row?;
                let e = days.entry(d.clone()).or_insert_with(|| day(d));
                e.shots_checked = count(checked);
                e.shots_passed = count(passed);
            }
            let mut stmt = tx.prepare_cached(
                "SELECT date(s.checked_at, 'unixepoch', ?2), c.check_id, count(*) \
                 FROM check_results c JOIN shots s USING (ticket_id, shot_no) \
                 WHERE c.status = 'fail' AND s.checked_at >= ?1 GROUP BY 1, 2",
            )?;
            for row in stmt.query_map(rusqlite::params![since_unix, off], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })? {
                let (d, check, n) = row?;
                days.entry(d.clone())
                    .or_insert_with(|| day(d))
                    .failures_by_check
                    .insert(check, count(n));
            }
            Ok(days
                .into_values()
                .map(|mut d| {
                    d.pass_rate =
                        (d.shots_checked > 0).then(|| d.shots_passed as f64 / d.shots_checked as f64);
                    d
                })
                .collect())
        })
    }

    /// Counters since the database was created.
    pub fn stats_totals(&self) -> Result<Totals, StoreError> {
        self.read(|tx| {
            let mut t = Totals::default();
            let mut stmt = tx.prepare_cached(
                "SELECT outcome, count(*) FROM sessions WHERE outcome IS NOT NULL GROUP BY 1",
            )?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (o, n) = row?;
                t.sessions.insert(o, count(n));
            }
            let (checked, passed): (i64, i64) = tx.query_row(
                "SELECT count(*), coalesce(sum(passed), 0) FROM shots WHERE checked_at IS NOT NULL",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            t.shots_checked = count(checked);
            t.shots_passed = count(passed);
            let mut stmt = tx.prepare_cached(
                "SELECT check_id, count(*) FROM check_results WHERE status = 'fail' GROUP BY 1",
            )?;
            for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
                let (c, n) = row?;
                t.failures_by_check.insert(c, count(n));
            }
            Ok(t)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_counted_per_day_and_outcome() {
        let store = Store::open_in_memory().unwrap();
        // 2026-06-01 10:00 and 2026-06-02 10:00 in China (+8 h).
        let d1 = 1_780_279_200;
        let d2 = d1 + 86_400;
        for (at, outcome) in [(d1, "completed"), (d1 + 60, "timed_out"), (d2, "completed")] {
            let s = store.begin_session(at).unwrap();
            store.end_session(s, None, outcome, at + 30).unwrap();
        }
        let days = store.stats_by_day(0, 8 * 3600).unwrap();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].day, "2026-06-01");
        assert_eq!(days[0].sessions["completed"], 1);
        assert_eq!(days[0].sessions["timed_out"], 1);
        assert_eq!(days[1].sessions["completed"], 1);
        assert_eq!(days[0].pass_rate, None);
        let t = store.stats_totals().unwrap();
        assert_eq!(t.sessions["completed"], 2);
        assert_eq!(store.stats_by_day(d2, 8 * 3600).unwrap().len(), 1);
    }
}
