//! Tests of the terminal byte decoder.
use super::*;

fn keys(names: &[&str]) -> TermEvent {
    TermEvent::Keys(names.iter().map(|n| key(n)).collect())
}

fn decode(bytes: &[u8]) -> Vec<TermEvent> {
    TermDecoder::new().feed(bytes)
}

#[test]
fn printable_and_control() {
    assert_eq!(
        decode(b"aB!"),
        [keys(&["a"]), keys(&["shift", "b"]), keys(&["shift", "1"])]
    );
    assert_eq!(
        decode(b"\r\n\t\x7f\x08"),
        [
            keys(&["ret"]),
            keys(&["ret"]),
            keys(&["tab"]),
            keys(&["backspace"]),
            keys(&["backspace"])
        ]
    );
    assert_eq!(
        decode(b"\x03\x1a\x00"),
        [
            keys(&["ctrl", "c"]),
            keys(&["ctrl", "z"]),
            keys(&["ctrl", "spc"])
        ]
    );
    assert_eq!(
        decode(b"\x1c\x1f"),
        [keys(&["ctrl", "backslash"]), keys(&["ctrl", "minus"])]
    );
    assert_eq!(decode("é".as_bytes()), []);
}

#[test]
fn escape_prefix() {
    assert_eq!(decode(b"\x01x"), [TermEvent::Quit]);
    assert_eq!(decode(b"\x01X"), [TermEvent::Quit]);
    assert_eq!(decode(b"\x01\x01"), [keys(&["ctrl", "a"])]);
    assert_eq!(decode(b"\x01h"), [TermEvent::Help]);
    assert_eq!(decode(b"\x01qa"), [keys(&["a"])]);
    // Split across reads.
    let mut d = TermDecoder::new();
    assert_eq!(d.feed(b"\x01"), []);
    assert_eq!(d.feed(b"x"), [TermEvent::Quit]);
}

#[test]
fn sequences() {
    let cases: &[(&[u8], &[&str])] = &[
        (b"\x1b[A", &["up"]),
        (b"\x1b[B", &["down"]),
        (b"\x1b[C", &["right"]),
        (b"\x1b[D", &["left"]),
        (b"\x1bOA", &["up"]),
        (b"\x1b[H", &["home"]),
        (b"\x1b[F", &["end"]),
        (b"\x1b[1~", &["home"]),
        (b"\x1b[4~", &["end"]),
        (b"\x1b[2~", &["insert"]),
        (b"\x1b[3~", &["delete"]),
        (b"\x1b[5~", &["pgup"]),
        (b"\x1b[6~", &["pgdn"]),
        (b"\x1bOP", &["f1"]),
        (b"\x1bOS", &["f4"]),
        (b"\x1b[11~", &["f1"]),
        (b"\x1b[15~", &["f5"]),
        (b"\x1b[17~", &["f6"]),
        (b"\x1b[21~", &["f10"]),
        (b"\x1b[23~", &["f11"]),
        (b"\x1b[24~", &["f12"]),
        (b"\x1b[[A", &["f1"]),
        (b"\x1b[[E", &["f5"]),
        (b"\x1b[1;5A", &["ctrl", "up"]),
        (b"\x1b[1;2D", &["shift", "left"]),
        (b"\x1b[3;7~", &["ctrl", "alt", "delete"]),
        (b"\x1b[1;2P", &["shift", "f1"]),
        (b"\x1b[Z", &["shift", "tab"]),
        (b"\x1ba", &["alt", "a"]),
        (b"\x1bA", &["alt", "shift", "a"]),
    ];
    for (bytes, names) in cases {
        assert_eq!(decode(bytes), [keys(names)], "{bytes:?}");
    }
    // Unknown and malformed sequences are dropped, and decoding goes on.
    assert_eq!(decode(b"\x1b[99~a"), [keys(&["a"])]);
    assert_eq!(decode(b"\x1b[1;2;3;4;5;6;7;8;9;10;11;12Ab"), [keys(&["b"])]);
    assert_eq!(decode(b"\x1bOzq"), [keys(&["q"])]);
}

#[test]
fn lone_escape_needs_timeout() {
    let mut d = TermDecoder::new();
    assert_eq!(d.feed(b"\x1b"), []);
    assert!(d.escape_pending());
    assert_eq!(d.timeout(), [keys(&["esc"])]);
    assert!(!d.escape_pending());
    assert_eq!(d.timeout(), []);
    assert_eq!(d.feed(b"\x1b\x1b["), [keys(&["esc"])]);
    assert_eq!(d.feed(b"A"), [keys(&["up"])]);
}

#[test]
fn split_sequences() {
    let mut d = TermDecoder::new();
    let mut out = Vec::new();
    for b in b"\x1b[1;5Dx" {
        out.extend(d.feed(&[*b]));
    }
    assert_eq!(out, [keys(&["ctrl", "left"]), keys(&["x"])]);
}

#[test]
fn every_byte_sequence_is_safe() {
    // Exhaustive over two-byte inputs after each state-entering prefix.
    for prefix in [
        &b""[..],
        b"\x1b",
        b"\x1b[",
        b"\x1bO",
        b"\x1b[[",
        b"\x01",
        b"\x1b[1;",
    ] {
        for a in 0..=255u8 {
            for b in [0u8, b'~', b'A', 0x1b, 0x7f, 0xff] {
                let mut d = TermDecoder::new();
                d.feed(prefix);
                d.feed(&[a, b]);
                d.timeout();
            }
        }
    }
}

/// For a serial console the bytes pass through; only the Ctrl+A escapes
/// are taken out, also across reads.
#[test]
fn escape_filter_passes_bytes_and_takes_ctrl_a_escapes() {
    let mut filter = EscapeFilter::default();
    assert_eq!(
        filter.feed(b"ls\r\x1b[A\x7f"),
        [RawEvent::Bytes(b"ls\r\x1b[A\x7f".to_vec())]
    );
    assert_eq!(
        filter.feed(b"a\x01hb\x01\x01c\x01"),
        [
            RawEvent::Bytes(b"a".to_vec()),
            RawEvent::Help,
            RawEvent::Bytes(b"b\x01c".to_vec())
        ]
    );
    assert_eq!(filter.feed(b"x"), [RawEvent::Quit]);
    assert_eq!(filter.feed(b"\x01zq"), [RawEvent::Bytes(b"q".to_vec())]);
}
