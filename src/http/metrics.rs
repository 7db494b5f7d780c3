//! Request counters for `/metrics` (Prometheus text format), kept in
//! atomics: no lock on the request path.

use std::sync::atomic::{AtomicU64, Ordering};

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OTHER"];
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

pub struct Metrics {
    requests: [[AtomicU64; 4]; 7],
    duration_us: AtomicU64,
    bytes_sent: AtomicU64,
}

pub static METRICS: Metrics = Metrics {
    requests: [const { [const { AtomicU64::new(0) }; 4] }; 7],
    duration_us: AtomicU64::new(0),
    bytes_sent: AtomicU64::new(0),
};

impl Metrics {
    pub fn record(&self, method: &str, status: u16, micros: u64, bytes: u64) {
        let m = METHODS.iter().position(|x| *x == method).unwrap_or(METHODS.len() - 1);
        let c = match status {
            300..=399 => 1,
            400..=499 => 2,
            500..=599 => 3,
            _ => 0,
        };
        self.requests[m][c].fetch_add(1, Ordering::Relaxed);
        self.duration_us.fetch_add(micros, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The request counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("# HELP mcr_http_requests_total HTTP requests by method and status class.\n");
        out.push_str("# TYPE mcr_http_requests_total counter\n");
        let mut total = 0;
        for (mi, m) in METHODS.iter().enumerate() {
            for (ci, c) in CLASSES.iter().enumerate() {
                let n = self.requests[mi][ci].load(Ordering::Relaxed);
                total += n;
                if n > 0 {
                    let _ = writeln!(out, "mcr_http_requests_total{{method=\"{m}\",code=\"{c}\"}} {n}");
                }
            }
        }
        out.push_str("# HELP mcr_http_request_duration_seconds Time spent answering HTTP requests.\n");
        out.push_str("# TYPE mcr_http_request_duration_seconds summary\n");
        let secs = self.duration_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "mcr_http_request_duration_seconds_sum {secs}");
        let _ = writeln!(out, "mcr_http_request_duration_seconds_count {total}");
        out.push_str("# HELP mcr_http_response_bytes_total Bytes of response bodies sent.\n");
        out.push_str("# TYPE mcr_http_response_bytes_total counter\n");
        let _ = writeln!(out, "mcr_http_response_bytes_total {}", self.bytes_sent.load(Ordering::Relaxed));
    }
}
