//! Rebuilds the server when the console's committed bundle changes: `include_dir!` (console.rs)
//! reads `console/dist` at compile time, and Cargo cannot see a proc macro's reads.

fn main() {
    println!("cargo:rerun-if-changed=../console/dist");
}
