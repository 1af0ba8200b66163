//! `POST /api/v1/orders`, `GET /api/v1/orders`, `GET /api/v1/orders/{id}` and
//! `POST /api/v1/orders/{id}/cancel`: placing, listing, showing, canceling, and the input
//! rules of a placement.

use domain::{OrderId, ProductId};
use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};
use serde_json::{Value, json};
use testkit::shop::{order_body, shipping_json};

use crate::admin::Shop;
use crate::{R, cancel, id_of, place};

/// The walk's step: two orders placed (the first with the coupon), listed newest first, the
/// list limited, the first shown. Returns the first's id and the second's.
pub async fn place_list_and_show(api: &ApiApp, shop: &Shop) -> anyhow::Result<(OrderId, OrderId)> {
    let me = &shop.me;
    let placed = place(api, me, &[(shop.pid, 2)], Some(shop.cid)).await;
    let order = placed.assert_ok(201).clone();
    assert_eq!(order["status"], "PENDING");
    assert_eq!(
        (
            order["subtotal"].as_i64(),
            order["discount"].as_i64(),
            order["total"].as_i64()
        ),
        (Some(24_000), Some(1_000), Some(23_000))
    );
    assert_eq!(order["shipping"], shipping_json());
    let oid = id_of(&placed);
    let second = place(api, me, &[(shop.pid, 1)], None).await;
    let second_id = id_of(&second);
    let list = api.get("/api/v1/orders", Some(me)).await?;
    let ids: Vec<&str> = list
        .assert_ok(200)
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| o["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, [second_id.as_str(), oid.as_str()], "newest first");
    let limited = api.get("/api/v1/orders?limit=1", Some(me)).await?;
    assert_eq!(limited.assert_ok(200).as_array().map(Vec::len), Some(1));
    let shown = api.get(&format!("/api/v1/orders/{oid}"), Some(me)).await?;
    assert_eq!(shown.assert_ok(200)["total"], 23_000);
    Ok((oid, second_id))
}

/// The walk's last step: the other order canceled, its unit back on the shelf.
pub async fn cancel_and_restock(api: &ApiApp, shop: &Shop, order: &str) -> R {
    let canceled = cancel(api, &shop.me, order).await;
    assert_eq!(canceled.assert_ok(200)["status"], "CANCELED");
    let product = api
        .get(&format!("/api/v1/products/{}", shop.pid), Some(&shop.me))
        .await?;
    assert_eq!(product.body["stock"], 1);
    Ok(())
}

/// A placement that must succeed; its order's id.
async fn placed(r: testkit::Reply) -> OrderId {
    r.assert_ok(201);
    id_of(&r)
}

#[tokio::test]
async fn lines_and_quantities_at_and_just_past_their_limits() -> R {
    // Some forty requests of one user's, as fast as they are answered: RATE_LIMIT off.
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    let mut products = Vec::new();
    for _ in 0..51 {
        products.push(api.app.product(1, 5_000).await);
    }
    let p = products[0];
    let mut orders = Vec::new();

    // Lines: 1 and 50 are fine, 0 and 51 are not; no product twice.
    orders.push(placed(place(&api, &me, &[(p, 1)], None).await).await);
    let fifty: Vec<(ProductId, i64)> = products[..50].iter().map(|&id| (id, 1)).collect();
    orders.push(placed(place(&api, &me, &fifty, None).await).await);
    let fifty_one: Vec<(ProductId, i64)> = products.iter().map(|&id| (id, 1)).collect();
    place(&api, &me, &fifty_one, None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    place(&api, &me, &[], None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    place(&api, &me, &[(p, 1), (p, 2)], None)
        .await
        .assert_error(400, "INVALID_REQUEST");
    // Quantity: 1 and 1000 are fine, 0, 1001, negative, fractional, text and huge are not.
    orders.push(placed(place(&api, &me, &[(p, 1000)], None).await).await);
    for q in [0, 1001, -1] {
        place(&api, &me, &[(p, q)], None)
            .await
            .assert_error(400, "INVALID_REQUEST");
    }
    for q in [
        json!(1.5),
        json!("1"),
        json!(1e30),
        json!(null),
        json!(9_223_372_036_854_775_808u64),
    ] {
        let body =
            json!({"items": [{"product_id": p, "quantity": q}], "shipping": shipping_json()});
        api.post("/api/v1/orders", Some(&me), &body)
            .await?
            .assert_error(400, "INVALID_REQUEST");
    }
    // Missing and extra fields, wrong shapes.
    for body in [
        json!({"items": [{"product_id": p, "quantity": 1}]}),
        json!({"items": [{"product_id": p, "quantity": 1, "price": 0}], "shipping": shipping_json()}),
        json!({"items": {"product_id": p}, "shipping": shipping_json()}),
        json!([1, 2]),
        json!("order"),
    ] {
        api.post("/api/v1/orders", Some(&me), &body)
            .await?
            .assert_error(400, "INVALID_REQUEST");
    }
    for id in orders {
        cancel(&api, &me, &id).await.assert_ok(200);
    }
    api.finish().await
}

/// Shipping: recipient 1–100, address 1–300, phone 7–20 of digits, spaces, + and -.
#[tokio::test]
async fn shipping_at_and_just_past_its_limits() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    let p = api.app.product(1, 5_000).await;
    let with = |field: &str, value: String| {
        let mut body: Value = order_body(&[(p, 1)], None);
        body["shipping"][field] = json!(value);
        body
    };
    let mut orders = Vec::new();
    for (field, min, max) in [("recipient", 1, 100), ("address", 1, 300)] {
        for (n, good) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
            let r = api
                .post("/api/v1/orders", Some(&me), &with(field, "가".repeat(n)))
                .await?;
            if good {
                orders.push(placed(r).await)
            } else {
                r.assert_error(400, "INVALID_REQUEST");
            }
        }
    }
    for (phone, good) in [
        ("1234567", true),
        ("+82 10-1234-5678 12", true),
        ("123456", false),
        ("123456789012345678901", false),
        ("010.1234.5678", false),
        ("010-1234-567a", false),
    ] {
        let r = api
            .post("/api/v1/orders", Some(&me), &with("phone", phone.into()))
            .await?;
        if good {
            orders.push(placed(r).await)
        } else {
            r.assert_error(400, "INVALID_REQUEST");
        }
    }
    for id in orders {
        cancel(&api, &me, &id).await.assert_ok(200);
    }
    api.finish().await
}

/// `limit` is 1 to 1000.
#[tokio::test]
async fn the_list_limit_at_and_just_past_its_limits() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    api.get("/api/v1/orders?limit=0", Some(&me))
        .await?
        .assert_error(400, "INVALID_REQUEST");
    api.get("/api/v1/orders?limit=1001", Some(&me))
        .await?
        .assert_error(400, "INVALID_REQUEST");
    api.get("/api/v1/orders?limit=1000", Some(&me))
        .await?
        .assert_ok(200);
    api.finish().await
}

