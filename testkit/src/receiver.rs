//! The data platform's stand-in (`receiver`) in this process, on a free port, whose listener
//! can be stopped and started again on the same port (the platform unreachable, then back).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use receiver::ReceiverState;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A receiver serving on 127.0.0.1; its [`state`](Self::state) says what it received and
/// tells it to fail.
pub struct Receiver {
    pub state: ReceiverState,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT/events`, for `DATA_PLATFORM_URL`.
    pub url: String,
    running: Option<(oneshot::Sender<()>, JoinHandle<std::io::Result<()>>)>,
}

impl Receiver {
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut r = Self {
            state: ReceiverState::new(),
            addr,
            url: format!("http://{addr}/events"),
            running: None,
        };
        r.serve(listener);
        Ok(r)
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (tx, rx) = oneshot::channel::<()>();
        let state = self.state.clone();
        let task = tokio::spawn(receiver::serve(listener, state, async move {
            let _ = rx.await;
        }));
        self.running = Some((tx, task));
    }

    /// Stops listening: from now on a delivery finds the port closed.
    pub async fn stop(&mut self) {
        if let Some((tx, mut task)) = self.running.take() {
            let _ = tx.send(());
            if tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => {
                    self.serve(l);
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(e).with_context(|| format!("cannot listen on {} again", self.addr));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}
