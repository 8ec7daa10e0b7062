//! Prometheus gates: PromQL instant queries (`/api/v1/query`) evaluated at every window close
//! of a release, their placeholders filled with the release's labels, and the answer turned
//! into the judge's [`External`] gate. The judge stays pure; this is the only I/O a decision
//! waits for, so every query has a timeout and the queries of one window run concurrently.
//!
//! A query must answer one number: a scalar, or a vector of exactly one sample. An error, a
//! timeout, an empty vector, several series or NaN are failures: the release HOLDs (and rolls
//! back after the gate's `rollbackAfterFailures` in a row).

mod auth;

pub use auth::PrometheusAuth;

use super::gates::to_comparison;
use bytes::Bytes;
use flagwire_core::judge::External;
use flagwire_proto::v1::{PrometheusGate, Release};
use http_body_util::{BodyExt, Empty};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

/// Where the server finds Prometheus, how it authenticates, and how long a query may take.
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    /// Base URL, e.g. `http://prometheus:9090` (queries go to `{url}/api/v1/query`).
    pub url: String,
    /// Per-query timeout.
    pub timeout: Duration,
    /// Credentials sent with every query.
    pub auth: PrometheusAuth,
}

impl PrometheusOptions {
    /// Refuses a URL that is not http(s) or carries credentials, and credentials that cannot be
    /// read. `flagwire serve` checks before it binds anything; each message names its flag.
    pub fn check(&self) -> anyhow::Result<()> {
        // Credentials in the URL: the HTTP client would drop them silently, and a URL is
        // printed in logs and errors. Checked first, so the messages below never echo them.
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let authority = rest
            .trim_start_matches('/')
            .split(['/', '?', '#'])
            .next()
            .unwrap_or_default();
        anyhow::ensure!(
            !authority.contains('@'),
            "--prometheus-url must not carry credentials: use --prometheus-basic-auth-user with \
             --prometheus-password-file, or --prometheus-bearer-token-file"
        );
        let url: http::Uri = self
            .url
            .parse()
            .map_err(|e| anyhow::anyhow!("--prometheus-url {:?}: {e}", self.url))?;
        anyhow::ensure!(
            matches!(url.scheme_str(), Some("http" | "https")) && url.host().is_some(),
            "--prometheus-url must be an http:// or https:// URL, got {:?}",
            self.url
        );
        self.auth.check().map_err(anyhow::Error::msg)
    }
}

/// A Prometheus HTTP API client.
pub struct Prometheus {
    base: String,
    timeout: Duration,
    auth: PrometheusAuth,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

/// The labels a query's placeholders take.
pub struct Labels<'a> {
    /// `{release}`.
    pub release: &'a str,
    /// `{stage}`: the 0-based stage index.
    pub stage: u32,
    /// `{cohort}`: `canary` or `control`.
    pub cohort: &'a str,
    /// `{environment}`.
    pub environment: &'a str,
    /// `{flag}`: the release's flags as a regex alternation.
    pub flags: &'a [&'a str],
}

/// `value` escaped for a double-quoted PromQL string (a label value).
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `query` with its placeholders replaced by the escaped labels. `{flag}` is a regex (for
/// `=~`): each key regex-escaped, joined by `|`.
pub fn fill(query: &str, l: &Labels<'_>) -> String {
    let flags: Vec<String> = l.flags.iter().map(|f| regex::escape(f)).collect();
    query
        .replace("{release}", &escape(l.release))
        .replace("{stage}", &l.stage.to_string())
        .replace("{cohort}", &escape(l.cohort))
        .replace("{environment}", &escape(l.environment))
        .replace("{flag}", &escape(&flags.join("|")))
}

/// The one number of an instant query's JSON answer.
pub fn parse(body: &[u8]) -> Result<f64, String> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not a Prometheus answer: {e}"))?;
    if v["status"] != "success" {
        return Err(format!(
            "{}: {}",
            v["errorType"].as_str().unwrap_or("error"),
            v["error"].as_str().unwrap_or("query failed")
        ));
    }
    let data = &v["data"];
    let sample = match data["resultType"].as_str() {
        Some("scalar") => &data["result"],
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => &one["value"],
            Some([]) => return Err("empty result".into()),
            Some(many) => {
                return Err(format!(
                    "{} series: the query must answer one (aggregate it with sum, max, ...)",
                    many.len()
                ));
            }
            None => return Err("malformed vector".into()),
        },
        other => {
            return Err(format!(
                "a {other:?} result: the query must answer one number"
            ));
        }
    };
    let value: f64 = sample[1]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or("malformed sample")?;
    if value.is_nan() {
        return Err("NaN".into());
    }
    Ok(value)
}

