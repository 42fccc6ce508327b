//! `gateway-http`: the messaging gateway service. See the README for what it is and how to run it.
//!
//! # Layers
//! Each layer uses its own and those below it, never one above, so no module path runs in a
//! circle (the test `layers::no_module_uses_a_layer_above_its_own` reads the sources to hold it):
//!
//! 1. `startup`: builds the application and hands each layer what it needs.
//! 2. `http`: the API, its admission and problems, the OpenAPI document, and routing at acceptance.
//! 3. `inbound`: what comes back from providers (reports, reconciliation, the template cache).
//! 4. `delivery`: sending out (the lane dispatcher, fallback chains, event deliveries). The
//!    dispatcher tells what it did to a message through `delivery::worker::StatusNews`, which
//!    inbound's `Reports` implements, since those news also feed the reports' own work.
//! 5. `engine`: the Redis store (keys, Lua scripts, leases).
//! 6. `config`, `accounts`, `providers`, `metrics`, `telemetry`: what every layer reads.

pub mod accounts;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod http;
pub mod inbound;
pub mod metrics;
pub mod providers;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;

#[cfg(test)]
mod layers {
    use std::path::{Path, PathBuf};

    /// A top-level module's layer, lowest first; `None` for what no module uses (`lib`, `main`, `bin`).
    fn layer(module: &str) -> Option<u8> {
        match module {
            "config" | "accounts" | "providers" | "metrics" | "telemetry" => Some(0),
            "engine" => Some(1),
            "delivery" => Some(2),
            "inbound" => Some(3),
            "http" => Some(4),
            "startup" => Some(5),
            _ => None,
        }
    }

    fn sources(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                found.push(path);
            }
        }
    }

    #[test]
    fn no_module_uses_a_layer_above_its_own() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut above = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&src).unwrap();
            let top = relative.components().next().unwrap().as_os_str().to_string_lossy();
            let Some(own) = layer(top.trim_end_matches(".rs")) else { continue };
            for (n, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for path in line.split("crate::").skip(1) {
                    let used: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    if layer(&used).is_none_or(|l| l > own) {
                        above.push(format!("{}:{}: crate::{used}", relative.display(), n + 1));
                    }
                }
            }
        }
        assert!(above.is_empty(), "paths to a layer above (or to no layer):\n{}", above.join("\n"));
    }
}
