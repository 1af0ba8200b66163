//! `GET /api/v1/me`, `GET /api/v1/me/coupons` and `POST /api/v1/me/points/charge`.

use saga_tests::http::{ApiApp, spawn_api_with_rate_limit};
use serde_json::json;

use crate::R;
use crate::admin::Shop;

/// The walk's step: me, my coupons, a top-up.
pub async fn read_coupons_and_top_up(api: &ApiApp, shop: &Shop) -> R {
    let got = api.get("/api/v1/me", Some(&shop.me)).await?;
    assert_eq!(
        got.assert_ok(200),
        &json!({"id": shop.uid, "name": "Dana", "points": 50_000})
    );
    let coupons = api.get("/api/v1/me/coupons", Some(&shop.me)).await?;
    assert_eq!(coupons.assert_ok(200), &json!([shop.coupon]));
    let topped = api
        .post(
            "/api/v1/me/points/charge",
            Some(&shop.me),
            &json!({"amount": 5_000}),
        )
        .await?;
    assert_eq!(topped.assert_ok(200)["points"], 55_000);
    Ok(())
}

/// A top-up is 1 to 10,000,000.
#[tokio::test]
async fn a_top_up_at_and_just_past_its_limits() -> R {
    let api = spawn_api_with_rate_limit(None).await;
    let user = api.app.user(10_000_000).await;
    let me = api.customer(user);
    for (amount, good) in [
        (1, true),
        (10_000_000, true),
        (0, false),
        (10_000_001, false),
        (-5, false),
    ] {
        let r = api
            .post(
                "/api/v1/me/points/charge",
                Some(&me),
                &json!({"amount": amount}),
            )
            .await?;
        if good {
            r.assert_ok(200);
        } else {
            r.assert_error(400, "INVALID_REQUEST");
        }
    }
    api.finish().await
}
