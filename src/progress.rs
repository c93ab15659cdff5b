//! Progress of a long call, reported to whoever called it: the CLI draws a terminal
//! bar, a server or a notebook draws its own. The library itself prints nothing.

use std::time::Duration;

/// The stage a build is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// The corpus scan; units are tokens.
    Scan,
    /// The graph stage; units are neurons.
    Graphs,
    /// The search index; units are neurons.
    Search,
    /// Copying shards into one index; units are neurons.
    Merge,
}

impl Stage {
    /// The stage's name, as a progress bar labels it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Scan => "scan",
            Stage::Graphs => "graphs",
            Stage::Search => "search index",
            Stage::Merge => "merge",
        }
    }

    /// What the stage counts ("tokens", "neurons").
    pub fn unit(self) -> &'static str {
        match self {
            Stage::Scan => "tokens",
            Stage::Graphs | Stage::Search | Stage::Merge => "neurons",
        }
    }
}

/// Receives a long call's progress. Every method has a default that does nothing, so a
/// caller implements only what it shows.
pub trait Progress {
    /// A stage starts: `total` units, of which `done` were already done by an earlier
    /// run (a resumed build).
    fn start(&mut self, stage: Stage, total: u64, done: u64) {
        let _ = (stage, total, done);
    }

    /// `units` more units of the current stage are done.
    fn advance(&mut self, units: u64) {
        let _ = units;
    }

    /// The current stage has ended (finished, or stopped at a checkpoint).
    fn finish(&mut self, stage: Stage, elapsed: Duration) {
        let _ = (stage, elapsed);
    }

    /// A line of information for the user (what is being built, what was resumed).
    fn note(&mut self, text: &str) {
        let _ = text;
    }

    /// Whether the caller wants the call to stop. Checked after every scan batch and
    /// every graph chunk: the work done so far is committed, and the same call resumes
    /// it later.
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// Progress that nobody watches.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
