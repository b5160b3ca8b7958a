use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::of(pairs.iter().copied()).expect("valid labels")
}

fn picks(selector: &str, pairs: &[(&str, &str)]) -> bool {
    Selector::parse(selector)
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .matches(&labels(pairs))
}

#[test]
fn every_form_picks_what_kubernetes_picks() {
    let eu_canary = [("region", "eu"), ("tier", "canary")];
    let us = [("region", "us")];
    let bare: [(&str, &str); 0] = [];
    let cases: &[(&str, [bool; 3])] = &[
        ("region=eu", [true, false, false]),
        ("region==eu", [true, false, false]),
        ("region!=eu", [false, true, true]),
        ("tier in (canary,beta)", [true, false, false]),
        ("tier notin (canary)", [false, true, true]),
        ("tier", [true, false, false]),
        ("!tier", [false, true, true]),
        ("region=eu,tier!=canary", [false, false, false]),
        ("region in (eu, us), !tier", [false, true, false]),
        ("", [true, true, true]),
        ("   ", [true, true, true]),
    ];
    for (selector, want) in cases {
        let got = [
            picks(selector, &eu_canary),
            picks(selector, &us),
            picks(selector, &bare),
        ];
        assert_eq!(&got, want, "{selector:?}");
    }
}

#[test]
fn a_prefixed_key_and_an_empty_value_are_accepted() {
    assert!(picks(
        "example.com/team=ops,empty=",
        &[("example.com/team", "ops"), ("empty", "")]
    ));
    assert!(!picks("empty=", &[]));
    assert!(picks("empty!=", &[]));
}

#[test]
fn a_bad_selector_says_where_and_why() {
    let err = |s: &str| Selector::parse(s).expect_err(s);
    let e = err("region=eu,");
    assert_eq!(e.at, 10);
    assert!(e.why.contains("expected a key, found the end"), "{e}");
    let e = err("region=eu tier=x");
    assert_eq!(e.at, 10);
    assert!(e.why.contains("expected `,` or the end"), "{e}");
    let e = err("tier in canary");
    assert!(e.why.contains("expected `(`"), "{e}");
    let e = err("tier in (a,b");
    assert!(e.why.contains("expected `)`"), "{e}");
    let e = err("-bad=1");
    assert!(e.why.contains("key `-bad`"), "{e}");
    let e = err("Example.com/x=1");
    assert!(e.why.contains("prefix"), "{e}");
    let e = err("k=v_");
    assert!(e.why.contains("value `v_`"), "{e}");
    let e = err("k=é");
    assert_eq!(e.at, 2, "positions count characters: {e}");
    let e = err("k=a\u{1b}[31m");
    assert!(!e.to_string().contains('\u{1b}'), "escaped: {e}");
    let long = format!("k={}", "a".repeat(64));
    assert!(err(&long).why.contains("1–63"));
    assert!(
        err(&"a,".repeat(65))
            .why
            .contains("at most 64 requirements")
    );
    assert!(
        err(&"a".repeat(MAX_LEN_PLUS))
            .why
            .contains("at most 4096 bytes")
    );
}

const MAX_LEN_PLUS: usize = 4097;

#[test]
fn labels_are_checked_like_kubernetes_labels() {
    assert!(Labels::of([("region", "eu"), ("a.b/c_d-e.f", "")]).is_ok());
    for bad_key in [
        "",
        "-a",
        "a-",
        "a/b/c",
        "/a",
        "UPPER.com/a",
        &"k".repeat(64),
    ] {
        assert!(
            matches!(Labels::of([(bad_key, "v")]), Err(LabelError::Key { .. })),
            "{bad_key:?}"
        );
    }
    for bad_value in ["-v", "v-", "a b", "a/b", &"v".repeat(64)] {
        assert!(
            matches!(
                Labels::of([("k", bad_value)]),
                Err(LabelError::Value { .. })
            ),
            "{bad_value:?}"
        );
    }
    let many: BTreeMap<String, String> = (0..65).map(|i| (format!("k{i}"), "v".into())).collect();
    assert_eq!(Labels::new(many), Err(LabelError::TooMany(65)));
}

#[test]
fn a_merge_patch_sets_and_removes_labels() {
    let before = labels(&[("region", "eu"), ("tier", "canary")]);
    let patch = BTreeMap::from([
        ("tier".to_owned(), None),
        ("zone".to_owned(), Some("a".to_owned())),
    ]);
    assert_eq!(
        before.patched(&patch).expect("valid").to_string(),
        "region=eu,zone=a"
    );
    let bad = BTreeMap::from([("zone".to_owned(), Some("a b".to_owned()))]);
    assert!(before.patched(&bad).is_err());
}

#[test]
fn labels_written_out_are_a_selector_that_picks_them() {
    let l = labels(&[("region", "eu"), ("tier", "canary")]);
    assert_eq!(l.to_string(), "region=eu,tier=canary");
    assert!(Selector::parse(&l.to_string()).expect("parses").matches(&l));
}

