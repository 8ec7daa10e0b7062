//! Flagwire through OpenFeature (crate `open-feature` 0.3, this crate's `openfeature`
//! feature): the provider evaluates locally from the client's live copy.
//!
//! ```sh
//! FLAGWIRE_URL=http://127.0.0.1:7070 FLAGWIRE_TOKEN=fw_... \
//!   cargo run -p flagwire --features openfeature --example openfeature
//! ```
//!
//! `tests/openfeature.rs` runs it against a real server.

use flagwire::openfeature::FlagwireProvider;
use open_feature::{EvaluationContext, OpenFeature};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLAGWIRE_URL").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let token = std::env::var("FLAGWIRE_TOKEN")?;
    let client = flagwire::Client::builder(url, token).build()?;

    let mut api = OpenFeature::singleton_mut().await;
    // Waits (up to 5 s) for the first copy of the flags.
    api.set_provider(FlagwireProvider::new(client.clone()))
        .await;
    let flags = api.create_client();
    drop(api);

    let ctx = EvaluationContext::default()
        .with_targeting_key("user-42")
        .with_custom_field("country", "NL")
        .with_custom_field("plan", "pro");
    // An error (say FLAG_NOT_FOUND) is an `Err`: `get_bool_value(...).unwrap_or(false)` is
    // the everyday form; the details show what was served and why.
    let details = flags
        .get_bool_details("new-checkout", Some(&ctx), None)
        .await
        .map_err(|e| format!("new-checkout: {}", e.code))?;
    println!(
        "new-checkout for user-42: {} (reason {}, variant {})",
        details.value,
        details.reason.map(|r| r.to_string()).unwrap_or_default(),
        details.variant.unwrap_or_default()
    );
    // open-feature 0.3 has no `track`: the Flagwire client records the team's metrics.
    client
        .attribute_to(&flagwire::Context::new("user-42"), &["new-checkout"])
        .track("checkout", 1.0);
    client.close().await; // flushes the metrics
    Ok(())
}
