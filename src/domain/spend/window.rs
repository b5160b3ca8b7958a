//! A spend budget's window: the period its spend and runs are counted over, and when it resets
//! (the `Retry-After` of a refusal). Pure: the time and the zone are inputs.
//!
//! - `1d`: the calendar day in the budget's time zone;
//! - `7d`, `30d`: consecutive periods of that many calendar days, counted from the midnight of
//!   the day the budget was set (its anchor) — LiteLLM's `budget_duration`, reset at a time an
//!   operator can read rather than 7 × 24 h after whenever;
//! - `month`: the calendar month in the budget's time zone.
//!
//! Days are calendar days in the zone, so a window across a daylight-saving change is 23 or
//! 25 hours long, as the operator's own calendar says (jiff, with its time zone database).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

/// How long a window is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
pub enum Window {
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "7d")]
    SevenDays,
    #[serde(rename = "30d")]
    ThirtyDays,
    #[serde(rename = "month")]
    Month,
}

impl Window {
    pub const ALL: [Window; 4] = [
        Window::Day,
        Window::SevenDays,
        Window::ThirtyDays,
        Window::Month,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Window::Day => "1d",
            Window::SevenDays => "7d",
            Window::ThirtyDays => "30d",
            Window::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.as_str() == s)
    }

    /// The window holding `now` (Unix seconds) for a budget set on `anchor` (a calendar day
    /// in `tz`): its start and its end (the reset), as Unix seconds.
    pub fn bounds(self, now: i64, tz: &TimeZone, anchor: Date) -> Result<(i64, i64), jiff::Error> {
        let today = Timestamp::from_second(now)?.to_zoned(tz.clone()).date();
        let (first, next) = match self {
            Window::Day => (today, today.tomorrow()?),
            Window::Month => {
                let first = today.first_of_month();
                (first, first.checked_add(1.month())?)
            }
            Window::SevenDays | Window::ThirtyDays => {
                let n: i64 = if self == Window::SevenDays { 7 } else { 30 };
                let days = i64::from(anchor.until(today)?.get_days());
                let first = anchor.checked_add(days.div_euclid(n).saturating_mul(n).days())?;
                (first, first.checked_add(n.days())?)
            }
        };
        let start = first
            .to_zoned(tz.clone())?
            .start_of_day()?
            .timestamp()
            .as_second();
        let end = next
            .to_zoned(tz.clone())?
            .start_of_day()?
            .timestamp()
            .as_second();
        Ok((start, end))
    }
}

/// A time zone by its IANA name (`Europe/Paris`, `UTC`), or why not.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| {
        format!(
            "`{}` is not a time zone this daemon knows (an IANA name such as `UTC` or `Europe/Paris`)",
            gateway_supervisor_actors::bounded::text(name, 64)
        )
    })
}

/// The calendar day of `now` (Unix seconds) in `tz`: a budget's anchor when it is set.
pub fn day_of(now: i64, tz: &TimeZone) -> Result<Date, jiff::Error> {
    Ok(Timestamp::from_second(now)?.to_zoned(tz.clone()).date())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_second()
    }

    fn shown(t: i64, tz: &TimeZone) -> String {
        Timestamp::from_second(t)
            .unwrap()
            .to_zoned(tz.clone())
            .strftime("%F %T")
            .to_string()
    }

    #[test]
    fn a_day_and_a_month_are_the_calendar_s_in_the_budget_s_zone() {
        let paris = zone("Europe/Paris").unwrap();
        let anchor = jiff::civil::date(2026, 11, 1);
        // 23:30 UTC on the 28th is already the 29th in Paris.
        let (s, e) = Window::Day
            .bounds(at("2026-11-28T23:30:00Z"), &paris, anchor)
            .unwrap();
        assert_eq!(
            (shown(s, &paris), shown(e, &paris)),
            ("2026-11-29 00:00:00".into(), "2026-11-30 00:00:00".into())
        );
        let (s, e) = Window::Month
            .bounds(at("2026-11-28T12:00:00Z"), &paris, anchor)
            .unwrap();
        assert_eq!(
            (shown(s, &paris), shown(e, &paris)),
            ("2026-11-01 00:00:00".into(), "2026-12-01 00:00:00".into())
        );
        // The day clocks go back is 25 hours long.
        let (s, e) = Window::Day
            .bounds(at("2026-10-25T12:00:00Z"), &paris, anchor)
            .unwrap();
        assert_eq!(e - s, 25 * 3600);
    }

    #[test]
    fn seven_and_thirty_days_count_from_the_day_the_budget_was_set() {
        let utc = zone("UTC").unwrap();
        let anchor = jiff::civil::date(2026, 11, 2);
        let (s, e) = Window::SevenDays
            .bounds(at("2026-11-28T12:00:00Z"), &utc, anchor)
            .unwrap();
        assert_eq!(
            (shown(s, &utc), shown(e, &utc)),
            ("2026-11-23 00:00:00".into(), "2026-11-30 00:00:00".into())
        );
        let (s, _) = Window::SevenDays
            .bounds(at("2026-11-02T00:00:00Z"), &utc, anchor)
            .unwrap();
        assert_eq!(shown(s, &utc), "2026-11-02 00:00:00");
        let (s, e) = Window::ThirtyDays
            .bounds(at("2026-12-02T00:00:00Z"), &utc, anchor)
            .unwrap();
        assert_eq!(
            (shown(s, &utc), shown(e, &utc)),
            ("2026-12-02 00:00:00".into(), "2027-01-01 00:00:00".into())
        );
        assert!(zone("Mars/Olympus").unwrap_err().contains("`Mars/Olympus`"));
        for w in Window::ALL {
            assert_eq!(Window::parse(w.as_str()), Some(w));
            assert_eq!(serde_json::to_value(w).unwrap(), w.as_str());
        }
    }
}
