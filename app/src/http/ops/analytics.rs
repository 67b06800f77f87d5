//! `GET /v1/analytics/summary` (SPEC 5.8).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use chrono::{Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::AppError;
use crate::http::extract::Query;
use crate::http::problem::Problem;
use crate::ops::Ops;
use crate::readmodel::analytics::DailyCounts;

/// The longest range one summary covers.
const MAX_DAYS: i64 = 366;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SummaryQuery {
    /// First day (UTC, `YYYY-MM-DD`); default 89 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day, included; default today.
    pub to: Option<NaiveDate>,
    /// `day` (rows per day and number) or `total` (the totals only).
    pub granularity: Option<String>,
    pub number_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Metrics {
    pub inbound: u64,
    pub outbound: u64,
    pub delivered: u64,
    pub read: u64,
    pub failed: u64,
    pub failed_by_kind: BTreeMap<String, u64>,
    /// delivered / outbound; null without outbound messages.
    pub delivery_rate: Option<f64>,
    /// read / delivered; null without delivered messages.
    pub read_rate: Option<f64>,
    pub first_response_median_secs: Option<i64>,
    pub first_response_p90_secs: Option<i64>,
    pub first_responses: u64,
    /// Template sends by template name.
    pub templates: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DayRow {
    pub date: NaiveDate,
    pub number_id: String,
    #[serde(flatten)]
    pub metrics: Metrics,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub granularity: String,
    pub totals: Metrics,
    /// Per day and business number (days without traffic are left out).
    pub days: Vec<DayRow>,
}

/// The nearest-rank percentile of sorted samples.
pub(crate) fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn rate(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| ((part as f64 / whole as f64) * 10_000.0).round() / 10_000.0)
}

fn metrics<'a>(rows: impl Iterator<Item = &'a DailyCounts>) -> Metrics {
    let mut m = Metrics::default();
    let mut samples = Vec::new();
    for r in rows {
        m.inbound += r.inbound;
        m.outbound += r.outbound;
        m.delivered += r.delivered;
        m.read += r.read;
        m.failed += r.failed;
        for (k, v) in &r.failed_by_kind {
            *m.failed_by_kind.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &r.templates {
            *m.templates.entry(k.clone()).or_default() += v;
        }
        samples.extend_from_slice(&r.first_response_secs);
    }
    samples.sort_unstable();
    m.delivery_rate = rate(m.delivered, m.outbound);
    m.read_rate = rate(m.read, m.delivered);
    m.first_response_median_secs = percentile(&samples, 50);
    m.first_response_p90_secs = percentile(&samples, 90);
    m.first_responses = samples.len() as u64;
    m
}

/// Message counts, rates, first-response times and template usage per day and number.
#[utoipa::path(
    get, path = "/v1/analytics/summary", tag = "analytics", params(SummaryQuery),
    responses((status = 200, body = Summary), (status = 422, body = Problem)),
    security(("bearer" = []))
)]
pub async fn summary(
    State(ops): State<Arc<Ops>>,
    caller: Caller,
    Query(q): Query<SummaryQuery>,
) -> Result<axum::Json<Summary>, AppError> {
    let to = q.to.unwrap_or_else(|| ops.app.clock.now().date_naive());
    let from = q.from.unwrap_or(to - Duration::days(89));
    if from > to {
        return Err(AppError::validation("from", "must not be after `to`"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(AppError::validation("from", format!("a summary covers at most {MAX_DAYS} days")));
    }
    let granularity = q.granularity.unwrap_or_else(|| "day".into());
    if granularity != "day" && granularity != "total" {
        return Err(AppError::validation("granularity", "must be day or total"));
    }
    let rows = ops.analytics.daily(&caller.tenant_id, from, to, q.number_id.as_deref()).await?;
    let totals = metrics(rows.values());
    let days = if granularity == "day" {
        rows.iter()
            .map(|((date, number_id), r)| DayRow {
                date: *date,
                number_id: number_id.clone(),
                metrics: metrics(std::iter::once(r)),
            })
            .collect()
    } else {
        vec![]
    };
    Ok(axum::Json(Summary { from, to, granularity, totals, days }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let s: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&s, 50), Some(5));
        assert_eq!(percentile(&s, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(rate(1, 3), Some(0.3333));
        assert_eq!(rate(1, 0), None);
    }
}
