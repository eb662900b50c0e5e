//! JSON over HTTP/1.1 to the admin API and the sandbox's hooks.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::OnboardError;

#[derive(Clone)]
pub(crate) struct JsonHttp(Arc<Client<HttpConnector, Full<Bytes>>>);

/// What a server answered.
pub(crate) struct Answer {
    pub url: String,
    pub status: StatusCode,
    pub body: Bytes,
}

impl JsonHttp {
    pub fn new() -> JsonHttp {
        JsonHttp(Arc::new(Client::builder(TokioExecutor::new()).build_http()))
    }

    /// Sends `body` (as JSON, if any) with a bearer `token` (if any); answers whatever came back.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&impl Serialize>,
        token: Option<&str>,
    ) -> Result<Answer, OnboardError> {
        let unreachable = |reason: String| OnboardError::Unreachable { url: url.to_owned(), reason };
        let mut request = http::Request::builder().method(method).uri(url);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).map_err(|e| unreachable(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(bytes)).map_err(|e| unreachable(e.to_string()))?;
        let response = self.0.request(request).await.map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let body = response.into_body().collect().await.map_err(|e| unreachable(e.to_string()))?.to_bytes();
        Ok(Answer { url: url.to_owned(), status, body })
    }
}

impl Answer {
    /// The body, if the status is a success.
    pub fn success(self) -> Result<Bytes, OnboardError> {
        if self.status.is_success() {
            Ok(self.body)
        } else {
            let body = String::from_utf8_lossy(&self.body).into_owned();
            Err(OnboardError::Refused { url: self.url, status: self.status.as_u16(), body })
        }
    }

    /// The body of a success, as `T`.
    pub fn json<T: DeserializeOwned>(self) -> Result<T, OnboardError> {
        let url = self.url.clone();
        serde_json::from_slice(&self.success()?).map_err(|source| OnboardError::BadAnswer { url, source })
    }
}
