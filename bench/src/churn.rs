//! The churn load: clients that connect, subscribe, unsubscribe and disconnect in a loop, to show that
//! nothing leaks (the subscription index and the server's memory return to where they were). On the nchan
//! reference a cycle is connect (which subscribes) and disconnect.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpSocket;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::clients::Wire;

#[derive(Default)]
pub struct ChurnCounts {
    /// Completed connect → subscribe → unsubscribe → disconnect cycles.
    pub cycles: AtomicU64,
    pub failures: AtomicU64,
}

/// Starts `count` churning clients; they stop at `stop`.
pub fn start(
    server: SocketAddr,
    wire: &Wire,
    mints: &[String],
    count: usize,
    counts: &Arc<ChurnCounts>,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..count)
        .map(|index| {
            let (wire, counts, stop) = (wire.clone(), counts.clone(), stop.clone());
            let mint = mints[index % mints.len()].clone();
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    let cycle = tokio::time::timeout(
                        Duration::from_secs(10),
                        one_cycle(index, server, &wire, &mint),
                    );
                    let ok = tokio::select! {
                        _ = stop.cancelled() => break,
                        result = cycle => matches!(result, Ok(Ok(()))),
                    };
                    let counter = if ok { &counts.cycles } else { &counts.failures };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

async fn one_cycle(
    index: usize,
    server: SocketAddr,
    wire: &Wire,
    mint: &str,
) -> anyhow::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((
        Ipv4Addr::new(127, 0, 0, 2 + (index % 250) as u8),
        0,
    )))?;
    let stream = socket.connect(server).await?;
    let (mut ws, _) = tokio_tungstenite::client_async(wire.url(mint), stream).await?;
    let Some(subscribe) = wire.subscribe_request(mint) else {
        ws.close(None).await?;
        return Ok(());
    };
    ws.send(Message::text(subscribe)).await?;
    wait_for(&mut ws, "subscription_confirmed").await?;
    let unsubscribe = format!(r#"{{"msg_type":"unsubscribe","symbol":"{mint}","interval":"s1"}}"#);
    ws.send(Message::text(unsubscribe)).await?;
    wait_for(&mut ws, "unsubscribe_confirmed").await?;
    ws.close(None).await?;
    Ok(())
}

async fn wait_for<S>(ws: &mut S, kind: &str) -> anyhow::Result<()>
where
    S: StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let needle = format!("\"type\":\"{kind}\"");
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message?
            && text.contains(&needle)
        {
            return Ok(());
        }
    }
    anyhow::bail!("connection closed before {kind}")
}
