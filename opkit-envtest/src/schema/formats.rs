//! The string formats the API server checks (`date-time`, `uuid`, `cidr`, ...).

use super::compiled;

/// Checks a string format the server knows; returns the offending text.
pub(super) fn check_format(format: &str, text: &str) -> Option<String> {
    let ok = match format {
        "date-time" | "datetime" => text.parse::<jiff::Timestamp>().is_ok(),
        "date" => jiff::civil::Date::strptime("%Y-%m-%d", text).is_ok(),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => is_uuid(text, format),
        "byte" => is_base64(text),
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => is_cidr(text),
        "mac" => is_mac(text),
        "hostname" => is_hostname(text),
        "duration" => is_go_duration(text),
        _ => true,
    };
    (!ok).then(|| text.to_string())
}

fn is_uuid(text: &str, format: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let version = match format {
        "uuid3" => Some(b'3'),
        "uuid4" => Some(b'4'),
        "uuid5" => Some(b'5'),
        _ => None,
    };
    shape && version.is_none_or(|v| bytes[14] == v)
}

fn is_base64(text: &str) -> bool {
    let t = text.trim_end_matches('=');
    text.len().is_multiple_of(4)
        && text.len() - t.len() <= 2
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, bits)) = text.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => bits <= 32,
        Ok(std::net::IpAddr::V6(_)) => bits <= 128,
        Err(_) => false,
    }
}

fn is_mac(text: &str) -> bool {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    matches!(parts.len(), 6 | 8 | 20)
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_hostname(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 255
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_go_duration(text: &str) -> bool {
    compiled(r"^[-+]?(\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d|w))+$|^0$")
        .is_some_and(|re| re.is_match(text))
}
