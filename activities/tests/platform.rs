//! The data platform's client against a server of the test's own: one POST per order, keyed by
//! its id; anything but a 2xx, or nobody listening, is a retryable error.
use activities::PlatformClient;
use activities::error::PlatformError;
use domain::{Order, OrderId, OrderLine, OrderStatus, ProductId, Shipping, UserId};

/// A one-shot-per-connection HTTP server answering each request with the next status of
/// `statuses`; every request it saw (head and body) comes back on the channel.
async fn fake_platform(
    statuses: Vec<u16>,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for status in statuses {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0_u8; 4096];
            let (head, body) = loop {
                let n = sock.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break (head.to_owned(), body.to_owned());
                    }
                }
                assert!(n > 0, "client closed early");
            };
            tx.send((head, body)).unwrap();
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nno");
            sock.write_all(answer.as_bytes()).await.unwrap();
            sock.shutdown().await.unwrap();
        }
    });
    (url, rx)
}

#[tokio::test]
async fn platform_send_posts_with_idempotency_key() {
    let order = completed_order("o-notify");
    let (url, mut seen) = fake_platform(vec![503, 200, 201]).await;
    let client = PlatformClient::new(url);
    match client.send(&order).await {
        Err(PlatformError(msg)) => assert!(msg.contains("503"), "{msg}"),
        other => panic!("a 503 must be a retryable platform error, got {other:?}"),
    }
    client.send(&order).await.unwrap();
    client.send(&order).await.unwrap();
    for _ in 0..3 {
        let (head, body) = seen.recv().await.unwrap();
        assert!(head.starts_with("POST /events "), "{head}");
        assert!(
            head.lines()
                .any(|l| l.eq_ignore_ascii_case("idempotency-key: o-notify")),
            "{head}"
        );
        let sent: Order = serde_json::from_str(&body).unwrap();
        assert_eq!(sent, order);
    }

    // Nobody listening: a retryable platform error too.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/events", closed.local_addr().unwrap());
    drop(closed);
    assert!(matches!(
        PlatformClient::new(dead).send(&order).await,
        Err(PlatformError(_))
    ));
}

fn completed_order(id: &str) -> Order {
    let at = chrono::Utc::now();
    Order {
        id: OrderId::parse(id).unwrap(),
        user_id: UserId::new(1),
        status: OrderStatus::Completed,
        items: vec![OrderLine {
            product_id: ProductId::new(1),
            name: "Pencil".into(),
            unit_price: 1_000,
            quantity: 1,
            line_total: 1_000,
        }],
        subtotal: 1_000,
        discount: 0,
        total: 1_000,
        coupon_id: None,
        shipping: Shipping {
            recipient: "Kim Minji".into(),
            address: "12 Teheran-ro".into(),
            phone: "010-1234-5678".into(),
        },
        created_at: at,
        expires_at: at,
        paid_at: Some(at),
        completed_at: Some(at),
        canceled_at: None,
        cancel_reason: None,
        cancel_code: None,
        platform_notified_at: None,
    }
}
