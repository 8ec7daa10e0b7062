//! An axum service whose every request is measured against the flags it read: latency and
//! 5xx errors land on the variant served, which is what canary rollouts are judged on.
//!
//! ```sh
//! FLAGWIRE_TOKEN=fw_... cargo run -p flagwire --example axum_layer
//! curl 'http://127.0.0.1:3000/checkout?user=user-42'
//! ```

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::{Router, routing::get};
use flagwire::{Client, Context, FlagwireLayer};
use std::collections::HashMap;
use std::time::Duration;

async fn checkout(
    State(flags): State<Client>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<&'static str, StatusCode> {
    let user = query.get("user").map_or("anonymous", String::as_str);
    let ctx = Context::new(user);
    // Read inside the request: the layer attributes this request's outcome to the variant.
    if flags.bool_value("new-checkout", &ctx, false) {
        Ok("new checkout\n")
    } else {
        Ok("old checkout\n")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("FLAGWIRE_URL").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    let client = Client::builder(url, std::env::var("FLAGWIRE_TOKEN")?).build()?;
    client.wait_ready(Duration::from_secs(5)).await?;
    let app = Router::new()
        .route("/checkout", get(checkout))
        .with_state(client.clone())
        .layer(FlagwireLayer::new(client.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    client.close().await;
    Ok(())
}
