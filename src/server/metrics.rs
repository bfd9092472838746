//! Request counts and latencies, served as Prometheus text at `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Latency histogram bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// One route's latencies.
#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Requests at or under each bound of [`BUCKETS`] (not cumulative here; summed when rendered).
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Debug, Default)]
struct Counters {
    /// Requests by (route, method, status).
    requests: BTreeMap<(String, String, u16), u64>,
    /// Latency by route.
    latency: BTreeMap<String, Histogram>,
    /// Retriever batches run, and the queries they held.
    batches: u64,
    batched_queries: u64,
    largest_batch: usize,
}

/// The server's counters (shared by every request; one short lock per request).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    counters: Mutex<Counters>,
}

impl Metrics {
    /// Counts one request to `route` (the matched pattern, not the path: `/items/{key}`).
    pub(crate) fn record_request(&self, route: &str, method: &str, status: u16, took: Duration) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        *counters
            .requests
            .entry((route.to_owned(), method.to_owned(), status))
            .or_default() += 1;
        let histogram = counters.latency.entry(route.to_owned()).or_default();
        let seconds = took.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|&bound| seconds <= bound) {
            histogram.counts[bucket] += 1;
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// Counts one retriever batch of `size` queries.
    pub(crate) fn record_batch(&self, size: usize) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters.batches += 1;
        counters.batched_queries += size as u64;
        counters.largest_batch = counters.largest_batch.max(size);
    }

    /// The Prometheus text exposition of every counter.
    pub(crate) fn render(&self) -> String {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        out.push_str("# HELP fiq_http_requests_total HTTP requests by route, method and status.\n");
        out.push_str("# TYPE fiq_http_requests_total counter\n");
        for ((route, method, status), count) in &counters.requests {
            let _ = writeln!(
                out,
                "fiq_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str(
            "# HELP fiq_http_request_duration_seconds Time to answer a request, by route.\n",
        );
        out.push_str("# TYPE fiq_http_request_duration_seconds histogram\n");
        for (route, histogram) in &counters.latency {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "fiq_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "fiq_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "fiq_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "fiq_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                histogram.count
            );
        }
        out.push_str("# HELP fiq_query_batches_total Retriever batches run for /query.\n");
        out.push_str("# TYPE fiq_query_batches_total counter\n");
        let _ = writeln!(out, "fiq_query_batches_total {}", counters.batches);
        out.push_str("# HELP fiq_query_batched_total Queries answered in those batches.\n");
        out.push_str("# TYPE fiq_query_batched_total counter\n");
        let _ = writeln!(out, "fiq_query_batched_total {}", counters.batched_queries);
        out.push_str("# HELP fiq_query_largest_batch The largest batch so far.\n");
        out.push_str("# TYPE fiq_query_largest_batch gauge\n");
        let _ = writeln!(out, "fiq_query_largest_batch {}", counters.largest_batch);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets_and_counts() {
        let metrics = Metrics::default();
        metrics.record_request("/query", "POST", 200, Duration::from_millis(3));
        metrics.record_request("/query", "POST", 400, Duration::from_millis(30));
        metrics.record_batch(2);
        let text = metrics.render();
        assert!(text.contains(
            "fiq_http_requests_total{route=\"/query\",method=\"POST\",status=\"200\"} 1"
        ));
        assert!(text
            .contains("fiq_http_request_duration_seconds_bucket{route=\"/query\",le=\"0.005\"} 1"));
        assert!(text
            .contains("fiq_http_request_duration_seconds_bucket{route=\"/query\",le=\"0.05\"} 2"));
        assert!(text.contains("fiq_http_request_duration_seconds_count{route=\"/query\"} 2"));
        assert!(text.contains("fiq_query_batched_total 2"));
    }
}
