//! A Server-Sent Events client for tests: connect (with a token and `Last-Event-ID`), then
//! read events one at a time with deadlines.

use std::time::Duration;

use futures::StreamExt;

/// One event as received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or(serde_json::Value::Null)
    }
}

pub struct SseClient {
    stream: std::pin::Pin<Box<dyn futures::Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>,
    buffer: String,
    /// The id of the last event that had one (what EventSource would resume from).
    pub last_id: Option<String>,
    /// False once the server ended the stream.
    pub open: bool,
}

impl SseClient {
    /// Open `url`; on a non-200 answer, the status and body.
    pub async fn connect(
        http: &reqwest::Client,
        url: &str,
        token: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<Self, (u16, serde_json::Value)> {
        let mut request = http.get(url).header("accept", "text/event-stream");
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request
            .send()
            .await
            .map_err(|e| (0, serde_json::json!(e.to_string())))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status, response.json().await.unwrap_or_default()));
        }
        Ok(Self {
            stream: Box::pin(response.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buffer: String::new(),
            last_id: last_event_id.map(str::to_owned),
            open: true,
        })
    }

    /// The next event, or None if the stream ended or nothing came within `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(at) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..at + 2).collect();
                if let Some(event) = parse(&block) {
                    if event.id.is_some() {
                        self.last_id.clone_from(&event.id);
                    }
                    return Some(event);
                }
                continue; // a comment (heartbeat) or a retry-only block
            }
            if !self.open {
                return None;
            }
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Ok(Some(Ok(chunk))) => self.buffer.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(Some(Err(_)) | None) => self.open = false,
                Err(_) => return None,
            }
        }
    }

    /// Read until an event satisfies `wanted`; panics after `timeout`.
    pub async fn until(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&SseEvent) -> bool,
    ) -> SseEvent {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Some(e) if wanted(&e) => return e,
                Some(_) => {}
                None => panic!(
                    "no wanted event within {timeout:?} (stream open: {})",
                    self.open
                ),
            }
        }
    }

    /// Every event that arrives within `quiet` of the previous one.
    pub async fn drain(&mut self, quiet: Duration) -> Vec<SseEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.next(quiet).await {
            events.push(e);
        }
        events
    }
}

fn parse(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        event: "message".into(),
        ..SseEvent::default()
    };
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => event.id = Some(value.to_owned()),
            "event" => event.event = value.to_owned(),
            "data" => data.push(value),
            _ => {} // comments ("" field) and retry
        }
    }
    if data.is_empty() {
        return None;
    }
    event.data = data.join("\n");
    Some(event)
}
