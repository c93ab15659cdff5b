//! The embedded assets: a style sheet and a script, compiled into the binary. Only the
//! names of this table are served; anything else is a 404, so no path can reach a file.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The style sheet of every page.
pub const STYLE: &str = include_str!("assets/style.css");
/// The script of the neuron page (the prompt box).
pub const SCRIPT: &str = include_str!("assets/app.js");

/// The assets by name, with their content types.
const ASSETS: &[(&str, &str, &str)] = &[
    ("style.css", "text/css; charset=utf-8", STYLE),
    ("app.js", "text/javascript; charset=utf-8", SCRIPT),
];

/// `GET /assets/NAME`: one embedded asset, or the not-found page.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => (
            [
                (header::CONTENT_TYPE, *mime),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => super::pages::error_page(&super::ApiError::not_found(format!(
            "no asset named {name}"
        ))),
    }
}
