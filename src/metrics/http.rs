//! `http_requests_total` and `http_request_duration_seconds`, counted by each HTTP worker into
//! series of its own and summed at each scrape.
//!
//! One shared series is a handful of atomic writes to the same cache lines from every worker on
//! every request (the counter; the histogram's count, sum and bucket): on this 2-core host,
//! serving a cached `GET /api/sessions`, leaving them out cut the daemon's user CPU by about
//! 0.15 µs a request (docs/design.md "Serving reads"). A worker's own series are written by
//! that worker alone; a scrape reads every worker's and adds them up, so what it shows is the
//! same as one shared series would show, at the moment of the scrape.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, Histogram, Metric, MetricFamily, MetricType};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

/// Latency buckets, seconds.
const BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// One worker's series.
#[derive(Clone)]
pub struct WorkerSeries {
    /// `{method, route, status}`.
    pub requests: IntCounterVec,
    /// `{method, route}`.
    pub duration: HistogramVec,
}

impl WorkerSeries {
    fn new() -> Result<Self, prometheus::Error> {
        Ok(WorkerSeries {
            requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by method, route pattern and status.",
                ),
                &["method", "route", "status"],
            )?,
            duration: HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by method and route pattern.",
                )
                .buckets(BUCKETS.to_vec()),
                &["method", "route"],
            )?,
        })
    }
}

/// Every worker's series, registered as one collector (a clone shares them).
#[derive(Clone)]
pub struct HttpSeries {
    /// Never counted into: its descriptions are what the registry checks names against.
    described: WorkerSeries,
    workers: Arc<Mutex<Vec<WorkerSeries>>>,
}

impl HttpSeries {
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(HttpSeries {
            described: WorkerSeries::new()?,
            workers: Arc::default(),
        })
    }

    /// Series for one more worker (each worker takes its own when it builds its app). A worker
    /// that stops keeps its counts in the sum: counters never go back.
    pub fn worker(&self) -> WorkerSeries {
        // The same names and labels as `described`, which was made already.
        let series = WorkerSeries::new().unwrap_or_else(|_| self.described.clone());
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(series.clone());
        series
    }
}

impl Collector for HttpSeries {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.described.requests.desc();
        descs.extend(self.described.duration.desc());
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let workers = self
            .workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        vec![
            sum(workers.iter().flat_map(|w| w.requests.collect())),
            sum(workers.iter().flat_map(|w| w.duration.collect())),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// One family of the same name: the metrics of the same labels added up.
fn sum(families: impl Iterator<Item = MetricFamily>) -> Option<MetricFamily> {
    let mut first: Option<MetricFamily> = None;
    let mut by_labels: BTreeMap<Vec<(String, String)>, Metric> = BTreeMap::new();
    for mut family in families {
        let kind = family.get_field_type();
        for metric in family.take_metric() {
            let labels = metric
                .get_label()
                .iter()
                .map(|l| (l.name().to_owned(), l.value().to_owned()))
                .collect();
            match by_labels.get_mut(&labels) {
                Some(total) => add(kind, total, &metric),
                None => {
                    by_labels.insert(labels, metric);
                }
            }
        }
        first.get_or_insert(family);
    }
    let mut family = first?;
    family.set_metric(by_labels.into_values().collect());
    Some(family)
}

/// `total` += `more`, for a counter or a histogram (the same buckets: one definition).
fn add(kind: MetricType, total: &mut Metric, more: &Metric) {
    if kind == MetricType::COUNTER {
        let mut counter = Counter::default();
        counter.set_value(total.get_counter().get_value() + more.get_counter().get_value());
        total.set_counter(counter);
        return;
    }
    let (a, b) = (total.get_histogram(), more.get_histogram());
    let mut histogram = Histogram::default();
    histogram.set_sample_count(a.get_sample_count() + b.get_sample_count());
    histogram.set_sample_sum(a.get_sample_sum() + b.get_sample_sum());
    histogram.set_bucket(
        a.get_bucket()
            .iter()
            .zip(b.get_bucket())
            .map(|(x, y)| {
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(x.upper_bound());
                bucket.set_cumulative_count(x.cumulative_count() + y.cumulative_count());
                bucket
            })
            .collect(),
    );
    total.set_histogram(histogram);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(series: &HttpSeries) -> String {
        let registry = prometheus::Registry::new();
        registry.register(Box::new(series.clone())).unwrap();
        let mut out = Vec::new();
        prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut out,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_scrape_shows_every_worker_s_requests_summed_under_one_series() {
        let series = HttpSeries::new().unwrap();
        let (a, b) = (series.worker(), series.worker());
        a.requests
            .with_label_values(&["GET", "/api/sessions", "200"])
            .inc_by(3);
        b.requests
            .with_label_values(&["GET", "/api/sessions", "200"])
            .inc_by(4);
        b.requests
            .with_label_values(&["GET", "/api/sessions", "304"])
            .inc();
        a.duration
            .with_label_values(&["GET", "/api/sessions"])
            .observe(0.0004);
        b.duration
            .with_label_values(&["GET", "/api/sessions"])
            .observe(0.002);
        let text = text(&series);
        for line in [
            r#"http_requests_total{method="GET",route="/api/sessions",status="200"} 7"#,
            r#"http_requests_total{method="GET",route="/api/sessions",status="304"} 1"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/sessions",le="0.0005"} 1"#,
            r#"http_request_duration_seconds_bucket{method="GET",route="/api/sessions",le="0.0025"} 2"#,
            r#"http_request_duration_seconds_count{method="GET",route="/api/sessions"} 2"#,
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE http_requests_total counter").count(),
            1
        );
    }

    #[test]
    fn no_request_yet_is_no_series() {
        let series = HttpSeries::new().unwrap();
        let _worker = series.worker();
        assert!(!text(&series).contains("http_requests_total"));
    }
}
