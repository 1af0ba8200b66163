//! Reading Prometheus text pages: the scale-out workers' and the Temporal server's metrics.
use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The text of `http://addr/metrics`.
pub async fn scrape(addr: SocketAddr) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("metrics at {addr}"))?;
    stream
        .write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    Ok(body)
}

/// The series of `name` in a Prometheus text page: (labels, value).
fn series<'t>(text: &'t str, name: &'t str) -> impl Iterator<Item = (&'t str, f64)> + 't {
    text.lines().filter_map(move |l| {
        let rest = l.strip_prefix(name)?;
        let (labels, value) = rest.rsplit_once(' ')?;
        if !(labels.is_empty() || labels.starts_with('{')) {
            return None;
        }
        Some((labels, value.parse::<f64>().ok()?))
    })
}

/// The sum of every series of `name` (0 when it has none yet).
pub fn metric(text: &str, name: &str) -> f64 {
    series(text, name).map(|(_, v)| v).sum()
}

/// The series of `name` summed by the value of their label `label`.
pub fn by_label(text: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let key = format!("{label}=\"");
    let mut out = BTreeMap::new();
    for (labels, v) in series(text, name) {
        let Some(start) = labels.find(&key).map(|i| i + key.len()) else {
            continue;
        };
        let value = labels[start..].split('"').next().unwrap_or_default();
        *out.entry(value.to_owned()).or_default() += v;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "# HELP x\n\
        orders_stock_lock_hold_seconds_sum{service_name=\"w\"} 0.5\n\
        orders_stock_lock_hold_seconds_sum_other 7\n\
        orders_stock_lock_hold_seconds_count{service_name=\"w\"} 200\n\
        orders_stock_lock_hold_seconds_sum 0.25\n\
        persistence_requests{namespace=\"default\",operation=\"AppendHistoryNodes\",service_name=\"history\"} 3\n\
        persistence_requests{namespace=\"system\",operation=\"AppendHistoryNodes\",service_name=\"history\"} 1\n\
        persistence_requests{namespace=\"default\",operation=\"GetTasks\",service_name=\"matching\"} 2\n";

    #[test]
    fn metric_sums_the_series_of_one_name() {
        assert_eq!(metric(PAGE, "orders_stock_lock_hold_seconds_sum"), 0.75);
        assert_eq!(metric(PAGE, "orders_stock_lock_hold_seconds_count"), 200.0);
        assert_eq!(metric(PAGE, "absent"), 0.0);
    }

    #[test]
    fn by_label_sums_per_value() {
        let ops = by_label(PAGE, "persistence_requests", "operation");
        assert_eq!(ops["AppendHistoryNodes"], 4.0);
        assert_eq!(ops["GetTasks"], 2.0);
        assert_eq!(ops.len(), 2);
    }
}
