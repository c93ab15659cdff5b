//! The HTML pages: the page frame, the home page (per-layer table, search box), the
//! search page, and the error page. The neuron page is in `neuron_page`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::api::{count, params, query_text, Params};
use super::{blocking, ApiError, App};
use crate::render::html::token_text;
use crate::render::xml_escape as esc;
use crate::view::{Hit, HitPath, InfoView};
use crate::NeuronId;

/// Search results per page.
pub const PAGE: usize = 25;

/// Queries linked from the home page as examples.
const EXAMPLES: &[&str] = &[
    "token:the",
    "after:#digit",
    "context:/^[A-Z]/",
    "#punct f1>=0.5",
    "layer:0 act>0.9",
];

/// A whole page: the header with the search box (holding `query`), then `body`.
pub(crate) fn frame(app: &App, title: &str, query: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · n2g-index</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
         <body><header class=\"top\"><a class=\"brand\" href=\"/\">n2g-index</a>\
         <span class=\"model\">{}{}</span>\
         <form class=\"search\" action=\"/search\" method=\"get\" role=\"search\">\
         <input name=\"q\" type=\"search\" placeholder=\"token:paris context:capital\" value=\"{}\" aria-label=\"query\">\
         <button type=\"submit\">Search</button></form></header>\n<main>{body}</main>\n\
         <footer>n2g-index · Neuron to Graph explanations of {}</footer></body></html>\n",
        esc(title),
        esc(&app.index.run().model.name),
        app.index
            .units()
            .sae
            .as_ref()
            .map(|s| format!(" · SAE latents at {}", esc(&s.hook.to_string())))
            .unwrap_or_default(),
        esc(query),
        esc(&app.index.run().model.name),
    )
}

/// An HTML response with `status`.
fn html(status: StatusCode, page: String) -> Response {
    (status, Html(page)).into_response()
}

/// A readable error page (no index data needed).
pub(crate) fn error_page(e: &ApiError) -> Response {
    let reason = e.status.canonical_reason().unwrap_or("error");
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} {reason} · n2g-index</title>\
         <link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body><header class=\"top\">\
         <a class=\"brand\" href=\"/\">n2g-index</a></header><main><section class=\"error\">\
         <h1>{} {reason}</h1><p>{}</p><p><a href=\"/\">Back to the model</a></p></section></main></body></html>\n",
        e.status.as_u16(),
        e.status.as_u16(),
        esc(&e.message)
    );
    html(e.status, page)
}

/// Any path that is not a page: the not-found page.
pub async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    error_page(&ApiError::not_found(format!("no page at {}", uri.path())))
}

/// A number with thousands separators.
pub(crate) fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `GET /`: the model, its per-layer evaluation, a search box.
pub async fn home(State(app): State<Arc<App>>) -> Response {
    let info = match blocking(&app, |app| Ok(app.info()?.clone())).await {
        Ok(info) => info,
        Err(e) => return error_page(&e),
    };
    let mut body = String::new();
    let _ = write!(
        body,
        "<section class=\"intro\"><h1>{}</h1><p class=\"facts\">{} · {} {}s in layers {:?} · {} with a graph · corpus {} ({} documents) · {:.1} MB on disk</p>",
        esc(&info.model.name),
        esc(&info.units.describe()),
        thousands(info.neurons as u64),
        info.units.unit_name(),
        info.scan.layers,
        thousands(info.graphs as u64),
        esc(&info.corpus.paths.join(", ")),
        thousands(info.corpus.documents),
        info.size_bytes as f64 / 1e6,
    );
    body.push_str(
        "<form class=\"search big\" action=\"/search\" method=\"get\" role=\"search\">\
         <input name=\"q\" type=\"search\" placeholder=\"search the graphs: token:paris context:capital\" aria-label=\"query\" autofocus>\
         <button type=\"submit\">Search</button></form><p class=\"examples\">Try ",
    );
    for (i, q) in EXAMPLES.iter().enumerate() {
        let sep = if i == 0 { "" } else { " · " };
        let _ = write!(
            body,
            "{sep}<a href=\"/search?q={}\"><code>{}</code></a>",
            url_encode(q),
            esc(q)
        );
    }
    let first = info
        .scan
        .layers
        .first()
        .zip(info.scan.neurons.first())
        .map(|(&l, &n)| NeuronId::new(l as usize, n as usize).to_string())
        .unwrap_or_default();
    let _ = write!(
        body,
        "</p><form class=\"jump\" action=\"/neuron\" method=\"get\"><label>Go to {} \
         <input name=\"id\" placeholder=\"{first}\" size=\"10\"></label> <button type=\"submit\">Open</button></form></section>",
        info.units.unit_name()
    );
    body.push_str(&layer_table(&info));
    html(StatusCode::OK, frame(&app, &info.model.name, "", &body))
}

