//! `n2g-index serve`: the web face of an index (pages and JSON API, see docs/SERVE.md).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::ModelArgs;
use n2g_index::serve::{App, Limits, Server};
use n2g_index::Index;

/// Arguments of `n2g-index serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The index folder.
    #[arg(long, default_value = "index")]
    pub index: PathBuf,
    /// Address to listen on. The default listens on this machine only; binding any
    /// other address (e.g. 0.0.0.0:8080) exposes the index and the model to the network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The model for the "test a prompt" box (default: the index's model file, when
    /// it is there; without a model the box is hidden).
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Runs the command: serves until Ctrl-C or SIGTERM, letting requests in flight finish.
pub fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let index = Index::open(&args.index)?;
    let model = args.model.load_for(&index)?;
    if model.is_none() {
        eprintln!(
            "note: the index's model {} is not there; give --model to test prompts",
            index.run().model.path
        );
    }
    let with_model = model.is_some();
    let app = App::new(index, model, Limits::default()).map_err(super::with_flag_names)?;
    let server = Server::start(app, args.bind, true)?;
    eprintln!(
        "serving {} at http://{} ({}); Ctrl-C stops",
        args.index.display(),
        server.addr(),
        if with_model {
            "prompts enabled"
        } else {
            "no model: prompts disabled"
        }
    );
    server.wait()?;
    Ok(ExitCode::SUCCESS)
}
