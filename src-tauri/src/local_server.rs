//! The app's local server: `mm serve`'s API and its model endpoint (`/v1`, `/api`) over the app's own core, on
//! this machine's loopback, while the app runs and the `localServer` setting is on (as LM Studio's server switch).
//! What it loads is the app's: unloaded when the app quits.

use mm_core::{ErrorCode, ErrorPayload, Manager};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The local server as the window shows it.
#[derive(Debug, Clone, Default, PartialEq)]
struct LocalServerStatus {
    /// `http://127.0.0.1:PORT` while it serves.
    address: Option<String>,
    /// Why it does not serve, when it was asked to (the port is taken, say).
    error: Option<String>,
}

#[derive(Default)]
pub struct LocalServer {
    running: Mutex<Option<Running>>,
    status: Arc<Mutex<LocalServerStatus>>,
}

struct Running {
    port: u16,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl LocalServer {
    /// Starts, stops or moves the server to what the settings say now.
    pub fn apply(&self, manager: &Manager) {
        let settings = manager.settings();
        let wanted = settings.local_server.then_some(settings.local_server_port as u16);
        let mut running = self.running.lock().unwrap();
        if running.as_ref().map(|r| r.port) == wanted {
            return;
        }
        if let Some(old) = running.take() {
            let _ = old.stop.send(());
        }
        *self.status.lock().unwrap() = LocalServerStatus::default();
        let Some(port) = wanted else { return };
        let (stop, stopped) = tokio::sync::oneshot::channel();
        *running = Some(Running { port, stop });
        let (manager, status) = (manager.clone(), self.status.clone());
        let token = settings
            .serve_require_token
            .then(|| mm_server::kept_token(&mm_core::paths::serve_token_file(manager.data_dir())));
        tauri::async_runtime::spawn(async move {
            let token = match token.transpose() {
                Ok(t) => t.map(|(token, _)| token),
                Err(e) => {
                    status.lock().unwrap().error = Some(format!("no token for the local server: {e}"));
                    return;
                }
            };
            let options = mm_server::ServeOptions {
                listen: SocketAddr::from(([127, 0, 0, 1], port)),
                access: mm_server::Access { token, ..Default::default() },
                owns_manager: false,
            };
            let ready = {
                let status = status.clone();
                move |address: SocketAddr| {
                    tracing::info!(%address, "the local server serves");
                    status.lock().unwrap().address = Some(format!("http://{address}"));
                }
            };
            let served = mm_server::serve(manager, options, ready, async move {
                let _ = stopped.await;
            })
            .await;
            let mut status = status.lock().unwrap();
            status.address = None;
            if let Err(e) = served {
                tracing::warn!("the local server did not start on port {port}: {e}");
                status.error = Some(format!("it cannot serve on 127.0.0.1:{port}: {e} (choose another port)"));
            }
        });
    }

    /// Its address while it serves, none while it is off, or why it does not serve.
    pub fn address(&self) -> Result<Option<String>, ErrorPayload> {
        let status = self.status.lock().unwrap().clone();
        match status.error {
            Some(why) => Err(ErrorPayload::new(ErrorCode::Io, why)),
            None => Ok(status.address),
        }
    }
}