/// The per-layer evaluation table of the home page.
fn layer_table(info: &InfoView) -> String {
    let mut t = format!(
        "<section><h2>Layers</h2><p class=\"note\">Means over the {}s with a graph, on their held-out top examples; the baseline predicts each token's mean activation.</p>\
         <table class=\"layers\"><thead><tr><th>layer</th><th>graphs</th><th>F1</th><th>baseline F1</th><th>precision</th><th>recall</th>\
         <th>1−MSE/Var</th><th>baseline</th><th>random FPR</th><th>lines</th></tr></thead><tbody>",
        info.units.unit_name()
    );
    for l in &info.layers {
        let _ = write!(
            t,
            "<tr><td><a href=\"/search?q=layer:{0}\">{0}</a></td><td>{1}</td><td><b>{2:.3}</b></td><td>{3:.3}</td>\
             <td>{4:.3}</td><td>{5:.3}</td><td>{6:.3}</td><td>{7:.3}</td><td>{8:.4}</td><td>{9:.1}</td></tr>",
            l.layer,
            thousands(l.neurons as u64),
            l.f1,
            l.baseline_f1,
            l.precision,
            l.recall,
            l.variance_explained,
            l.baseline_variance_explained,
            l.random_fpr,
            l.lines
        );
    }
    if info.layers.is_empty() {
        t.push_str("<tr><td colspan=\"10\">No graphs yet: the build has not reached the graph stage.</td></tr>");
    }
    t.push_str("</tbody></table></section>");
    t
}

