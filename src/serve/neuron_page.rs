//! The neuron page: statistics and histogram, the graph picture, its evaluation beside
//! the baseline, the prompt box, top examples, similar neurons, previous/next links.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::api::neuron_id;
use super::pages::{error_page, frame, thousands};
use super::{blocking, App};
use crate::n2g::NeuronEval;
use crate::render::html::token_strip;
use crate::render::svg::histogram_svg;
use crate::render::xml_escape as esc;
use crate::view::{ExampleRole, NeuronView, SimilarHit};
use crate::NeuronId;

/// Top examples shown on the page (the API has them all).
pub const EXAMPLES: usize = 20;
/// Similar neurons listed.
pub const SIMILAR: usize = 10;

/// What the page shows, read from the index on the blocking pool.
struct Parts {
    view: NeuronView,
    graph: Option<String>,
    similar: Result<Vec<SimilarHit>, String>,
}

/// `GET /neuron/L:N`: the neuron's page.
pub async fn neuron(
    State(app): State<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match neuron_id(path) {
        Ok(id) => id,
        Err(e) => return error_page(&e),
    };
    let parts = blocking(&app, move |app| {
        let view = app.index.neuron(id, Some(EXAMPLES))?;
        let graph = app.index.graph_svg(id)?;
        let similar = app
            .index
            .similar(id, SIMILAR, 0.9)
            .map_err(|e| e.to_string());
        Ok(Parts {
            view,
            graph,
            similar,
        })
    })
    .await;
    match parts {
        Ok(parts) => {
            let body = page(&app, id, &parts);
            (
                StatusCode::OK,
                Html(frame(
                    &app,
                    &format!("{} {id}", app.index.units().unit_name()),
                    "",
                    &body,
                )),
            )
                .into_response()
        }
        Err(e) => error_page(&e),
    }
}

/// The neuron before and after `id` in the index's order (layers, then indices).
fn neighbours(app: &App, id: NeuronId) -> (Option<NeuronId>, Option<NeuronId>) {
    let scan = &app.index.run().scan;
    let all = |l: u32, n: u32| NeuronId::new(l as usize, n as usize);
    let li = scan.layers.iter().position(|&l| l == id.layer as u32);
    let ni = scan.neurons.binary_search(&id.index).ok();
    let (Some(li), Some(ni)) = (li, ni) else {
        return (None, None);
    };
    let prev = if ni > 0 {
        Some(all(scan.layers[li], scan.neurons[ni - 1]))
    } else if li > 0 {
        scan.neurons.last().map(|&n| all(scan.layers[li - 1], n))
    } else {
        None
    };
    let next = if ni + 1 < scan.neurons.len() {
        Some(all(scan.layers[li], scan.neurons[ni + 1]))
    } else {
        scan.layers
            .get(li + 1)
            .zip(scan.neurons.first())
            .map(|(&l, &n)| all(l, n))
    };
    (prev, next)
}

/// The page's body.
fn page(app: &App, id: NeuronId, parts: &Parts) -> String {
    let v = &parts.view;
    let (prev, next) = neighbours(app, id);
    let link = |n: Option<NeuronId>, text: &str, rel: &str| match n {
        Some(n) => format!("<a rel=\"{rel}\" href=\"/neuron/{n}\">{text}</a>"),
        None => format!("<span class=\"off\">{text}</span>"),
    };
    let mut b = format!(
        "<section class=\"head\"><nav class=\"prevnext\">{}{}</nav><h1>{} {id}</h1>\
         <p class=\"facts\">layer {} · index {} · <a href=\"/api/neuron/{id}\">JSON</a></p></section>",
        link(prev, "← previous", "prev"),
        link(next, "next →", "next"),
        app.index.units().unit_name(),
        v.layer,
        v.index,
    );
    let _ = write!(
        b,
        "<section class=\"stats\"><div class=\"cards\">\
         <div class=\"card\"><span>max activation</span><b>{:.3}</b></div>\
         <div class=\"card\"><span>mean</span><b>{:.4}</b></div>\
         <div class=\"card\"><span>active (&gt; 0)</span><b>{:.1}%</b></div>\
         <div class=\"card\"><span>tokens scanned</span><b>{}</b></div></div>\
         <figure class=\"histogram\">{}<figcaption>Activation over the corpus: negative ← 0 → positive</figcaption></figure></section>",
        v.max_activation,
        v.mean_activation,
        100.0 * v.positive_fraction,
        thousands(v.tokens),
        histogram_svg(&v.histogram),
    );
    b.push_str("<section class=\"graph\" id=\"graph\"><h2>Graph</h2>");
    match &parts.graph {
        Some(svg) => {
            let _ = write!(b, "<div class=\"picture\">{svg}</div>");
        }
        None => match &v.graph_skipped {
            Some(why) => {
                let _ = write!(b, "<p class=\"note\">No graph: {}.</p>", esc(why));
            }
            None => b.push_str(
                "<p class=\"note\">No graph yet: the build has not reached this neuron.</p>",
            ),
        },
    }
    if let Some(eval) = &v.eval {
        b.push_str(&eval_table(eval));
    }
    b.push_str("</section>");
    if app.has_model() && v.graph.is_some() {
        let _ = write!(
            b,
            "<section class=\"prompt\" id=\"prompt\"><h2>Test a prompt</h2>\
             <form id=\"predict\" data-neuron=\"{id}\"><textarea name=\"text\" rows=\"3\" placeholder=\"Type a text: the model runs it, and each token shows the neuron's real activation beside the graph's prediction.\"></textarea>\
             <button type=\"submit\">Run</button></form><div id=\"prediction\" aria-live=\"polite\"></div></section>\
             <script src=\"/assets/app.js\" defer></script>"
        );
    }
    b.push_str(&examples(v, app.index.run().scan.bos));
    b.push_str(&similar(&parts.similar));
    b
}

