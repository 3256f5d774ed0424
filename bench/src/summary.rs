//! Medians and min–max of the repeated runs of one scenario on one server.

use serde::Serialize;

use crate::result::RunResult;

/// The runs of one scenario on one server, figure by figure: `median`, `min` and `max` are
/// [`RunResult`]s whose every number is the median (minimum, maximum) of that number over the
/// runs (integers rounded); names and errors come from the runs (errors of every run, tagged).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Server name.
    pub server: String,
    /// Runs summarised.
    pub runs: usize,
    /// Medians (mean of the two middle runs for an even count).
    pub median: RunResult,
    /// Minima.
    pub min: RunResult,
    /// Maxima.
    pub max: RunResult,
}

/// Groups `results` by scenario and server (in order of first appearance) and summarises each
/// group.
pub fn summarise(results: &[RunResult]) -> Vec<Summary> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in results {
        let k = (r.scenario.as_str(), r.server.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(scenario, server)| {
            let runs: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.scenario == scenario && r.server == server)
                .collect();
            let mut median = combine(&runs, median);
            median.errors = runs
                .iter()
                .flat_map(|r| {
                    r.errors
                        .iter()
                        .map(move |e| format!("run {}: {e}", r.repeat))
                })
                .collect();
            Summary {
                scenario: scenario.to_string(),
                server: server.to_string(),
                runs: runs.len(),
                median,
                min: combine(&runs, |v| v.iter().copied().fold(f64::INFINITY, f64::min)),
                max: combine(&runs, |v| {
                    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
                }),
            }
        })
        .collect()
}

/// The median of `v` (sorted in place); 0 when empty.
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A [`RunResult`] whose numbers are `pick` of the runs' numbers, field by field (through
/// their JSON form, so that every figure, present and future, is covered).
fn combine(runs: &[&RunResult], pick: fn(&mut [f64]) -> f64) -> RunResult {
    let values: Vec<serde_json::Value> = runs
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    let Some(mut out) = values.first().cloned() else {
        return RunResult::default();
    };
    if let Some(obj) = out.as_object_mut() {
        for (k, v) in obj.iter_mut() {
            if !v.is_number() {
                continue;
            }
            let nums: Vec<&serde_json::Value> = values.iter().filter_map(|x| x.get(k)).collect();
            let mut xs: Vec<f64> = nums.iter().filter_map(|n| n.as_f64()).collect();
            let y = pick(&mut xs);
            *v = if nums.iter().all(|n| n.is_u64()) {
                serde_json::json!(y.round().max(0.0) as u64)
            } else {
                serde_json::json!(y)
            };
        }
        obj.insert("repeat".into(), serde_json::json!(0));
    }
    serde_json::from_value(out).unwrap_or_default()
}