#[test]
fn labels_deserialize_only_when_valid() {
    let ok: Labels = serde_json::from_str(r#"{"region":"eu"}"#).expect("valid");
    assert_eq!(ok.get("region"), Some("eu"));
    assert!(serde_json::from_str::<Labels>(r#"{"region":"e u"}"#).is_err());
}

// ---- properties ---------------------------------------------------------------------------

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        // A few common words, so generated selectors and labels meet.
        prop::sample::select(vec!["region", "tier", "zone", "in", "notin", "a"])
            .prop_map(str::to_owned),
        "[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,20}[a-zA-Z0-9])?",
    ]
}

fn key() -> impl Strategy<Value = String> {
    (
        prop::option::of("[a-z0-9]{1,8}(\\.[a-z0-9]{1,8}){0,2}"),
        name(),
    )
        .prop_map(|(p, n)| match p {
            Some(p) => format!("{p}/{n}"),
            None => n,
        })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["eu", "us", "canary", ""]).prop_map(str::to_owned),
        name(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let set = || prop::collection::btree_set(value(), 1..4);
    prop_oneof![
        value().prop_map(Op::Equals),
        value().prop_map(Op::NotEquals),
        set().prop_map(Op::In),
        set().prop_map(Op::NotIn),
        Just(Op::Exists),
        Just(Op::DoesNotExist),
    ]
}

fn selector() -> impl Strategy<Value = Selector> {
    prop::collection::vec(
        (key(), op()).prop_map(|(key, op)| Requirement { key, op }),
        0..6,
    )
    .prop_map(|requirements| Selector::of(requirements).expect("generated selectors are valid"))
}

fn label_map() -> impl Strategy<Value = Labels> {
    prop::collection::btree_map(key(), value(), 0..6)
        .prop_map(|m| Labels::new(m).expect("generated labels are valid"))
}

/// The matcher's meaning, written the other way round: a requirement fails when…
fn fails(r: &Requirement, l: &Labels) -> bool {
    let map = l.to_map();
    let v = map.get(&r.key);
    match &r.op {
        Op::Equals(x) => v != Some(x),
        Op::NotEquals(x) => v == Some(x),
        Op::In(s) => !v.is_some_and(|v| s.contains(v)),
        Op::NotIn(s) => v.is_some_and(|v| s.contains(v)),
        Op::Exists => !map.contains_key(&r.key),
        Op::DoesNotExist => map.contains_key(&r.key),
    }
}

proptest! {
    #[test]
    fn a_selector_written_out_parses_to_itself(s in selector()) {
        let text = s.to_string();
        prop_assert_eq!(Selector::parse(&text), Ok(s));
    }

    #[test]
    fn extra_spaces_do_not_change_a_selector(s in selector()) {
        let spaced = s.to_string().replace(',', " ,  ").replace('(', " ( ").replace('=', " = ");
        // `!=` spaced as `! =` is `!` then `=`: a different statement; keep it whole.
        let spaced = spaced.replace("! =", "!=");
        prop_assert_eq!(Selector::parse(&spaced), Ok(s));
    }

    #[test]
    fn a_gateway_is_picked_when_no_requirement_fails(s in selector(), l in label_map()) {
        let want = !s.requirements().iter().any(|r| fails(r, &l));
        prop_assert_eq!(s.matches(&l), want);
    }

    #[test]
    fn a_gateways_own_labels_pick_it(l in label_map()) {
        let s = Selector::parse(&l.to_string()).expect("labels written out parse");
        prop_assert!(s.matches(&l));
    }

    #[test]
    fn the_parser_answers_any_text_without_panicking(text in "\\PC{0,80}") {
        let _ = Selector::parse(&text);
    }

    #[test]
    fn the_parser_answers_any_text_from_its_own_alphabet(text in "[a-z=!,() ]{0,40}") {
        if let Err(e) = Selector::parse(&text) {
            prop_assert!(e.at <= text.chars().count());
        }
    }

    #[test]
    fn set_forms_are_unions_of_equalities(k in key(), vals in prop::collection::btree_set(value(), 1..4), l in label_map()) {
        let any = vals.iter().any(|v| Selector::of(vec![Requirement { key: k.clone(), op: Op::Equals(v.clone()) }]).expect("valid").matches(&l));
        let in_ = Selector::of(vec![Requirement { key: k.clone(), op: Op::In(vals.clone()) }]).expect("valid");
        let notin = Selector::of(vec![Requirement { key: k.clone(), op: Op::NotIn(vals) }]).expect("valid");
        prop_assert_eq!(in_.matches(&l), any);
        prop_assert_eq!(notin.matches(&l), !any);
    }
}

#[test]
fn sets_ignore_order_and_repeats() {
    let a = Selector::parse("t in (b,a,b)").expect("parses");
    let b = Selector::parse("t in (a,b)").expect("parses");
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "t in (a,b)");
    let set: BTreeSet<String> = ["a", "b"].map(str::to_owned).into();
    assert_eq!(a.requirements()[0].op, Op::In(set));
}