/// The evaluation beside the baseline.
fn eval_table(e: &NeuronEval) -> String {
    let row = |name: &str, g: f64, base: f64| {
        format!("<tr><th>{name}</th><td><b>{g:.3}</b></td><td>{base:.3}</td></tr>")
    };
    format!(
        "<table class=\"eval\"><caption>Held-out top examples ({} windows; {} for training) and {} random tokens</caption>\
         <thead><tr><th></th><th>graph</th><th>baseline</th></tr></thead><tbody>{}{}{}{}{}\
         <tr><th>random false-positive rate</th><td><b>{:.4}</b></td><td>{:.4}</td></tr></tbody></table>\
         <p class=\"note\">{} lines; {} of {} augmented variants kept firing.</p>",
        e.test_examples,
        e.train_examples,
        thousands(e.random_tokens),
        row("firing precision", e.graph.firing.precision, e.baseline.firing.precision),
        row("firing recall", e.graph.firing.recall, e.baseline.firing.recall),
        row("firing F1", e.graph.firing.f1, e.baseline.firing.f1),
        row("non-firing F1", e.graph.non_firing.f1, e.baseline.non_firing.f1),
        row(
            "1 − MSE/Var",
            e.graph.variance_explained,
            e.baseline.variance_explained
        ),
        e.random_fpr,
        e.random_fpr_baseline,
        e.lines,
        e.positive_variants,
        e.variants,
    )
}

/// The top examples as token strips; held-out ones marked.
fn examples(v: &NeuronView, bos: bool) -> String {
    let mut b = String::from("<section class=\"examples\" id=\"examples\"><h2>Top examples</h2>");
    if v.examples.is_empty() {
        b.push_str("<p class=\"note\">No examples kept.</p></section>");
        return b;
    }
    b.push_str("<p class=\"note\">Background: activation / max; hover a token for its value. <span class=\"badge held\">held out</span> examples were kept from the graph to evaluate it.</p><ol class=\"strips\">");
    let skip = usize::from(bos);
    for ex in &v.examples {
        let held = ex.role == Some(ExampleRole::HeldOut);
        let start = skip.min(ex.tokens.len());
        let _ = write!(
            b,
            "<li{}><span class=\"value\">{:.3}</span>{}{}</li>",
            if held { " class=\"held\"" } else { "" },
            ex.max,
            if held {
                "<span class=\"badge held\" title=\"held out from training\">H</span>"
            } else {
                "<span class=\"badge\"></span>"
            },
            token_strip(
                &ex.tokens[start..],
                ex.activations.get(start..).unwrap_or_default(),
                ex.argmax.saturating_sub(start),
                v.max_activation,
            )
        );
    }
    b.push_str("</ol></section>");
    b
}

/// The similar neurons as links.
fn similar(hits: &Result<Vec<SimilarHit>, String>) -> String {
    let mut b = String::from("<section class=\"similar\" id=\"similar\"><h2>Similar neurons</h2>");
    match hits {
        Err(e) => {
            let _ = write!(b, "<p class=\"note\">Not available: {}</p>", esc(e));
        }
        Ok(hits) if hits.is_empty() => {
            b.push_str("<p class=\"note\">No neuron shares a token with this one.</p>")
        }
        Ok(hits) => {
            b.push_str("<table class=\"similar\"><thead><tr><th>neuron</th><th>relation</th><th>activating</th><th>context</th></tr></thead><tbody>");
            for h in hits {
                let _ = write!(
                    b,
                    "<tr><td><a class=\"neuron\" href=\"/neuron/{0}\">{0}</a></td><td><span class=\"rel {1}\">{1}</span></td><td>{2:.3}</td><td>{3:.3}</td></tr>",
                    h.neuron,
                    h.relation.name(),
                    h.activating,
                    h.context
                );
            }
            b.push_str("</tbody></table><p class=\"note\">Overlap of activating and context token sets (|A∩B| / max(|A|, |B|)); subset: the other neuron's tokens are (nearly) contained in this one's; superset: the other way round.</p>");
        }
    }
    b.push_str("</section>");
    b
}
