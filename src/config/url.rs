//! URLs the daemon sends what must stay private to: the checks `[sso]` and `[audit]` share.

/// Whether `url` is `https://`, or `http://` to a loopback address (a collector or test
/// beside the daemon): where the daemon sends what an eavesdropper must not read.
pub(crate) fn secure_or_loopback(url: &str) -> bool {
    if url.starts_with("https://") {
        return url.len() > "https://".len();
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