/// `GET /neuron?id=L:N`: the neuron jump box, redirecting to the neuron's page.
pub async fn neuron_jump(State(app): State<Arc<App>>, p: Params) -> Response {
    let id = params(p).and_then(|p| {
        let text = p
            .get("id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        text.parse::<NeuronId>().map_err(ApiError::bad_request)
    });
    match id.and_then(|id| Ok(app.index.check_neuron(id).map(|_| id)?)) {
        Ok(id) => Redirect::to(&format!("/neuron/{id}")).into_response(),
        Err(e) => error_page(&e),
    }
}

/// `GET /search?q=...&page=N`: a page of the query's results, or its error shown where
/// the user typed it.
pub async fn search(State(app): State<Arc<App>>, p: Params) -> Response {
    let p = match params(p) {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let raw = p.get("q").cloned().unwrap_or_default();
    if raw.trim().is_empty() {
        return html(
            StatusCode::OK,
            frame(&app, "search", "", "<section><h1>Search</h1><p>Type a query in the box above, e.g. <code>token:the</code>. The grammar is in <code>schema/QUERY.md</code>.</p></section>"),
        );
    }
    let max_page = app.limits.page_size.div_ceil(PAGE).max(1);
    let page = match count(&p, "page", 1, max_page) {
        Ok(page) => page,
        Err(e) => return error_page(&e),
    };
    let run = async {
        let q = query_text(&p, &app.limits)?;
        let limit = (page * PAGE + 1).min(app.limits.page_size);
        let hits = blocking(&app, move |app| Ok(app.index.query(&q, limit)?)).await?;
        Ok::<_, ApiError>((page, hits))
    };
    match run.await {
        Ok((page, hits)) => html(
            StatusCode::OK,
            frame(&app, &raw, &raw, &results(&raw, page, &hits)),
        ),
        Err(e) if e.status != StatusCode::BAD_REQUEST => error_page(&e),
        Err(e) => {
            let body = query_error(&raw, &e);
            html(e.status, frame(&app, "query error", &raw, &body))
        }
    }
}

/// The results table of one page.
fn results(q: &str, page: usize, hits: &[Hit]) -> String {
    let start = (page - 1) * PAGE;
    let shown = hits.get(start..).unwrap_or_default();
    let more = shown.len() > PAGE;
    let shown = &shown[..shown.len().min(PAGE)];
    let mut b = format!("<section><h1>Results for <code>{}</code></h1>", esc(q));
    if shown.is_empty() {
        b.push_str("<p>No neuron matches this query.</p></section>");
        return b;
    }
    let _ = write!(
        b,
        "<p class=\"note\">{}–{} of {}{} neurons, best match first.</p>\
         <table class=\"results\"><thead><tr><th>neuron</th><th>layer</th><th>best path</th><th>act</th><th>F1</th><th>paths</th></tr></thead><tbody>",
        start + 1,
        start + shown.len(),
        if more { "more than " } else { "" },
        start + shown.len(),
    );
    for h in shown {
        let _ = write!(
            b,
            "<tr><td><a class=\"neuron\" href=\"/neuron/{0}\">{0}</a></td><td>{1}</td><td class=\"path\">{2}</td>\
             <td>{3:.3}</td><td>{4:.3}</td><td>{5}</td></tr>",
            h.neuron,
            h.layer,
            h.paths.first().map(path_html).unwrap_or_default(),
            h.score,
            h.f1,
            h.paths.len()
        );
    }
    b.push_str("</tbody></table><nav class=\"pages\">");
    let link = |page: usize, text: &str| {
        format!(
            "<a href=\"/search?q={}&amp;page={page}\">{text}</a>",
            url_encode(q)
        )
    };
    if page > 1 {
        b.push_str(&link(page - 1, "← previous"));
    }
    if more {
        b.push_str(&link(page + 1, "next →"));
    }
    b.push_str("</nav></section>");
    b
}

/// A path in text order as token chips: context blue, the activating token red, runs of
/// IGNORE as one `…`.
pub(crate) fn path_html(path: HitPath<'_>) -> String {
    let mut out = String::new();
    let last = path.len().saturating_sub(1);
    for (i, t) in path.iter().enumerate() {
        if t == "*" {
            if !out.ends_with("<span class=\"gap\">…</span>") {
                out.push_str("<span class=\"gap\">…</span>");
            }
            continue;
        }
        let class = if i == last { "chip act" } else { "chip ctx" };
        let _ = write!(
            out,
            "<span class=\"{class}\">{}</span>",
            esc(&token_text(t))
        );
    }
    out
}

/// A query error shown under the query, the error's position marked.
fn query_error(q: &str, e: &ApiError) -> String {
    let mut b = String::from("<section class=\"error\"><h1>This query cannot run</h1>");
    if let Some(pos) = e.position {
        let mut at = pos.min(q.len());
        while !q.is_char_boundary(at) {
            at -= 1;
        }
        let (before, rest) = q.split_at(at);
        let mut chars = rest.chars();
        let marked: String = chars.next().map(String::from).unwrap_or_else(|| " ".into());
        let _ = write!(
            b,
            "<pre class=\"query\">{}<mark title=\"position {pos}\">{}</mark>{}</pre><p>At position {pos}: {}</p>",
            esc(before),
            esc(&marked),
            esc(chars.as_str()),
            esc(&e.message)
        );
    } else {
        let _ = write!(b, "<p>{}</p>", esc(&e.message));
    }
    b.push_str("<p class=\"note\">The grammar is in <code>schema/QUERY.md</code>; e.g. <code>token:paris context:capital</code>, <code>after:#digit</code>, <code>layer:0..2 f1&gt;=0.5</code>.</p></section>");
    b
}

/// `s` percent-encoded for a URL query value.
pub(crate) fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}
