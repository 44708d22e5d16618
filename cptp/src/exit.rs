//! The exit statuses every command of `cptp` shares.

/// All went well (`check`: no rule failed).
pub const SUCCESS: u8 = 0;
/// The command ran and found a fault (`check`: a rule failed; `probe`, `map`: no answer).
pub const FAILURE: u8 = 1;
/// The command line cannot be run.
pub const USAGE: u8 = 2;
