//! Payload encryption (CONTRACT §8), against the real dev server and PostgreSQL: the history
//! as the server stores it holds no recipient, address or phone on any path, while the
//! codec-aware client reads the order back exactly; keys rotate; a tampered payload fails its
//! workflow task instead of running (`rotation.rs`); the codec server and the Temporal CLI
//! through it (`codec_server.rs`). Each test ends with the §6 check (`TestApp::finish`).

mod codec_server;
mod rotation;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use domain::{
    CouponId, Discount, Order, OrderStatus, PlaceOrderRequest, ProductId, Shipping, UserId,
};
use prost::Message;
use runtime::codec::{EncryptionCodec, PayloadKeys};
use saga_tests::{TestApp, business, spawn_app, spawn_app_with};
use starter::OrderService;
use temporalio_client::{WorkflowCancelOptions, WorkflowFetchHistoryOptions};
use temporalio_common::data_converters::SerializationContextData;
use temporalio_common::payload_visitor::decode_payloads;
use temporalio_common::protos::temporal::api::history::v1::History;
use workflows::OrderWorkflow;

type R = Result<()>;

/// A shipping address no fixture uses, so that finding it anywhere means it leaked.
pub fn secret_shipping() -> Shipping {
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    Shipping {
        recipient: format!("Zephyrine Quillfeather {tag}"),
        address: format!("{tag} Obsidian Lantern Alley, Gwangju"),
        phone: "+82 10 7391 2468".into(),
    }
}

/// The order of `lines` shipped to `shipping`: the test kit's order with another address.
pub fn request(
    lines: &[(ProductId, i64)],
    coupon: Option<CouponId>,
    shipping: &Shipping,
) -> PlaceOrderRequest {
    PlaceOrderRequest {
        shipping: shipping.clone(),
        ..testkit::shop::order_request(lines, coupon)
    }
}

pub async fn place(
    app: &TestApp,
    user: UserId,
    lines: &[(ProductId, i64)],
    coupon: Option<CouponId>,
    shipping: &Shipping,
) -> Result<Order, starter::ServiceError> {
    let id = OrderService::new_order_id();
    app.service
        .place(&id, user, request(lines, coupon, shipping))
        .await
}

