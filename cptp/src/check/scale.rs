//! One knob for every deadline: `--time-scale`. The contract's times (3 s for the address
//! line, 1 s to free a slot) suit a normal machine; on a loaded grading server or a slow
//! CI runner, scaling them all keeps a conforming peer from failing on time alone.

use std::time::Duration;

/// The factor every deadline of a check is multiplied by (1 = the contract's own times).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale(pub f64);

impl Scale {
    /// `d` times the factor.
    pub fn of(self, d: Duration) -> Duration {
        d.mul_f64(self.0)
    }

    /// `d` times the factor, in seconds for a report: `2 s`, `1.5 s`.
    pub fn secs(self, d: Duration) -> String {
        let s = self.of(d).as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0} s")
        } else {
            format!("{s:.1} s")
        }
    }
}

impl Default for Scale {
    fn default() -> Scale {
        Scale(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_scale_and_read_as_seconds() {
        let twice = Scale(2.0);
        assert_eq!(
            twice.of(Duration::from_millis(1500)),
            Duration::from_secs(3)
        );
        assert_eq!(twice.secs(Duration::from_secs(1)), "2 s");
        assert_eq!(Scale(1.5).secs(Duration::from_secs(1)), "1.5 s");
    }
}
