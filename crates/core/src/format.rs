//! Human-readable sizes and times, shared by every text surface (the web UI has its own twin in TypeScript).

/// A byte count in decimal units, as the hub shows sizes: `512 B`, `1.5 kB`, `4.92 GB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = 0;
    value /= 1000.0;
    while value >= 999.95 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    format!("{value:.digits$} {}", UNITS[unit])
}

/// A time since the Unix epoch as RFC 3339 in UTC with `digits` of a second's fraction (0 to 9):
/// `2026-12-02T10:00:00.000Z` with 3, as the Hub writes it; with 9, as Ollama does.
pub fn utc(since_epoch: std::time::Duration, digits: usize) -> String {
    let secs = since_epoch.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let fraction = format!("{:09}", since_epoch.subsec_nanos());
    let digits = digits.min(9);
    let dot = if digits > 0 { "." } else { "" };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{dot}{}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60,
        &fraction[..digits]
    )
}

/// Days since 1970-01-01 as (year, month, day) in the proleptic Gregorian calendar (Howard Hinnant's
/// civil-from-days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// How long ago `then` was, relative to `now` (both Unix seconds): `just now`, `5 min ago`, `3 days ago`.
pub fn ago(then: u64, now: u64) -> String {
    let s = now.saturating_sub(then);
    let plural = |n: u64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match s {
        0..=59 => "just now".to_string(),
        60..=3_599 => format!("{} min ago", s / 60),
        3_600..=86_399 => plural(s / 3_600, "hour"),
        86_400..=2_591_999 => plural(s / 86_400, "day"),
        2_592_000..=31_535_999 => plural(s / 2_592_000, "month"),
        _ => plural(s / 31_536_000, "year"),
    }
}

/// A parameter count, short: `27.5K`, `494M`, `7.62B`.
pub fn params(n: u64) -> String {
    let n = n as f64;
    match n {
        n if n >= 1e9 => format!("{:.2}B", n / 1e9),
        n if n >= 1e6 => format!("{:.0}M", n / 1e6),
        n if n >= 1e3 => format!("{:.1}K", n / 1e3),
        n => format!("{n}"),
    }
}

/// Bytes as lowercase hexadecimal, as hashes are written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A count as the hub shows downloads and likes: `950`, `12.3k`, `4.5M`.
pub fn count(n: u64) -> String {
    let f = n as f64;
    match n {
        0..=999 => n.to_string(),
        1_000..=999_949 => format!("{:.1}k", f / 1e3).replace(".0k", "k"),
        _ => format!("{:.1}M", f / 1e6).replace(".0M", "M"),
    }
}

/// A duration in seconds, short: `45 s`, `3 min 20 s`, `2 h 5 min`.
pub fn duration(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3_599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3_600, seconds % 3_600 / 60),
    }
}

/// The current time in Unix seconds.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_decimal_units_with_three_significant_digits() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1000), "1.00 kB");
        assert_eq!(bytes(1536), "1.54 kB");
        assert_eq!(bytes(4_920_000_000), "4.92 GB");
        assert_eq!(bytes(999_999), "1.00 MB");
        assert_eq!(bytes(123_456_789), "123 MB");
        assert_eq!(bytes(u64::MAX), "18.4 EB");
    }

    #[test]
    fn parameter_counts_are_short() {
        assert_eq!(params(27_520), "27.5K");
        assert_eq!(params(494_032_768), "494M");
        assert_eq!(params(7_615_616_512), "7.62B");
        assert_eq!(params(12), "12");
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration(45), "45 s");
        assert_eq!(duration(200), "3 min 20 s");
        assert_eq!(duration(7_500), "2 h 5 min");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(ago(100, 100), "just now");
        assert_eq!(ago(0, 59), "just now");
        assert_eq!(ago(0, 300), "5 min ago");
        assert_eq!(ago(0, 3_600), "1 hour ago");
        assert_eq!(ago(0, 3 * 86_400), "3 days ago");
        assert_eq!(ago(0, 400 * 86_400), "1 year ago");
        assert_eq!(ago(200, 100), "just now", "a time in the future is not negative");
    }
}

/// A size as people write it: `200GB`, `1.5 TB`, `500MiB`, `4096` (bytes); decimal and binary units.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = (text[..split].trim(), text[split..].trim());
    let n: f64 = number.parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = n * scale;
    (bytes < u64::MAX as f64).then_some(bytes.round() as u64)
}

#[cfg(test)]
mod parse_bytes_tests {
    #[test]
    fn sizes_as_people_write_them() {
        assert_eq!(super::parse_bytes("200GB"), Some(200_000_000_000));
        assert_eq!(super::parse_bytes("1.5 TB"), Some(1_500_000_000_000));
        assert_eq!(super::parse_bytes("500MiB"), Some(500 << 20));
        assert_eq!(super::parse_bytes("4096"), Some(4096));
        assert_eq!(super::parse_bytes("lots"), None);
        assert_eq!(super::parse_bytes("-1GB"), None);
    }
}
