//! A spawn's progress: `GET /users/{name}/server/progress`, JupyterHub's event stream,
//! read event by event with an idle timeout.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::{Method, StatusCode};

use super::client::HubClient;
use super::error::{status_error, transport_error, HubError, Operation};
use super::models::ProgressEvent;

impl HubClient {
    /// Opens `GET /users/{name}/server/progress`. A 400 means the server is neither
    /// starting nor just failed.
    pub async fn open_progress(
        &self,
        name: &str,
        server_name: &str,
    ) -> Result<ProgressStream, HubError> {
        let op = Operation::Progress;
        let url = self.server_path(name, server_name, &["progress"]);
        let timeout = self.inner.cfg.request_timeout;
        let started = Instant::now();
        let result = async {
            let send = self
                .request(Method::GET, url.clone())
                .header(AUTHORIZATION, self.inner.auth.get())
                .header(ACCEPT, "text/event-stream")
                .send();
            let response = tokio::time::timeout(timeout, send)
                .await
                .map_err(|_| HubError::Timeout { op, after: timeout })?
                .map_err(|e| transport_error(op, &e, timeout))?;
            if response.status() != StatusCode::OK {
                let status = response.status();
                let headers = response.headers().clone();
                let body = tokio::time::timeout(timeout, response.bytes())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                return Err(status_error(op, status, &headers, &body));
            }
            Ok(ProgressStream {
                events: response.bytes_stream().eventsource().boxed(),
                idle_timeout: self.inner.cfg.progress_idle_timeout,
            })
        }
        .await;
        self.inner.observer.on_request(
            op,
            started.elapsed(),
            result.as_ref().err().map(HubError::reason),
        );
        result
    }
}

/// The events of a spawn's progress stream.
pub struct ProgressStream {
    events: BoxStream<
        'static,
        Result<eventsource_stream::Event, eventsource_stream::EventStreamError<reqwest::Error>>,
    >,
    idle_timeout: Duration,
}

impl ProgressStream {
    /// The next event; `Ok(None)` when the hub closed the stream.
    pub async fn next_event(&mut self) -> Result<Option<ProgressEvent>, HubError> {
        Ok(self.next_event_raw().await?.map(|(event, _)| event))
    }

    /// The next event, with its JSON as the hub sent it (a spawner's own fields, such
    /// as KubeSpawner's `raw_event`, included).
    pub async fn next_event_raw(
        &mut self,
    ) -> Result<Option<(ProgressEvent, serde_json::Value)>, HubError> {
        let op = Operation::Progress;
        loop {
            let next = tokio::time::timeout(self.idle_timeout, self.events.next())
                .await
                .map_err(|_| HubError::Timeout {
                    op,
                    after: self.idle_timeout,
                })?;
            match next {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(HubError::Connection {
                        op,
                        detail: e.to_string(),
                    })
                }
                // Keep-alives and comments carry no data.
                Some(Ok(event)) if event.data.trim().is_empty() => continue,
                Some(Ok(event)) => {
                    let invalid = |e: serde_json::Error| HubError::InvalidResponse {
                        op,
                        detail: format!("progress event: {e}"),
                    };
                    let raw: serde_json::Value =
                        serde_json::from_str(&event.data).map_err(invalid)?;
                    let typed = serde_json::from_value(raw.clone()).map_err(invalid)?;
                    return Ok(Some((typed, raw)));
                }
            }
        }
    }
}
