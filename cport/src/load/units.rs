//! Parsers for the human-friendly values the commands take: durations ("5s", "500ms")
//! and byte sizes ("64K", "1M"). They are clap value parsers, so a bad value is a usage
//! error (exit status 2) that names the flag.

use std::time::Duration;

/// Parses a duration: a number followed by `ms`, `s`, `m` or `h`, or a plain number of
/// seconds (`"5s"`, `"500ms"`, `"1.5"`, `"2m"`). It must be positive and finite.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    let bad = || format!("'{text}' is not a duration (try 5s, 500ms, 2m or a number of seconds)");
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(format!("'{text}': the duration must be positive"));
    }
    Duration::try_from_secs_f64(value * scale).map_err(|_| bad())
}

/// Parses a byte count: a whole number with an optional binary suffix `K`, `M` or `G`
/// (also `KB`/`KiB` and so on, any case; all mean powers of 1024). It must be positive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits_end);
    let bad = || format!("'{text}' is not a size (try 4096, 64K, 1M or 1G)");
    let value: u64 = number.parse().map_err(|_| bad())?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    let bytes = value.checked_mul(1 << shift).ok_or_else(|| format!("'{text}' is too large"))?;
    if bytes == 0 {
        return Err(format!("'{text}': the size must be positive"));
    }
    Ok(bytes)
}

/// Parses a rate in messages per second: a positive, finite number.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("'{text}' is not a positive rate in messages per second")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 3 "), Ok(Duration::from_secs(3)));
        for bad in ["", "s", "0", "-1s", "abc", "1e400", "NaN", "5x", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        for bad in ["", "0", "K", "-1", "1.5M", "1T", "99999999999999999999", "18446744073709551615G"] {
            assert!(parse_size(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        for bad in ["0", "-5", "inf", "x"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
