//! How `tether load` reads its numbers and headers, as wrk reads them: counts and rates
//! with SI suffixes (`10k`, `1.5M`), a duration in seconds when it has no unit (`-d 10`),
//! and `-H 'Name: value'` headers.

use std::time::Duration;

/// A number with an optional SI suffix (`k` 10^3, `M` 10^6, `G` 10^9), as wrk's
/// `-c`, `-R` and `-n` take them.
pub fn number(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (digits, scale) = match text.char_indices().last() {
        Some((i, 'k' | 'K')) => (&text[..i], 1e3),
        Some((i, 'M')) => (&text[..i], 1e6),
        Some((i, 'G')) => (&text[..i], 1e9),
        _ => (text, 1.0),
    };
    match digits.parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n * scale),
        _ => Err(format!(
            "expected a number, optionally with k, M or G (10k, 1.5M), found `{text}`"
        )),
    }
}

/// A whole count with an optional SI suffix (`-c 1k`, `-n 100k`).
pub fn count(text: &str) -> Result<u64, String> {
    let n = number(text)?;
    if n.fract() != 0.0 {
        return Err(format!("expected a whole number, found `{text}`"));
    }
    Ok(n as u64)
}

/// [`count`] as a `usize` (connections).
pub fn count_usize(text: &str) -> Result<usize, String> {
    count(text).and_then(|n| usize::try_from(n).map_err(|e| e.to_string()))
}

/// A duration as wrk reads `-d`: seconds without a unit (`10`), or with one (`10s`,
/// `2m`, `1h`, `500ms`).
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).map_err(|e| format!("`{text}`: {e}"));
    }
    humantime::parse_duration(text).map_err(|e| {
        format!(
            "expected seconds (10) or a duration with a unit (10s, 2m, 1h), found `{text}`: {e}"
        )
    })
}

/// A header as `-H 'Name: value'` gives it; the name must be an HTTP token and the value
/// a valid header value.
pub fn header(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("expected `Name: value`, found `{text}`"));
    };
    let (name, value) = (name.trim(), value.trim());
    hyper::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a header name"))?;
    hyper::header::HeaderValue::from_str(value)
        .map_err(|_| format!("the value of `{name}` is not a valid header value"))?;
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_take_si_suffixes_as_wrk_does() {
        assert_eq!(number("10k"), Ok(10_000.0));
        assert_eq!(number("1.5M"), Ok(1_500_000.0));
        assert_eq!(number("2G"), Ok(2e9));
        assert_eq!(number("250"), Ok(250.0));
        assert_eq!(count("1k"), Ok(1000));
        assert_eq!(count_usize("64"), Ok(64));
        assert!(count("1.5").is_err());
        assert!(number("10x").unwrap_err().contains("`10x`"));
        assert!(number("-5").is_err());
        assert!(number("").is_err());
    }

    #[test]
    fn a_duration_without_a_unit_is_seconds() {
        assert_eq!(duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(duration("ten").unwrap_err().contains("`ten`"));
    }

    #[test]
    fn headers_are_name_colon_value() {
        assert_eq!(
            header("Host: svc.local"),
            Ok(("Host".into(), "svc.local".into()))
        );
        assert_eq!(
            header("x-trace:  a:b "),
            Ok(("x-trace".into(), "a:b".into()))
        );
        assert!(header("no colon").is_err());
        assert!(header("bad name: v").is_err());
        assert!(header("x: a\r\nb").is_err());
    }
}
