//! Tests of the key tables and the US layout.
use super::*;
use std::collections::HashSet;

#[test]
fn known_codes() {
    let cases = [
        ("a", 0x1c),
        ("z", 0x1a),
        ("1", 0x16),
        ("0", 0x45),
        ("ret", 0x5a),
        ("spc", 0x29),
        ("backspace", 0x66),
        ("tab", 0x0d),
        ("esc", 0x76),
        ("shift", 0x12),
        ("shift_r", 0x59),
        ("ctrl", 0x14),
        ("ctrl_r", 0xe014),
        ("alt", 0x11),
        ("alt_r", 0xe011),
        ("caps_lock", 0x58),
        ("left", 0xe06b),
        ("right", 0xe074),
        ("up", 0xe075),
        ("down", 0xe072),
        ("home", 0xe06c),
        ("end", 0xe069),
        ("delete", 0xe071),
        ("f1", 0x05),
        ("f7", 0x83),
        ("f12", 0x07),
        ("kp_enter", 0xe05a),
        ("kp_divide", 0xe04a),
        ("meta_l", 0xe01f),
        ("menu", 0xe02f),
    ];
    for (name, code) in cases {
        assert_eq!(Key::from_name(name).unwrap().set2(), code, "{name}");
    }
}

#[test]
fn names_are_unique_and_codes_round_trip() {
    let mut names = HashSet::new();
    for key in Key::all() {
        assert!(names.insert(key.name()), "duplicate name {}", key.name());
        assert_eq!(Key::from_name(key.name()).unwrap(), key);
        let by_code = Key::from_set2(key.set2()).unwrap();
        assert_eq!(by_code.set2(), key.set2());
        let by_qnum = Key::from_qnum(key.qnum().into()).unwrap();
        assert_eq!(by_qnum.set2(), key.set2(), "qnum {:#x}", key.qnum());
        // Extended keys are exactly the 0x80 qnums.
        assert_eq!(key.set2() > 0xff, key.qnum() >= 0x80, "{}", key.name());
        if key.set2() > 0xff {
            assert_eq!(key.set2() >> 8, 0xe0, "{}", key.name());
        }
    }
    assert!(names.len() > 120);
}

#[test]
fn unknown_and_unsupported_names() {
    assert_eq!(
        Key::from_name("foo"),
        Err(KeyNameError::Unknown("foo".into()))
    );
    assert_eq!(Key::from_name("A"), Err(KeyNameError::Unknown("A".into())));
    assert_eq!(
        Key::from_name("pause"),
        Err(KeyNameError::Unsupported("pause"))
    );
    assert_eq!(
        Key::from_name("pause").unwrap_err().to_string(),
        "key 'pause' has no PS/2 set-2 scan code on this keyboard"
    );
    assert_eq!(
        Key::from_name("").unwrap_err().to_string(),
        "unknown key name ''"
    );
    assert_eq!(Key::from_qnum(0x1e).unwrap().name(), "a");
    assert_eq!(Key::from_qnum(0xcb).unwrap().name(), "left");
    assert_eq!(Key::from_qnum(-1), None);
    assert_eq!(Key::from_qnum(0x1_0000_001e), None);
}

#[test]
fn us_layout() {
    assert_eq!(us_char('a'), Some((key("a"), false)));
    assert_eq!(us_char('H'), Some((key("h"), true)));
    assert_eq!(us_char('!'), Some((key("1"), true)));
    assert_eq!(us_char(','), Some((key("comma"), false)));
    assert_eq!(us_char('?'), Some((key("slash"), true)));
    assert_eq!(us_char('\n'), Some((key("ret"), false)));
    assert_eq!(us_char('\x08'), Some((key("backspace"), false)));
    assert_eq!(us_char('é'), None);
    assert_eq!(us_char('\x01'), None);
    // Every printable ASCII character is typeable.
    for c in ' '..='~' {
        assert!(us_char(c).is_some(), "{c:?}");
    }
}

#[test]
fn unknown_names_suggest_the_nearest_known_one() {
    use super::suggest;
    assert_eq!(suggest("RET").as_deref(), Some("ret"));
    assert_eq!(suggest("Shift").as_deref(), Some("shift"));
    assert_eq!(suggest("ctrl+c").as_deref(), Some("ctrl-c"));
    assert_eq!(
        suggest("CTRL+Alt+Delete").as_deref(),
        Some("ctrl-alt-delete")
    );
    assert_eq!(suggest("enter").as_deref(), Some("ret"));
    assert_eq!(suggest("ctrl+enter").as_deref(), Some("ctrl-ret"));
    assert_eq!(suggest("dleete").as_deref(), Some("delete"));
    assert_eq!(suggest("shfit").as_deref(), Some("shift"));
    assert_eq!(suggest("foo"), None);
    assert_eq!(suggest("xyzzy"), None);
    assert_eq!(
        Key::from_name("RET").unwrap_err().to_string(),
        "unknown key name 'RET' (did you mean 'ret'?)"
    );
    assert_eq!(
        Key::from_name("foo").unwrap_err().to_string(),
        "unknown key name 'foo'"
    );
}