impl Prometheus {
    /// A client for `options` (HTTP or HTTPS with the system's roots), once
    /// [`PrometheusOptions::check`] passes.
    pub fn new(options: &PrometheusOptions) -> anyhow::Result<Self> {
        options.check()?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base: options.url.trim_end_matches('/').to_owned(),
            timeout: options.timeout,
            auth: options.auth.clone(),
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// Evaluates `query` now, by Prometheus's clock: the gate reads what Prometheus holds at
    /// the window's close, whatever the two clocks say.
    pub async fn query(&self, query: &str) -> Result<f64, String> {
        let encoded = url_encode(query);
        let uri = format!("{}/api/v1/query?query={encoded}", self.base);
        let uri: http::Uri = uri.parse().map_err(|e| format!("bad URL: {e}"))?;
        let call = async {
            let mut request = http::Request::get(uri);
            if let Some(authorization) = self.auth.header().await? {
                request = request.header(http::header::AUTHORIZATION, authorization);
            }
            let request = request
                .body(Empty::new())
                .map_err(|e| format!("bad request: {e}"))?;
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            match parse(&body) {
                // Prometheus answers 400/422/503 with an error body that says why.
                Err(e) if !status.is_success() => Err(format!("HTTP {status}: {e}")),
                answer => answer,
            }
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        }
    }

    /// Evaluates gate `g` (named `name`) of release `r`; `failures` is how many evaluations of
    /// it failed in a row before this one.
    pub async fn evaluate(
        &self,
        name: &str,
        g: &PrometheusGate,
        r: &Release,
        failures: u32,
    ) -> External {
        let flags: Vec<&str> = r.flags.iter().map(|f| f.flag_key.as_str()).collect();
        let labels = |cohort| Labels {
            release: &r.id,
            stage: r.current_stage,
            cohort,
            environment: &r.environment,
            flags: &flags,
        };
        let canary_query = fill(&g.query, &labels("canary"));
        let (value, control_value, detail) = if g.compare_cohorts {
            let control_query = fill(&g.query, &labels("control"));
            let (canary, control) =
                futures::join!(self.query(&canary_query), self.query(&control_query));
            match (canary, control) {
                (Ok(a), Ok(b)) => (Some(a - b), Some(b), canary_query),
                (Err(e), _) | (_, Err(e)) => (None, None, format!("{canary_query}: {e}")),
            }
        } else {
            match self.query(&canary_query).await {
                Ok(v) => (Some(v), None, canary_query),
                Err(e) => (None, None, format!("{canary_query}: {e}")),
            }
        };
        External {
            name: name.to_owned(),
            consecutive_failures: if value.is_some() { 0 } else { failures + 1 },
            value,
            control_value,
            comparison: to_comparison(g.comparison),
            threshold: g.threshold,
            rollback_after_failures: g.rollback_after_failures,
            detail,
        }
    }
}

/// `s` percent-encoded for a query-string value (RFC 3986 unreserved characters kept).
// Hand-written: six lines, against a dependency for one call.
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_escaped_label_values() {
        let flags = ["mem0.reads", "fast-path"];
        let l = Labels {
            release: "rel-1",
            stage: 2,
            cohort: "canary",
            environment: "prod\"x",
            flags: &flags,
        };
        let q = fill(
            r#"max(mem{release="{release}",stage="{stage}",cohort="{cohort}",env="{environment}",flag=~"{flag}"})"#,
            &l,
        );
        assert_eq!(
            q,
            r#"max(mem{release="rel-1",stage="2",cohort="canary",env="prod\"x",flag=~"mem0\\.reads|fast\\-path"})"#
        );
    }

    #[test]
    fn answers_one_number_or_say_why_not() {
        let vector = |result: &str| {
            format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#)
        };
        let one = vector(r#"[{"metric":{},"value":[1700000000,"536870912"]}]"#);
        assert_eq!(parse(one.as_bytes()), Ok(536_870_912.0));
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"0.5"]}}"#;
        assert_eq!(parse(scalar.as_bytes()), Ok(0.5));
        assert_eq!(parse(vector("[]").as_bytes()), Err("empty result".into()));
        let two = vector(r#"[{"value":[1,"1"]},{"value":[1,"2"]}]"#);
        assert!(parse(two.as_bytes()).unwrap_err().starts_with("2 series"));
        let nan = vector(r#"[{"value":[1,"NaN"]}]"#);
        assert_eq!(parse(nan.as_bytes()), Err("NaN".into()));
        let error = r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#;
        assert_eq!(
            parse(error.as_bytes()),
            Err("bad_data: parse error at char 4".into())
        );
        assert!(
            parse(b"<html>")
                .unwrap_err()
                .starts_with("not a Prometheus answer")
        );
    }

    #[test]
    fn queries_are_percent_encoded() {
        assert_eq!(url_encode(r#"up{a="b c"}"#), "up%7Ba%3D%22b%20c%22%7D");
    }
}
