//! Root causes, named from evidence: the mistakes students' peers really make, each
//! recognised in what the peer sent or printed, and said in a sentence the student can act
//! on. A hint is only given when the evidence shows its cause; a verdict without one is
//! no worse for it.

use crate::contract::{HEADER_BYTES, Header, Kind, Message};
use crate::text::short_hex;

/// A Welcome from `peer1` with an empty table: what a conforming reply starts with.
fn welcome_start() -> String {
    short_hex(&Message::new(Kind::Welcome, "peer1", vec![]).encode(), 4)
}

/// What the bytes of a reply that is no cPTP message show.
pub fn reply(bytes: &[u8]) -> Vec<String> {
    let mut hints = Vec::new();
    let Some(first) = bytes.first_chunk::<4>() else {
        return hints;
    };
    let header = Header::read(*first);
    let starts = welcome_start();
    if bytes.len() >= 8 && bytes.iter().take(32).all(|b| *b == b'0' || *b == b'1') {
        hints.push(format!(
            "the header was sent as the characters '0' and '1' (ASCII 30 and 31), one byte per bit: PROTOCOL 4.1 packs the fields into the bits of a 32-bit word, so a Welcome starts {starts}"
        ));
    } else if first[0] == 7 && (first[1] == 1 || first[1] == 2) {
        hints.push(format!(
            "the version 7 was written as a whole byte (07) and the type as the next one ({:02X}): PROTOCOL 4.1 packs V into the top 3 bits and the type into the next 8, so a Welcome starts {starts}",
            first[1]
        ));
    } else if header.check().is_err()
        && Header::read([first[3], first[2], first[1], first[0]])
            .check()
            .is_ok()
    {
        hints.push(format!(
            "the header word was written little-endian (its bytes reversed, as writeUInt32LE does): PROTOCOL 4.1 wants it big-endian (writeUInt32BE), so a Welcome starts {starts}"
        ));
    } else if bytes.len() >= HEADER_BYTES
        && bytes
            .iter()
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace())
    {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(40)]).into_owned();
        hints.push(format!(
            "the reply is text ({text:?}), not the binary message of PROTOCOL 4: a Welcome starts {starts}"
        ));
    }
    hints
}

/// What a program's stderr shows, Node.js's errors in particular.
pub fn stderr(lines: &[String]) -> Vec<String> {
    let text = lines.join("\n");
    let mut hints = Vec::new();
    let outgoing = text.contains("bind EADDRINUSE") || text.contains("connect EADDRINUSE");
    if outgoing && !text.contains("listen EADDRINUSE") {
        hints.push(
            "the outgoing socket is bound to the listening port ('bind EADDRINUSE'): Node.js cannot join from its listening port (PROTOCOL 6.1); join from a port the system picks, which costs only the rule 6.1-join-from-listening-port".to_string(),
        );
    } else if text.contains("EADDRINUSE") {
        hints.push(
            "'EADDRINUSE': the peer listens on a port already in use, typically the port it joined from (the local port of its outgoing connection); listen on port 0 and print the port the system gave".to_string(),
        );
    }
    if text.contains("connect ENOENT") {
        hints.push(
            "'connect ENOENT': net.connect was given the host where the port belongs (connect(host, port) with the arguments swapped makes Node.js take the address for a file name); it is net.connect(port, host)".to_string(),
        );
    }
    if text.contains("Cannot find module") {
        hints.push(
            "'Cannot find module': the start command names a file the submission does not have (check the command given after --)".to_string(),
        );
    }
    if text.contains("ERR_OUT_OF_RANGE") || text.contains("RangeError") {
        hints.push(
            "a RangeError reading a Buffer: the decoder reads past the bytes received; wait until the whole message (4 + L + 6N bytes) has arrived, and never trust a length the other side sent".to_string(),
        );
    }
    if text.contains("ECONNRESET") && text.contains("Unhandled 'error' event") {
        hints.push(
            "an unhandled 'error' event (ECONNRESET) ended the peer: every socket needs socket.on('error', ...), or one reset connection stops the whole peer".to_string(),
        );
    }
    hints
}

/// What an ID printed or sent shows, against the folder the peer ran in.
pub fn id(shown: &str, id: &str, folder: &str) -> Vec<String> {
    let mut hints = Vec::new();
    if shown.contains('/') || shown.contains('\\') {
        hints.push(format!(
            "the ID '{shown}' holds a path: take the folder's own name first (path.basename(process.cwd()), '{folder}'), then split it at its last dash (ID '{id}')"
        ));
    } else if shown == folder {
        hints.push(format!(
            "the ID is the whole folder name '{folder}': PROTOCOL 2.2 splits it at the last dash (ID '{id}', then the table size)"
        ));
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_headers_are_named() {
        let ascii = b"11100000001000000000000000000101peer1".to_vec();
        assert!(reply(&ascii)[0].contains("characters '0' and '1'"));
        assert!(reply(&[0x07, 0x01, 0x00, 0x05, b'p'])[0].contains("whole byte (07)"));
        assert!(reply(&[0x05, 0x00, 0x20, 0xE0])[0].contains("little-endian"));
        assert!(reply(b"{\"type\":\"welcome\"}")[0].contains("text"));
        assert!(
            reply(&[0xE0, 0x20, 0x00, 0x05]).is_empty(),
            "a good header has no hint"
        );
        assert!(reply(&[0x07]).is_empty(), "too little to say");
    }

    #[test]
    fn node_errors_are_named() {
        let listen =
            vec!["Error: listen EADDRINUSE: address already in use 127.0.0.1:4000".to_string()];
        assert!(stderr(&listen)[0].contains("listens on a port already in use"));
        let connect =
            vec!["Error: connect EADDRINUSE 127.0.0.1:5000 - Local (127.0.0.1:4000)".to_string()];
        assert!(stderr(&connect)[0].contains("bound to the listening port"));
        let swapped = vec!["Error: connect ENOENT 127.0.0.1".to_string()];
        assert!(stderr(&swapped)[0].contains("swapped"));
        assert!(stderr(&["all fine".to_string()]).is_empty());
    }

    #[test]
    fn ids_from_paths_and_folders_are_named() {
        assert!(id("/tmp/cptpcheck.1.2/peer1", "peer1", "peer1-2")[0].contains("holds a path"));
        assert!(id("peer1-2", "peer1", "peer1-2")[0].contains("whole folder name"));
        assert!(id("peer1", "peer1", "peer1-2").is_empty());
    }
}
