//! What every local vendor server shares: its routes served on a loopback port of its
//! own (stopped when dropped), and waiting for what it records to settle.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::task::JoinHandle;

/// Routes served on `127.0.0.1:<port>` until dropped.
pub(crate) struct Served {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

/// Serves `app` on a fresh loopback port. Replies go out as written, not held for a
/// delayed ACK, as a vendor's streaming answers do.
pub(crate) async fn serve(app: Router) -> std::io::Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Served { addr, task })
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads `read` every 10 ms until `settled` holds or `within` has passed; the last
/// reading.
pub(crate) async fn settle<T>(
    within: Duration,
    read: impl Fn() -> T,
    settled: impl Fn(&T) -> bool,
) -> T {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let value = read();
        if settled(&value) || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
