//! The `n2g-index` binary: see `n2g-index --help`. A thin layer over the library: it
//! parses arguments, calls the library's face, and prints.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
