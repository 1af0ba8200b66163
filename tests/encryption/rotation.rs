//! Rotating `PAYLOAD_KEYS`, and a payload altered on its way: what the codec refuses, and that
//! a refusal fails the workflow task (retried) rather than running the workflow on garbage.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use domain::OrderStatus;
use futures::FutureExt;
use futures::future::BoxFuture;
use runtime::codec::{EncryptionCodec, KEY_ID_METADATA, PayloadKey, PayloadKeys, is_encrypted};
use saga_tests::{DEFAULT_TIMEOUT, TestApp, spawn_app_with_keys};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadCodec, PayloadConversionError, PayloadConverter,
    SerializationContextData,
};
use temporalio_common::payload_visitor::decode_payloads;
use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_common::protos::temporal::api::history::v1::History;
use workflows::OrderWorkflow;

use super::{R, assert_sealed, place, raw_history, secret_shipping};

fn key(id: &str, byte: u8) -> PayloadKey {
    PayloadKey::new(id, [byte; 32]).expect("a key")
}

fn keys(list: &[&PayloadKey]) -> PayloadKeys {
    PayloadKeys::new(list.iter().map(|k| (*k).clone()).collect()).expect("keys")
}

/// The key ids of the encrypted payloads of a stored history.
async fn key_ids(app: &TestApp, order_id: &str) -> Result<Vec<String>> {
    struct Collect(std::sync::Mutex<Vec<String>>);
    impl PayloadCodec for Collect {
        fn encode(
            &self,
            _: &SerializationContextData,
            p: Vec<Payload>,
        ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
            futures::future::ready(Ok(p)).boxed()
        }
        fn decode(
            &self,
            _: &SerializationContextData,
            p: Vec<Payload>,
        ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
            let mut ids = self.0.lock().expect("ids");
            for payload in p.iter().filter(|p| is_encrypted(p)) {
                ids.push(String::from_utf8_lossy(&payload.metadata[KEY_ID_METADATA]).into());
            }
            futures::future::ready(Ok(p)).boxed()
        }
    }
    let collect = Collect(Default::default());
    let mut history = raw_history(app, order_id).await?;
    decode_payloads(&mut history, &collect, &SerializationContextData::None).await?;
    let mut ids = collect.0.into_inner().expect("ids");
    ids.sort();
    ids.dedup();
    Ok(ids)
}

#[tokio::test]
async fn keys_rotate_without_a_stop() -> R {
    let (a, b) = (key("key-a", 0xa1), key("key-b", 0xb2));
    let mut app = spawn_app_with_keys(DEFAULT_TIMEOUT, keys(&[&a])).await;
    let shipping = secret_shipping();
    let user = app.user(100_000).await;
    let p = app.product(1_000, 10).await;
    let old = place(&app, user, &[(p, 1)], None, &shipping).await?;
    ensure!(key_ids(&app, &old.id).await? == ["key-a"]);

    // PAYLOAD_KEYS=key-b,key-a: the old order is still paid and read; new ones use key-b.
    app.rekey(keys(&[&b, &a])).await?;
    let paid = app.service.pay(&old.id, None).await?;
    ensure!(paid.status == OrderStatus::Completed, "{paid:?}");
    let result = app.result(&old.id).await?.order.context("the old order")?;
    ensure!(
        result.shipping == shipping,
        "read back {:?}",
        result.shipping
    );
    ensure!(key_ids(&app, &old.id).await? == ["key-a", "key-b"]);
    let new = place(&app, user, &[(p, 1)], None, &shipping).await?;
    app.service.cancel(&new.id).await?;
    ensure!(key_ids(&app, &new.id).await? == ["key-b"]);
    assert_sealed(&app, &old.id, &shipping).await?;

    // key-a removed: the old order's payloads fail to decode, naming the key they need.
    let mut history = raw_history(&app, &old.id).await?;
    let without_a = EncryptionCodec::new(&keys(&[&b]));
    let e = decode_payloads(&mut history, &without_a, &SerializationContextData::None)
        .await
        .expect_err("key-a is gone");
    let message = format!("{e:#}");
    ensure!(
        message.contains("\"key-a\"") && message.contains("PAYLOAD_KEYS"),
        "{message}"
    );
    app.finish().await
}

fn converter(codec: impl PayloadCodec + Send + Sync + 'static) -> DataConverter {
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        codec,
    )
}

/// Encrypts, then flips the last bit of every payload: what a corrupted or forged payload
/// looks like to the worker.
struct Tampering(EncryptionCodec);

impl PayloadCodec for Tampering {
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let encoded = self.0.encode_payloads(payloads).map(|mut payloads| {
            for p in &mut payloads {
                if let Some(last) = p.data.last_mut() {
                    *last ^= 1;
                }
            }
            payloads
        });
        futures::future::ready(encoded.map_err(|e| PayloadConversionError::EncodingError(e.into())))
            .boxed()
    }
    fn decode(
        &self,
        c: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        self.0.decode(c, payloads)
    }
}

/// Waits until the order's first workflow task has failed at least twice (a failure recorded
/// in the history, then a retry counted by the server); answers the failure's message.
async fn failed_task(app: &TestApp, order_id: &str) -> Result<String> {
    use temporalio_common::protos::temporal::api::history::v1::history_event::Attributes;
    let handle = app.client.get_workflow_handle::<OrderWorkflow>(order_id);
    for _ in 0..600 {
        let History { events } = raw_history(app, order_id).await.unwrap_or_default();
        let failure = events.iter().find_map(|e| match &e.attributes {
            Some(Attributes::WorkflowTaskFailedEventAttributes(f)) => f.failure.clone(),
            _ => None,
        });
        let attempt = handle
            .describe(Default::default())
            .await
            .ok()
            .and_then(|d| d.raw().pending_workflow_task.as_ref().map(|t| t.attempt));
        if let (Some(failure), Some(attempt)) = (failure, attempt)
            && attempt >= 2
        {
            return Ok(failure.message);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the workflow task of {order_id} never failed twice")
}

#[tokio::test]
async fn a_tampered_payload_fails_the_workflow_task_and_nothing_runs() -> R {
    let app = saga_tests::spawn_app().await;
    let tampering = Tampering(EncryptionCodec::new(&app.settings.payload_keys));
    let forged = runtime::connect_temporal_converting(&app.settings, converter(tampering)).await?;
    let service = starter::OrderService::new(
        forged,
        app.db.clone(),
        &app.settings.task_queue,
        app.settings.payment_timeout,
    );
    let user = app.user(10_000).await;
    let p = app.product(1_000, 5).await;
    let id = starter::OrderService::new_order_id();
    let shipping = secret_shipping();
    // The placement waits for an answer that never comes: the worker cannot read its input.
    let placing = service.place(&id, user, super::request(&[(p, 1)], None, &shipping));
    let outcome = tokio::time::timeout(Duration::from_secs(3), placing).await;
    ensure!(
        outcome.is_err(),
        "a forged placement was answered: {outcome:?}"
    );
    let message = failed_task(&app, &id).await?;
    ensure!(
        message.contains("does not open") && message.contains("altered"),
        "the failure should say the payload does not open: {message}"
    );
    ensure!(app.order_count().await == 0, "the workflow ran on garbage");
    app.client
        .get_workflow_handle::<OrderWorkflow>(id.as_str())
        .terminate(Default::default())
        .await?;
    app.finish().await
}
