//! `GET /mm/v1/events`: the core's events as Server-Sent Events, the same the window receives (`download-progress`,
//! throttled at the source, `model-lifecycle`, `runtime-changed` for loaded models, and `library-changed` when what
//! the library lists changed on disk). Each has an id, `{run}-{n}`:
//! this run of the server, then an increasing number. The last few minutes are kept, so a client that reconnects
//! with `Last-Event-ID` gets what it missed, or a `reset` when that is gone or the id is from another run. A client that
//! falls behind is sent `dropped` and disconnected: it never slows a download, which only ever writes to a
//! broadcast channel.

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use mm_core::download::DownloadEvent;
use mm_core::Manager;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// How long events are kept for a client that reconnects.
const REPLAY_WINDOW: Duration = Duration::from_secs(120);
/// At most this many kept events.
const REPLAY_MAX: usize = 4096;
/// Events one client may be behind before it is dropped.
const CLIENT_BACKLOG: usize = 1024;

/// One event as sent: its id, its name, its JSON payload.
#[derive(Clone, Debug)]
pub struct Sent {
    pub id: u64,
    pub name: &'static str,
    pub data: Arc<str>,
    at: Instant,
}

/// The numbered stream every client reads from, and the recent past.
pub struct EventLog {
    /// This run of the server, the first part of every id.
    run: String,
    recent: Mutex<VecDeque<Sent>>,
    live: broadcast::Sender<Sent>,
    /// Ends every stream when the server stops.
    stop: CancellationToken,
}

impl EventLog {
    /// Starts numbering the manager's events.
    pub fn start(manager: &Manager, stop: CancellationToken) -> Arc<EventLog> {
        let (live, _) = broadcast::channel(CLIENT_BACKLOG);
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| format!("{:x}", d.as_nanos()))
            .unwrap_or_default();
        let log = Arc::new(EventLog { run, recent: Mutex::new(VecDeque::new()), live, stop });
        let mut events = manager.subscribe();
        let mut runtime = manager.subscribe_runtime();
        let mut library = manager.subscribe_library();
        manager.watch_runtime();
        let writer = log.clone();
        tokio::spawn(async move {
            let mut next_id = 1u64;
            loop {
                let (name, data) = tokio::select! {
                    event = events.recv() => match event {
                        Ok(DownloadEvent::Progress(p)) => ("download-progress", serde_json::to_string(&p)),
                        Ok(DownloadEvent::Lifecycle(l)) => ("model-lifecycle", serde_json::to_string(&l)),
                        Ok(DownloadEvent::Stale) => ("reset", Ok(r#"{"reason":"events were missed: read the state again"}"#.to_string())),
                        // This task is far behind the core (it never waits on a client): the kept past has a gap.
                        Err(broadcast::error::RecvError::Lagged(n)) => ("reset", Ok(gap(n))),
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    change = runtime.recv() => match change {
                        Ok(change) => ("runtime-changed", serde_json::to_string(&change)),
                        // A later change carries the whole state of its type.
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    change = library.recv() => match change {
                        Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => ("library-changed", Ok("{}".to_string())),
                        Err(broadcast::error::RecvError::Closed) => break,
                    },
                    _ = writer.stop.cancelled() => break,
                };
                let sent = Sent { id: next_id, name, data: data.unwrap_or_default().into(), at: Instant::now() };
                next_id += 1;
                writer.keep(sent.clone());
                let _ = writer.live.send(sent);
            }
        });
        log
    }

    fn keep(&self, sent: Sent) {
        let mut recent = self.recent.lock().unwrap();
        recent.push_back(sent);
        while recent.len() > REPLAY_MAX || recent.front().is_some_and(|e| e.at.elapsed() > REPLAY_WINDOW) {
            recent.pop_front();
        }
    }

    /// What a client that last saw `last_id` missed: the kept events after it, or `None` when some of them are
    /// no longer kept.
    fn since(&self, last_id: u64) -> Option<Vec<Sent>> {
        let recent = self.recent.lock().unwrap();
        let oldest = recent.front().map(|e| e.id);
        let newest = recent.back().map(|e| e.id).unwrap_or(0);
        if last_id >= newest {
            // Nothing after it; an id newer than any here is from another run of the server: start again.
            return (last_id == newest && oldest.is_some()).then(Vec::new);
        }
        match oldest {
            Some(oldest) if oldest <= last_id + 1 => Some(recent.iter().filter(|e| e.id > last_id).cloned().collect()),
            _ => None,
        }
    }

    /// The stream for one client.
    pub fn stream(self: &Arc<Self>, headers: &HeaderMap) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
        // An id of this run: what the client missed is replayed. Any other (an earlier run's, a bare number, junk):
        // it cannot be, so the client is told to read the state again.
        let last_id = headers.get("last-event-id").map(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().split_once('-'))
                .filter(|(run, _)| *run == self.run)
                .and_then(|(_, n)| n.parse::<u64>().ok())
        });
        // Subscribed before reading the past, so nothing falls between the two.
        let live = self.live.subscribe();
        let mut first: VecDeque<Event> = VecDeque::new();
        let mut seen = 0;
        if let Some(last_id) = last_id {
            match last_id.and_then(|id| self.since(id).map(|missed| (id, missed))) {
                Some((last_id, missed)) => {
                    seen = missed.last().map(|e| e.id).unwrap_or(last_id);
                    first.extend(missed.iter().map(|e| to_event(&self.run, e)));
                }
                None => {
                    first.push_back(Event::default().event("reset").data(
                        r#"{"reason":"events since your Last-Event-ID are no longer kept: read the state again"}"#,
                    ))
                }
            }
        }
        let state = Client { first, live, seen, run: self.run.clone(), stop: self.stop.clone(), done: false };
        let events = stream::unfold(state, |mut client| async move {
            if client.done {
                return None;
            }
            if let Some(event) = client.first.pop_front() {
                return Some((Ok(event), client));
            }
            loop {
                let received = tokio::select! {
                    received = client.live.recv() => received,
                    _ = client.stop.cancelled() => return None,
                };
                match received {
                    Ok(sent) if sent.id <= client.seen => continue,
                    Ok(sent) => return Some((Ok(to_event(&client.run, &sent)), client)),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        client.done = true;
                        tracing::info!(missed = n, "an event client fell behind and was dropped");
                        let event = Event::default().event("dropped").data(format!(
                            r#"{{"reason":"this client fell {n} events behind and was disconnected: reconnect with Last-Event-ID, or read the state again"}}"#
                        ));
                        return Some((Ok(event), client));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Sse::new(events).keep_alive(KeepAlive::default())
    }
}

struct Client {
    first: VecDeque<Event>,
    live: broadcast::Receiver<Sent>,
    /// The id of the last event replayed: live events up to it were already sent.
    seen: u64,
    run: String,
    stop: CancellationToken,
    done: bool,
}

fn to_event(run: &str, sent: &Sent) -> Event {
    Event::default().id(format!("{run}-{}", sent.id)).event(sent.name).data(&*sent.data)
}

fn gap(missed: u64) -> String {
    format!(r#"{{"reason":"{missed} events were lost inside the server: read the state again"}}"#)
}
