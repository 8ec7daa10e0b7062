//! The quick start of `sdk-rust/README.md` ("Try it"): read a flag, then print every change as
//! the server pushes it.
//!
//! ```sh
//! FLAGWIRE_URL=http://127.0.0.1:7070 FLAGWIRE_TOKEN=fw_... \
//!   cargo run -p flagwire --example quickstart -- new-checkout
//! ```

use flagwire::{Client, Context};
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLAGWIRE_URL").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let token = std::env::var("FLAGWIRE_TOKEN")?;
    let flag = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "new-checkout".into());

    let client = Client::builder(url, token).build()?;
    client.wait_ready(Duration::from_secs(5)).await?;
    let ctx = Context::new("user-42")
        .with("country", "NL")
        .with("plan", "pro");

    let details = client.bool_details(&flag, &ctx, false);
    println!(
        "{flag} = {} ({}, variant {:?})",
        details.value,
        details.reason_name(),
        details.variant
    );

    // Every change arrives within milliseconds; the next read sees it.
    let mut changes = client.changes();
    while let Ok(change) = changes.recv().await {
        if change.flags.contains(&flag) {
            let details = client.bool_details(&flag, &ctx, false);
            println!(
                "revision {}: {flag} = {} ({})",
                change.revision,
                details.value,
                details.reason_name()
            );
        }
    }
    Ok(())
}
