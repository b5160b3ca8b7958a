//! Property tests: whatever bytes a gateway sends, parsing gives a value or an error, never a
//! panic, and whatever is kept of it stays within its bounds.

use proptest::prelude::*;
use serde_json::Value;

use super::frames::Frame;
use crate::bounded;

/// JSON values of any shape, with strings that include controls and non-ASCII.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,64}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 256, 12, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..12)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_to_a_frame_or_an_error(text in ".{0,512}") {
        let _ = Frame::parse(&text);
    }

    #[test]
    fn any_bytes_as_lossy_text_parse_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Frame::parse(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn frame_shaped_json_with_any_payload_parses_without_panic(
        kind in prop_oneof![Just("req"), Just("res"), Just("event"), Just("other")],
        payload in json_value(),
        id in json_value(),
    ) {
        let text = serde_json::json!({
            "type": kind, "id": id, "ok": payload.is_object(), "event": "x",
            "method": "m", "payload": payload, "error": payload,
        })
        .to_string();
        let _ = Frame::parse(&text);
    }

    #[test]
    fn bounded_text_is_escaped_and_bounded(s in ".{0,2048}", max in 1usize..512) {
        let out = bounded::text(&s, max);
        prop_assert!(!out.chars().any(|c| c.is_control()));
        prop_assert!(out.len() <= max + 32, "{} > {}", out.len(), max + 32);
    }

    #[test]
    fn bounded_json_never_exceeds_its_budget(v in json_value(), budget in 64usize..4096) {
        let out = bounded::json(v, budget);
        prop_assert!(bounded::json_size(&out) <= budget.max(48));
    }
}
