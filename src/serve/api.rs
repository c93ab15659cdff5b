//! The JSON API: the same view types as the CLI's `--json` (`schema/*.schema.json`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::{blocking, ApiError, App, Limits};
use crate::view::{Hit, InfoView, NeuronView, PredictView, SimilarHit};
use crate::NeuronId;

/// A request's query parameters, or why they cannot be read.
pub(crate) type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// The query parameters, or a 400.
pub(crate) fn params(p: Params) -> Result<HashMap<String, String>, ApiError> {
    p.map(|q| q.0)
        .map_err(|e| ApiError::bad_request(format!("the query string cannot be read: {e}")))
}

/// The whole number `name` of `params` in `1..=max`, `default` when absent.
pub(crate) fn count(
    params: &HashMap<String, String>,
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = params.get(name) else {
        return Ok(default);
    };
    match text.trim().parse::<usize>() {
        Ok(0) => Err(ApiError::bad_request(format!("{name}: must be at least 1"))),
        Ok(n) if n > max => Err(ApiError::bad_request(format!(
            "{name}: {n} is above this server's limit of {max}"
        ))),
        Ok(n) => Ok(n),
        Err(_) => Err(ApiError::bad_request(format!(
            "{name}: `{text}` is not a whole number"
        ))),
    }
}

/// A neuron id from a URL path, or a 400.
pub(crate) fn neuron_id(path: Result<Path<String>, PathRejection>) -> Result<NeuronId, ApiError> {
    let Path(text) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    text.parse().map_err(ApiError::bad_request)
}

/// The query `q` of `params`, checked against the length limit.
pub(crate) fn query_text(
    params: &HashMap<String, String>,
    limits: &Limits,
) -> Result<String, ApiError> {
    let q = params.get("q").map(|q| q.trim()).unwrap_or_default();
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "q: the query is missing (e.g. q=token:paris)",
        ));
    }
    if q.len() > limits.query_bytes {
        return Err(ApiError::bad_request(format!(
            "q: the query is {} bytes long; this server takes at most {}",
            q.len(),
            limits.query_bytes
        )));
    }
    Ok(q.to_string())
}

/// `GET /api/info`: what the index holds (`info --json`).
pub async fn info(State(app): State<Arc<App>>) -> Result<Json<InfoView>, ApiError> {
    let info = blocking(&app, |app| Ok(app.info()?.clone())).await?;
    Ok(Json(info))
}

/// `GET /api/query?q=...&limit=N`: neurons matching a query (`query --json`).
pub async fn query(State(app): State<Arc<App>>, p: Params) -> Result<Json<Vec<Hit>>, ApiError> {
    let p = params(p)?;
    let q = query_text(&p, &app.limits)?;
    let limit = count(&p, "limit", 20, app.limits.page_size)?;
    let hits = blocking(&app, move |app| Ok(app.index.query(&q, limit)?)).await?;
    Ok(Json(hits))
}

/// `GET /api/neuron/L:N?examples=N`: a neuron's view (`show --json`), with all its kept
/// examples unless `examples` says fewer.
pub async fn neuron(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> Result<Json<NeuronView>, ApiError> {
    let id = neuron_id(path)?;
    let p = params(p)?;
    let examples = count(&p, "examples", app.limits.examples, app.limits.examples)?;
    let view = blocking(&app, move |app| Ok(app.index.neuron(id, Some(examples))?)).await?;
    Ok(Json(view))
}

/// `GET /api/similar/L:N?top=N&threshold=T`: neurons whose token sets overlap
/// (`similar --json`).
pub async fn similar(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    p: Params,
) -> Result<Json<Vec<SimilarHit>>, ApiError> {
    let id = neuron_id(path)?;
    let p = params(p)?;
    let top = count(&p, "top", 10, app.limits.similar)?;
    let threshold = match p.get("threshold") {
        None => 0.9,
        Some(t) => match t.trim().parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => v,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "threshold: `{t}` is not a number between 0 and 1"
                )))
            }
        },
    };
    let hits = blocking(&app, move |app| {
        Ok(app.index.similar(id, top, threshold)?)
    })
    .await?;
    Ok(Json(hits))
}

/// The body of `POST /api/predict`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    neuron: String,
    text: String,
}

/// `POST /api/predict` with `{"neuron": "L:N", "text": "..."}`: the neuron's real
/// activation beside its graph's prediction, token by token (`predict --json`).
pub async fn predict(
    State(app): State<Arc<App>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PredictView>, ApiError> {
    let body = body.map_err(|e| {
        let message = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            format!(
                "the request body is larger than this server's limit of {} bytes",
                app.limits.body_bytes
            )
        } else {
            e.body_text()
        };
        ApiError::new(e.status(), message)
    })?;
    let request: PredictRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be a JSON object {{\"neuron\": \"L:N\", \"text\": \"...\"}}: {e}"
        ))
    })?;
    let id: NeuronId = request.neuron.parse().map_err(ApiError::bad_request)?;
    if !app.has_model() {
        return Err(ApiError::unavailable(
            "this server has no model: start it with --model to test prompts",
        ));
    }
    let view = blocking(&app, move |app| {
        let model = app.model.as_ref().expect("checked above");
        let tokens = model
            .tokenizer()
            .encode(&request.text, app.index.run().scan.bos)?
            .ids
            .len();
        if tokens > app.limits.prompt_tokens {
            return Err(ApiError::bad_request(format!(
                "text: the prompt is {tokens} tokens long; this server takes at most {}",
                app.limits.prompt_tokens
            )));
        }
        Ok(app.index.predict(model, id, &request.text)?)
    })
    .await?;
    Ok(Json(view))
}

/// A method that an API route does not take.
pub async fn method_not_allowed(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take this method", uri.path()),
    )
}

/// An API path that does not exist.
pub async fn not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::not_found(format!(
        "no API route {} (routes: /api/info, /api/query, /api/neuron/L:N, /api/similar/L:N, /api/predict)",
        uri.path()
    ))
}
