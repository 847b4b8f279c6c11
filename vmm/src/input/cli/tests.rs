use super::*;

fn args(type_text: &[&str]) -> InputArgs {
    InputArgs {
        type_text: type_text.iter().map(|t| t.to_string()).collect(),
        no_interactive: true,
        ..InputArgs::default()
    }
}

fn script_error(args: &InputArgs) -> String {
    match args.prepare() {
        Err(InputError::Script(error)) => error.to_string(),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn a_single_type_is_named_type() {
    assert_eq!(
        script_error(&args(&["caf\u{e9}"])),
        "--type:1: character '\u{e9}' cannot be typed on a US keyboard"
    );
}

#[test]
fn repeated_types_are_numbered() {
    assert_eq!(
        script_error(&args(&["ok", "x\\q"])),
        "--type #2:1: unknown escape '\\q' (known: \\n \\t \\b \\\\, and \\r \\\" in expect)"
    );
    assert_eq!(
        script_error(&args(&["\u{e9}", "ok"])),
        "--type #1:1: character '\u{e9}' cannot be typed on a US keyboard"
    );
}

#[test]
fn record_needs_the_interactive_terminal() {
    let args = InputArgs {
        record: Some("/nonexistent/never-created.keys".into()),
        no_interactive: true,
        ..InputArgs::default()
    };
    assert!(matches!(
        args.prepare(),
        Err(InputError::RecordWithoutTerminal)
    ));
}
