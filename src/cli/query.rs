//! `n2g-index query`: neurons whose graphs match a query.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use n2g_index::view::Hit;
use n2g_index::Index;

/// Arguments of `n2g-index query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The query, e.g. "token:Paris context:capital" (grammar: schema/QUERY.md).
    pub query: String,
    /// The index folder; the search index is DIR/search.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
    /// How many neurons to show, at least 1.
    #[arg(long, default_value_t = 20, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub limit: usize,
    /// Print JSON (schema/query-result.schema.json).
    #[arg(long)]
    pub json: bool,
}

/// Runs `n2g-index query`.
pub fn run(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    let hits = Index::open(&args.index)?.query(&args.query, args.limit)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&hits)?);
    } else if hits.is_empty() {
        println!("no neuron matches `{}`", args.query);
    } else {
        print!("{}", table(&hits));
    }
    Ok(ExitCode::SUCCESS)
}

/// A token as shown in a table: quoted when it has whitespace, control characters or
/// is empty.
fn show_token(t: &str) -> String {
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!("{t:?}")
    } else {
        t.to_string()
    }
}

/// A path in text order, runs of IGNORE (`*`) drawn as one `…`.
fn draw_path<'a>(path: impl IntoIterator<Item = &'a str>) -> String {
    let mut out: Vec<String> = Vec::new();
    for t in path {
        if t == "*" {
            if out.last().is_some_and(|l| l == "…") {
                continue;
            }
            out.push("…".to_string());
        } else {
            out.push(show_token(t));
        }
    }
    out.join(" ")
}

fn table(hits: &[Hit]) -> String {
    let rows: Vec<[String; 5]> = hits
        .iter()
        .map(|h| {
            [
                h.neuron.to_string(),
                h.layer.to_string(),
                h.paths
                    .first()
                    .map(|p| draw_path(p.iter()))
                    .unwrap_or_default(),
                format!("{:.3}", h.score),
                format!("{:.3}", h.f1),
            ]
        })
        .collect();
    let header = ["neuron", "layer", "best path", "act", "F1"];
    let mut widths = header.map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - c.chars().count();
            if i >= 3 {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            }
            s.push_str(if i < 4 { "  " } else { "\n" });
        }
        s
    };
    let mut out = line(header);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_read_in_text_order_with_ignore_runs_as_one_ellipsis() {
        assert_eq!(draw_path(["capital", "*", "paris"]), "capital … paris");
        assert_eq!(draw_path(["*", "*", " of", "x"]), "… \" of\" x");
    }
}