/// The order's history exactly as the server stores it (no codec applied).
pub async fn raw_history(app: &TestApp, order_id: &str) -> Result<History> {
    let events = app
        .client
        .get_workflow_handle::<OrderWorkflow>(order_id)
        .fetch_history(WorkflowFetchHistoryOptions::default())
        .into_events()
        .await?;
    Ok(History { events })
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// What this SDK (1.1) sends without the codec, none of it shipping data (docs/ENCRYPTION.md):
/// the summaries and details of the Web UI (`UserMetadata`), and the bookkeeping of core's
/// markers (a local activity's sequence number and type, a map of `Payloads`).
const IN_CLEAR: [&str; 3] = [
    "temporal.api.sdk.v1.UserMetadata.summary",
    "temporal.api.sdk.v1.UserMetadata.details",
    "temporal.api.common.v1.Payloads",
];

/// What of `shipping` appears in `bytes`: each of its fields found there.
pub fn leaks(bytes: &[u8], shipping: &Shipping) -> Vec<String> {
    [&shipping.recipient, &shipping.address, &shipping.phone]
        .into_iter()
        .filter(|field| contains(bytes, field))
        .cloned()
        .collect()
}

/// The server's copy of the order (its whole history, and its description: search
/// attributes, summary, details) holds none of `shipping`, and holds encrypted payloads; the
/// same history decoded with `keys` does hold the recipient, so the search would find it.
pub async fn assert_sealed(app: &TestApp, order_id: &str, shipping: &Shipping) -> R {
    let mut history = raw_history(app, order_id).await?;
    let clear = clear_fields(&mut history).await?;
    ensure!(
        clear.iter().all(|f| IN_CLEAR.contains(&f.as_str())),
        "{order_id}: payloads in clear beyond the known ones: {clear:?}"
    );
    let stored = history.encode_to_vec();
    let found = leaks(&stored, shipping);
    ensure!(
        found.is_empty(),
        "{order_id}: the stored history shows {found:?}"
    );
    ensure!(
        contains(&stored, runtime::codec::ENCRYPTED_ENCODING),
        "{order_id}: no encrypted payload in the history"
    );
    let described = app
        .client
        .get_workflow_handle::<OrderWorkflow>(order_id)
        .describe(Default::default())
        .await?;
    let found = leaks(&described.raw().encode_to_vec(), shipping);
    ensure!(
        found.is_empty(),
        "{order_id}: its description shows {found:?}"
    );
    let mut decoded = history;
    let codec = EncryptionCodec::new(&app.settings.payload_keys);
    decode_payloads(&mut decoded, &codec, &SerializationContextData::None)
        .await
        .with_context(|| format!("{order_id}: the codec cannot read its own history"))?;
    ensure!(
        leaks(&decoded.encode_to_vec(), shipping).len() == 3,
        "{order_id}: the decoded history should hold the whole address"
    );
    Ok(())
}

/// The workflow's result, read through the codec, carries the shipping address exactly.
async fn assert_result_reads_back(app: &TestApp, order_id: &str, shipping: &Shipping) -> R {
    let order = app.result(order_id).await?.order.context("no order")?;
    ensure!(
        &order.shipping == shipping,
        "{order_id}: read back {:?}",
        order.shipping
    );
    Ok(())
}

#[tokio::test]
async fn payment_refusals_and_compensation_keep_shipping_out_of_the_stored_history() -> R {
    let app = spawn_app().await;
    assert!(!app.settings.payload_keys.is_off());
    let shipping = secret_shipping();
    let user = app.user(100_000).await;
    let a = app.product(10_000, 2).await;
    let b = app.product(1_000, 10).await;
    let coupon = app
        .coupon(user, Discount::Fixed { amount: 1_000 }, None)
        .await;

    // Paid with a coupon, then delivered.
    let paid = place(&app, user, &[(b, 2)], Some(coupon), &shipping).await?;
    app.service.pay(&paid.id, None).await?;
    // Placed, then the stock sold out under it: the payment is compensated (a failed update).
    let sold_out = place(&app, user, &[(a, 2)], None, &shipping).await?;
    let sniped = place(&app, user, &[(a, 1)], None, &shipping).await?;
    app.service.pay(&sniped.id, None).await?;
    let refusal = business(app.service.pay(&sold_out.id, None).await);
    ensure!(refusal.code() == "INSUFFICIENT_STOCK", "{refusal:?}");
    for order in [&paid, &sold_out, &sniped] {
        assert_result_reads_back(&app, &order.id, &shipping).await?;
    }
    let shown = app.service.show(&sold_out.id).await?;
    ensure!(shown.status == OrderStatus::Canceled, "{shown:?}");
    for order in [&paid, &sold_out, &sniped] {
        assert_sealed(&app, &order.id, &shipping).await?;
    }
    app.finish().await
}

#[tokio::test]
async fn cancels_and_rejections_keep_shipping_out_of_the_stored_history() -> R {
    let app = spawn_app().await;
    let shipping = secret_shipping();
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let by_user = place(&app, user, &[(a, 1)], None, &shipping).await?;
    app.service.cancel(&by_user.id).await?;
    let by_operator = place(&app, user, &[(a, 1)], None, &shipping).await?;
    app.client
        .get_workflow_handle::<OrderWorkflow>(by_operator.id.as_str())
        .cancel(WorkflowCancelOptions::builder().reason("operator").build())
        .await?;
    ensure!(app.result(&by_operator.id).await.is_err(), "ends cancelled");
    // Rejected at placement (points short): the workflow records the refusal.
    let rejected_id = OrderService::new_order_id();
    let refusal = business(
        app.service
            .place(&rejected_id, user, request(&[(a, 6)], None, &shipping))
            .await,
    );
    ensure!(refusal.code() == "INSUFFICIENT_STOCK", "{refusal:?}");
    assert_result_reads_back(&app, &by_user.id, &shipping).await?;
    for id in [&by_user.id, &by_operator.id, &rejected_id] {
        assert_sealed(&app, id, &shipping).await?;
    }
    app.finish().await
}

#[tokio::test]
async fn an_expired_order_keeps_shipping_out_of_the_stored_history() -> R {
    let app = spawn_app_with(Duration::from_secs(2)).await;
    let shipping = secret_shipping();
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let placed = place(&app, user, &[(a, 1)], None, &shipping).await?;
    assert_result_reads_back(&app, &placed.id, &shipping).await?;
    ensure!(
        app.service.show(&placed.id).await?.status == OrderStatus::Expired,
        "expired"
    );
    assert_sealed(&app, &placed.id, &shipping).await?;
    app.finish().await
}

/// `PAYLOAD_KEYS=off` (for measurements) sends payloads in the clear: the search of
/// [`assert_sealed`] is the one that finds them then (the guard proven red).
#[tokio::test]
async fn without_keys_the_stored_history_shows_the_address() -> R {
    let app =
        saga_tests::spawn_app_with_keys(saga_tests::DEFAULT_TIMEOUT, PayloadKeys::off()).await;
    let shipping = secret_shipping();
    let user = app.user(10_000).await;
    let a = app.product(1_000, 5).await;
    let placed = place(&app, user, &[(a, 1)], None, &shipping).await?;
    app.service.cancel(&placed.id).await?;
    let stored = raw_history(&app, &placed.id).await?.encode_to_vec();
    ensure!(leaks(&stored, &shipping).len() == 3, "the clear history");
    ensure!(assert_sealed(&app, &placed.id, &shipping).await.is_err());
    app.finish().await
}

/// The fields of a stored history whose payloads are in clear (search attributes aside).
pub async fn clear_fields(history: &mut History) -> Result<Vec<String>> {
    use temporalio_common::payload_visitor::{
        AsyncPayloadVisitor, PayloadField, PayloadFieldData, PayloadVisitable,
    };
    struct Clear(Vec<String>);
    impl AsyncPayloadVisitor for Clear {
        fn visit<'a>(
            &'a mut self,
            field: PayloadField<'a>,
        ) -> futures::future::BoxFuture<
            'a,
            Result<(), temporalio_common::data_converters::PayloadConversionError>,
        > {
            let clear = match field.data {
                PayloadFieldData::Single(p) => !runtime::codec::is_encrypted(p),
                PayloadFieldData::Repeated(ps) => !ps.iter().all(runtime::codec::is_encrypted),
                PayloadFieldData::Payloads(ps) => {
                    !ps.payloads.iter().all(runtime::codec::is_encrypted)
                }
            };
            if clear && !field.path.contains("SearchAttributes") {
                self.0.push(field.path.to_owned());
            }
            Box::pin(async { Ok(()) })
        }
    }
    let mut clear = Clear(Vec::new());
    history.visit_payloads_mut(&mut clear).await?;
    clear.0.sort();
    clear.0.dedup();
    Ok(clear.0)
}
