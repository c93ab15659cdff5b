//! The `n2g-index` binary: see `n2g-index --help`.

fn main() -> std::process::ExitCode {
    n2g_index::cli::main()
}
