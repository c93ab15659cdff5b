//! What the benches share.

use n2g_index::{DeviceSpec, LoadOptions};

/// Load options on the device named by `--device SPEC` on the command line
/// (`cargo bench --bench scan -- --device cuda:0`, on a `--features cuda` build), else
/// on the CPU. Other arguments (cargo's `--bench`) are ignored.
pub fn load_options() -> LoadOptions {
    let args: Vec<String> = std::env::args().collect();
    let device = match args.iter().position(|a| a == "--device") {
        Some(i) => {
            let spec = args
                .get(i + 1)
                .expect("--device needs a value: cpu, cuda:N");
            spec.parse().unwrap_or_else(|e| panic!("{e}"))
        }
        None => DeviceSpec::Cpu,
    };
    LoadOptions {
        device,
        ..LoadOptions::default()
    }
}
