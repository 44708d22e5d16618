//! The few ways `cptp` writes things for people: bytes in hex, long lists cut short, and
//! text made safe for XML (the JUnit report and the map's SVG). What a student's peer
//! sends or prints can be anything, of any length, so every report goes through here.

use std::fmt::Display;

/// Bytes as upper-case hex pairs: `E0 20 00 05`.
pub fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02X}")).collect();
    pairs.join(" ")
}

/// The first `shown` bytes in hex, and how many more there are.
pub fn short_hex(bytes: &[u8], shown: usize) -> String {
    match bytes.len().checked_sub(shown) {
        Some(more) if more > 0 => format!("{} ... and {more} more", hex(&bytes[..shown])),
        _ => hex(bytes),
    }
}

/// The first `shown` items, comma-separated, and how many more there are:
/// `a, b, c, ... and 5 more`.
pub fn first<T: Display>(items: &[T], shown: usize) -> String {
    let mut words: Vec<String> = items.iter().take(shown).map(ToString::to_string).collect();
    if items.len() > shown {
        words.push(format!("... and {} more", items.len() - shown));
    }
    words.join(", ")
}

/// Escapes the five markup characters and replaces the characters XML 1.0 cannot hold
/// (and the control characters it only tolerates) with U+FFFD; tab and newlines stay.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_things_are_cut_with_a_count() {
        assert_eq!(short_hex(&[0xE0, 0x20], 64), "E0 20");
        let long = short_hex(&[0xAB; 100], 64);
        assert!(long.ends_with("AB ... and 36 more"), "{long}");
        assert_eq!(first(&[1, 2, 3], 3), "1, 2, 3");
        assert_eq!(first(&[1, 2, 3, 4, 5], 2), "1, 2, ... and 3 more");
        assert_eq!(first::<u8>(&[], 2), "");
    }

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b & \"c\" 'd'>\u{1}\u{7f}\u{FFFF}\t\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}\u{FFFD}\u{FFFD}\t\n"
        );
    }
}
