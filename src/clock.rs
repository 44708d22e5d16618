//! The timer of PROTOCOL 3: starts at a random value from 1 to 999 and gains one tick
//! every 10 ms for the life of the process, wrapping at 2^32.
//!
//! One thread owns the ticking. It sets the value from the time elapsed since start
//! rather than adding 1 per wake-up, so a late wake-up never loses ticks and the timer
//! does not drift.

use rand::RngExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the timer gains one.
pub const TICK: Duration = Duration::from_millis(10);

pub struct Clock {
    /// The current timer value, read by any thread.
    ticks: AtomicU32,
    /// The random value the timer started from.
    start_value: u32,
    /// When the timer started.
    started: Instant,
}

impl Clock {
    /// A timer starting at a random value in 1..=999. It does not move until
    /// [`Clock::spawn_ticker`] runs.
    pub fn new() -> Clock {
        Clock::starting_at(rand::rng().random_range(1..=999))
    }

    pub fn starting_at(start_value: u32) -> Clock {
        Clock {
            ticks: AtomicU32::new(start_value),
            start_value,
            started: Instant::now(),
        }
    }

    /// The timer's value now.
    pub fn now(&self) -> u32 {
        self.ticks.load(Ordering::Relaxed)
    }

    /// Starts the thread that ticks the timer until `stop` is set.
    pub fn spawn_ticker(
        self: &Arc<Self>,
        stop: Arc<AtomicBool>,
    ) -> std::io::Result<JoinHandle<()>> {
        let clock = Arc::clone(self);
        thread::Builder::new()
            .name("clock".into())
            .spawn(move || run_clock(&clock, &stop))
    }

    /// Sets the value from the ticks elapsed since start; returns the time of the next tick.
    fn update(&self) -> Instant {
        let (value, next) = schedule(self.start_value, self.started.elapsed());
        self.ticks.store(value, Ordering::Relaxed);
        self.started + next
    }
}

/// The timer's value after `elapsed`, and when (counted from the start) the next tick is
/// due. Only the value wraps at 2^32: the schedule keeps counting, so after about 497 days
/// the next tick is still ahead rather than long past (which would spin the clock thread).
fn schedule(start_value: u32, elapsed: Duration) -> (u32, Duration) {
    let ticks = elapsed.as_nanos() / TICK.as_nanos();
    // Wrapping at 2^32 is the specified behaviour, so truncating is intended.
    let value = start_value.wrapping_add(ticks as u32);
    let next_nanos = (ticks + 1) * TICK.as_nanos();
    let next = Duration::new(
        (next_nanos / 1_000_000_000) as u64,
        (next_nanos % 1_000_000_000) as u32,
    );
    (value, next)
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// The clock thread: wake at each tick boundary and publish the value.
fn run_clock(clock: &Clock, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = clock.update();
        thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_between_1_and_999() {
        for _ in 0..1000 {
            let value = Clock::new().now();
            assert!((1..=999).contains(&value), "{value}");
        }
    }

    #[test]
    fn gains_one_per_10_ms() {
        let clock = Arc::new(Clock::starting_at(100));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = clock.spawn_ticker(Arc::clone(&stop)).unwrap();
        // Wait until the elapsed time says at least 20 ticks, with a deadline.
        let deadline = Instant::now() + Duration::from_secs(10);
        while clock.now() < 120 && Instant::now() < deadline {
            thread::sleep(TICK);
        }
        let elapsed_ticks = (clock.started.elapsed().as_millis() / 10) as u32;
        let value = clock.now();
        stop.store(true, Ordering::Relaxed);
        ticker.join().unwrap();
        assert!(value >= 120, "timer stuck at {value}");
        // The value never runs ahead of the time elapsed.
        assert!(
            value - 100 <= elapsed_ticks,
            "{value} after {elapsed_ticks} ticks"
        );
    }

    #[test]
    fn the_clock_thread_sleeps_until_a_tick_ahead() {
        let clock = Clock::starting_at(5);
        let next = clock.update();
        let now = Instant::now();
        assert!(next > now, "the next tick is in the past");
        assert!(
            next - now <= TICK,
            "the next tick is more than one tick away"
        );
    }

    #[test]
    fn the_value_wraps_at_2_pow_32() {
        // Started 3 ticks before the wrap, 5 ticks ago.
        let (value, _) = schedule(u32::MAX - 2, TICK * 5);
        assert_eq!(value, 2);
        let clock = Clock::starting_at(u32::MAX);
        thread::sleep(TICK * 2);
        clock.update();
        assert!(clock.now() < 100, "{}", clock.now());
    }

    #[test]
    fn the_next_tick_is_always_ahead_even_after_2_pow_32_ticks() {
        let wrap = TICK * (1 << 16) * (1 << 16);
        for elapsed in [
            Duration::ZERO,
            TICK * 7 + Duration::from_millis(3),
            wrap - Duration::from_millis(1),
            wrap + Duration::from_millis(5),
            wrap * 3 + TICK * 2,
        ] {
            let (_, next) = schedule(1, elapsed);
            assert!(next > elapsed, "next {next:?} not after {elapsed:?}");
            assert!(
                next - elapsed <= TICK,
                "next {next:?} too far after {elapsed:?}"
            );
        }
        let (value, next) = schedule(10, wrap + Duration::from_millis(5));
        assert_eq!((value, next), (10, wrap + TICK));
    }
}
