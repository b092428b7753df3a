//! The human-friendly values the commands take and print: durations (`5s`, `500ms`,
//! `1h30m`, through `humantime`) and byte sizes (`4096`, `64K`, `1.5M`, `1GiB`, through
//! `parse-size`, every suffix a power of 1024). The parsers are clap value parsers, so a bad
//! value is a usage error (exit status 2) that names the flag.

use std::time::Duration;

/// Parses a positive duration: a humantime duration (`5s`, `500ms`, `2m`, `1h30m`,
/// `1h 30m`), or a plain number of seconds (`1.5`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = match t.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 => {
            Duration::try_from_secs_f64(secs).map_err(|_| format!("'{text}' is too long a duration"))?
        }
        Ok(_) => return Err(format!("'{text}': the duration must be positive")),
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            format!("'{text}' is not a duration ({e}; try 5s, 500ms, 1h30m or a number of seconds)")
        })?,
    };
    if d.is_zero() {
        return Err(format!("'{text}': the duration must be positive"));
    }
    Ok(d)
}

/// Parses a positive byte count: a number with an optional suffix, `K`, `M`, `G`, `T`
/// (also `KB`, `KiB` and so on, any case), each a power of 1024.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let config = parse_size::Config::new().with_binary();
    let bytes = config
        .parse_size(text.trim())
        .map_err(|e| format!("'{text}' is not a size ({e}; try 4096, 64K, 1M or 1G)"))?;
    if bytes == 0 {
        return Err(format!("'{text}': the size must be positive"));
    }
    Ok(bytes)
}

/// Parses a size of at most `max` bytes; `what` names the limit in the error.
pub fn parse_size_at_most(text: &str, max: u64, what: &str) -> Result<u64, String> {
    match parse_size(text)? {
        n if n > max => Err(format!("'{text}' is larger than the largest {what}, {}", show_size(max))),
        n => Ok(n),
    }
}

/// Parses a rate in messages per second: a positive, finite number.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!("'{text}' is not a positive rate in messages per second")),
    }
}

/// A byte count for people: exact in the largest binary unit that divides it (`4 GiB`,
/// `64 KiB`, `1000 bytes`), else to two decimals (`1.43 GiB`).
pub fn show_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
    for (shift, unit) in UNITS {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    if bytes < 1 << 10 {
        return format!("{bytes} bytes");
    }
    indicatif::BinaryBytes(bytes).to_string()
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
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 3 "), Ok(Duration::from_secs(3)));
        for bad in ["", "s", "0", "0s", "-1s", "abc", "1e400", "NaN", "5x", "inf"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1.5M"), Ok(3 << 19));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        for bad in ["", "0", "K", "-1", "1X", "99999999999999999999", "18446744073709551615G"] {
            assert!(parse_size(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            parse_size_at_most("2G", 1 << 30, "block size"),
            Err("'2G' is larger than the largest block size, 1 GiB".into())
        );
    }

    #[test]
    fn shown_sizes() {
        assert_eq!(show_size(4 << 30), "4 GiB");
        assert_eq!(show_size(32 << 30), "32 GiB");
        assert_eq!(show_size(64 << 10), "64 KiB");
        assert_eq!(show_size(1000), "1000 bytes");
        assert_eq!(show_size(1_500_000), "1.43 MiB");
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("1000"), Ok(1000.0));
        for bad in ["0", "-5", "inf", "x"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
