//! Test controls under `/mock/`, a prefix no real engine serves: `POST /mock/failure_rate`
//! `{"rate": 0.0..=1.0}` changes the failure rate at runtime.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::{MockError, State};

/// Body of `POST /mock/failure_rate`, also its answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FailureRate {
    /// Fraction of completion requests answered 500 (every Nth, N = round(1/rate)).
    pub rate: f64,
}

/// `POST /mock/failure_rate`: 200 `{"rate": x}` with the new rate; 400 when the body is not
/// `{"rate": x}` with x within 0.0..=1.0. Counting restarts at the change.
pub async fn failure_rate(
    state: web::Data<State>,
    body: web::Bytes,
) -> Result<HttpResponse, MockError> {
    let FailureRate { rate } = serde_json::from_slice(&body)
        .map_err(|e| MockError::BadRequest(format!("invalid JSON body: {e}")))?;
    state
        .set_failure_rate(rate)
        .map_err(|e| MockError::BadRequest(e.to_string()))?;
    tracing::info!(rate, "failure rate changed");
    Ok(HttpResponse::Ok().json(FailureRate {
        rate: state.failure_rate(),
    }))
}
