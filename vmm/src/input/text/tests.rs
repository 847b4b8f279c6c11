use super::*;

fn names(typed: &[Typed]) -> Vec<String> {
    typed
        .iter()
        .map(|t| match t {
            Typed::Keys(keys) => keys.iter().map(|k| k.name()).collect::<Vec<_>>().join("-"),
            Typed::Untypeable(c) => format!("!{c}"),
        })
        .collect()
}

#[test]
fn text_is_typed_on_a_us_layout_with_enter_for_newline() {
    let mut decoder = TextDecoder::new();
    assert_eq!(
        names(&decoder.feed(b"Ex 3!\n")),
        ["shift-e", "x", "spc", "3", "shift-1", "ret"]
    );
}

#[test]
fn cr_lf_is_one_enter_and_lone_cr_is_enter() {
    let mut decoder = TextDecoder::new();
    assert_eq!(
        names(&decoder.feed(b"a\r\nb\rc\n\n")),
        ["a", "ret", "b", "ret", "c", "ret", "ret"]
    );
    // Also when the pair is split between reads.
    let mut decoder = TextDecoder::new();
    assert_eq!(names(&decoder.feed(b"a\r")), ["a", "ret"]);
    assert_eq!(names(&decoder.feed(b"\nb")), ["b"]);
}

#[test]
fn control_bytes_as_a_terminal_types_them() {
    let mut decoder = TextDecoder::new();
    assert_eq!(
        names(&decoder.feed(b"\t\x08\x7f\x1b\x03\x01")),
        ["tab", "backspace", "backspace", "esc", "ctrl-c", "ctrl-a"]
    );
}

#[test]
fn untypeable_characters_are_reported_not_typed() {
    let mut decoder = TextDecoder::new();
    assert_eq!(
        names(&decoder.feed("aé\x00".as_bytes())),
        ["a", "!é", "!\0"]
    );
    assert_eq!(names(&decoder.feed(b"\xffb")), ["!\u{fffd}", "b"]);
}

#[test]
fn utf8_split_between_reads_is_put_together() {
    let mut decoder = TextDecoder::new();
    let bytes = "é".as_bytes();
    assert!(decoder.feed(&bytes[..1]).is_empty());
    assert_eq!(names(&decoder.feed(&bytes[1..])), ["!é"]);
    // Cut off by the end of the text.
    assert!(decoder.feed(&bytes[..1]).is_empty());
    assert_eq!(names(&decoder.finish()), ["!\u{fffd}"]);
    assert!(decoder.finish().is_empty());
}
