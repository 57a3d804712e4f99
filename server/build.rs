//! Embeds the built site (what cargo-leptos writes to `target/site`: the
//! wasm, js, css and public assets) in release builds of the binary, so
//! `envline serve` needs nothing beside it. Debug builds read the files from
//! there at run time. Build the site before the server (`make build` does)
//! so the embedded copy is the new one; cargo rebuilds the binary whenever
//! a file of the site changes.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let site = manifest.join("../target/site");
    // Before the first site build (a check, a test build) the folder is empty.
    std::fs::create_dir_all(&site).expect("cannot create target/site");
    memory_serve::load_directory(site);
}