/// The ids of a list answer, in its order.
pub fn ids_of(list: &testkit::Reply) -> Vec<OrderId> {
    list.assert_ok(200)
        .as_array()
        .expect("a list")
        .iter()
        .map(|o| OrderId::parse(o["id"].as_str().expect("an order id")).expect("an order id"))
        .collect()
}

/// The `Link: <…>; rel="next"` of a list answer: the next page's path, if any.
pub fn next_page(list: &testkit::Reply) -> Option<String> {
    let link = list.headers.get("link")?.to_str().expect("an ASCII Link");
    let (target, params) = link.split_once(';').expect("<target>; rel=\"next\"");
    assert_eq!(params.trim(), "rel=\"next\"", "{link}");
    let target = target.trim();
    assert!(target.starts_with('<') && target.ends_with('>'), "{link}");
    Some(target[1..target.len() - 1].to_owned())
}

/// Every page from `first`, following `Link` until there is none: the ids of all, in order,
/// and how many pages there were.
pub async fn every_page(
    api: &ApiApp,
    token: &str,
    first: &str,
) -> anyhow::Result<(Vec<OrderId>, usize)> {
    let (mut ids, mut pages, mut path) = (Vec::new(), 0, Some(first.to_owned()));
    while let Some(p) = path {
        let page = api.get(&p, Some(token)).await?;
        ids.extend(ids_of(&page));
        pages += 1;
        assert!(pages <= 100, "Link paging does not end");
        path = next_page(&page);
    }
    Ok((ids, pages))
}

#[tokio::test]
async fn the_customers_list_pages_past_its_limit_with_link() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(1_000_000).await;
    let other = api.app.user(1_000_000).await;
    let (me, them) = (api.customer(user), api.customer(other));
    let p = api.app.product(1_000, 100).await;
    let mut placed_ids = Vec::new();
    for _ in 0..5 {
        placed_ids.push(placed(place(&api, &me, &[(p, 1)], None).await).await);
    }
    let theirs = placed(place(&api, &them, &[(p, 1)], None).await).await;
    placed_ids.reverse();

    // Unpaged: the user's five, newest first; no Link when nothing more remains.
    let all = api.get("/api/v1/orders", Some(&me)).await?;
    assert_eq!(ids_of(&all), placed_ids);
    assert_eq!(next_page(&all), None);
    let exact = api.get("/api/v1/orders?limit=5", Some(&me)).await?;
    assert_eq!((ids_of(&exact).len(), next_page(&exact)), (5, None));

    // Two at a time: three pages, the same five in the same order, never another user's.
    let first = api.get("/api/v1/orders?limit=2", Some(&me)).await?;
    assert_eq!(ids_of(&first), placed_ids[..2]);
    let next = next_page(&first).expect("a Link to the next page");
    assert!(next.starts_with("/api/v1/orders?limit=2&cursor="), "{next}");
    let (paged, pages) = every_page(&api, &me, "/api/v1/orders?limit=2").await?;
    assert_eq!((paged, pages), (placed_ids.clone(), 3));
    assert!(!placed_ids.contains(&theirs));

    // A cursor is only what a Link gave; an admin token has its own list.
    for bad in ["x", "1.", ".ord", "12345678901234567890.a", "1.a/b"] {
        api.get(&format!("/api/v1/orders?cursor={bad}"), Some(&me))
            .await?
            .assert_error(400, "INVALID_REQUEST");
    }
    api.get("/api/v1/orders", Some(&api.admin()))
        .await?
        .assert_error(403, "FORBIDDEN");

    for id in placed_ids.iter() {
        cancel(&api, &me, id).await.assert_ok(200);
    }
    cancel(&api, &them, &theirs).await.assert_ok(200);
    api.finish().await
}
