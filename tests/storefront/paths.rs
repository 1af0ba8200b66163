//! Seed 003's paths, each as a shopper walks it in the browser. Set-up the shopper does not
//! see (a second order, another shopper's purchase) goes through the API.

use std::time::Duration;

use anyhow::Result;
use domain::{CouponId, Discount, ProductId};
use serde_json::json;
use starter::http::AppState;

use crate::{R, Shop};

const PERCENT: Discount = Discount::Percent {
    percent: 10,
    max_amount: Some(1_000),
};

/// Puts `qty` of the product into the cart from the catalogue.
async fn add_to_cart(shop: &Shop, product: ProductId, qty: i64) -> R {
    let b = &shop.browser;
    let card = format!("li[data-product-id=\"{product}\"]");
    b.type_into(&format!("{card} input[name=quantity]"), &qty.to_string())
        .await?;
    b.click(&format!("{card} button[type=submit]")).await?;
    b.wait_text("#cart-status", "to your cart").await?;
    Ok(())
}

/// Fills the shipping form and places the order; the order page's id.
async fn place_from_checkout(shop: &Shop) -> Result<String> {
    let b = &shop.browser;
    b.type_into("#shipping input[name=recipient]", "Kim <b>Minji</b>")
        .await?;
    b.type_into("#shipping input[name=address]", "1 Sejong-daero, Seoul")
        .await?;
    b.type_into("#shipping input[name=phone]", "010-1234-5678")
        .await?;
    b.click("#place").await?;
    b.wait_text("#order-status", "Waiting for payment").await?;
    let hash = b.js("return location.hash;", vec![]).await?;
    let id = hash
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("#/orders/");
    Ok(id.to_owned())
}

/// Placed through the API (set-up the shopper does not see): the order's id.
async fn placed(
    shop: &Shop,
    token: &str,
    lines: &[(ProductId, i64)],
    coupon: Option<CouponId>,
) -> Result<String> {
    let body = testkit::shop::order_body(lines, coupon);
    let r = shop.api.post("/api/v1/orders", Some(token), &body).await?;
    Ok(r.assert_ok(201)["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

pub async fn happy_path_with_a_coupon(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (uid, token) = shop.user("Dana", 50_000).await?;
    let lamp = shop.product("Desk Lamp", 12_000, 3).await?;
    let coupon = shop.api.app.coupon(uid, PERCENT, Some(10_000)).await;
    shop.sign_in(&token).await?;
    // The link's token left the address bar at once; the catalogue lists the product by name.
    let url = b.client.current_url().await?;
    assert!(
        !url.as_str().contains("token"),
        "the token is still in {url}"
    );
    let card = format!("li[data-product-id=\"{lamp}\"]");
    for shown in ["Desk Lamp", "12,000 points", "3 in stock"] {
        b.wait_text(&card, shown).await?;
    }
    add_to_cart(shop, lamp, 2).await?;
    b.go("#/cart").await?;
    b.wait_text("table.lines", "Desk Lamp").await?;
    b.client.refresh().await?;
    b.wait_text("#nav-cart", "Cart (2)").await?;
    b.click("#to-checkout").await?;
    let row = format!("#coupons [data-coupon-id=\"{coupon}\"]");
    b.wait_text(&row, "10% off (at most 1,000 points): saves 1,000 points")
        .await?;
    b.wait_text("#total", "24,000 points").await?;
    b.click(&format!("{row} input")).await?;
    b.wait_text("#discount", "− 1,000 points").await?;
    b.wait_text("#total", "23,000 points").await?;
    b.wait_text("#points", "50,000 points").await?;
    shop.picture("storefront-checkout").await?;
    let id = place_from_checkout(shop).await?;
    b.wait_text("#countdown", "Pay within").await?;
    // Free text from the API is shown as text, never as markup.
    b.wait_text("#shipping-to", "Kim <b>Minji</b>").await?;
    b.click("#pay").await?;
    b.wait_text("#order-status", "Completed").await?;
    b.wait_text("#receipt", "23,000 points").await?;
    // Checkout's "pay before the time runs out" is gone once the order is paid.
    let notice = b.text_of("#notice").await?;
    assert!(
        !notice.contains("time runs out"),
        "a stale notice: {notice}"
    );
    shop.picture("storefront-receipt").await?;
    assert_eq!(shop.api.app.points(uid).await, 27_000);
    assert_eq!(
        shop.api.app.coupon_status(coupon).await,
        ("USED".into(), Some(id))
    );
    b.wait_text("#nav-cart", "Cart").await?;
    assert_eq!(
        b.text_of("#nav-cart").await?,
        "Cart",
        "the cart is empty once ordered"
    );
    Ok(())
}

pub async fn a_sold_out_product_cannot_be_bought(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (_, token) = shop.user("Dana", 50_000).await?;
    let (_, rival) = shop.user("Rival", 50_000).await?;
    let vase = shop.product("Vase", 5_000, 0).await?;
    let mug = shop.product("Mug <img src=x>", 2_000, 2).await?;
    shop.sign_in(&token).await?;
    let card = format!("li[data-product-id=\"{vase}\"]");
    b.wait_text(&card, "Sold out").await?;
    let disabled = format!("document.querySelector('{card} button').disabled");
    b.wait_until("the sold-out product's button disabled", &disabled)
        .await?;
    // The name is text, not markup: no image was made of it.
    b.wait_text(
        &format!("li[data-product-id=\"{mug}\"] h2"),
        "Mug <img src=x>",
    )
    .await?;
    assert_eq!(
        b.js(
            "return document.querySelectorAll('main img').length;",
            vec![]
        )
        .await?,
        json!(0)
    );
    add_to_cart(shop, mug, 2).await?;
    // Another shopper buys the last two meanwhile: checkout says so, in words.
    let theirs = placed(shop, &rival, &[(mug, 2)], None).await?;
    let paid = shop
        .api
        .post(
            "/api/v1/payments",
            Some(&rival),
            &json!({"order_id": theirs}),
        )
        .await?;
    paid.assert_ok(200);
    b.go("#/checkout").await?;
    b.wait_text("main", "Mug <img src=x> is sold out.").await?;
    assert_eq!(
        b.text_of("#shipping").await?,
        "",
        "no order form for a cart that cannot be placed"
    );
    Ok(())
}

pub async fn an_unusable_coupon_says_why(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (uid, token) = shop.user("Dana", 50_000).await?;
    let lamp = shop.product("Desk Lamp", 12_000, 3).await?;
    let big = shop.api.app.coupon(uid, PERCENT, Some(50_000)).await;
    let fixed = shop
        .api
        .app
        .coupon(uid, Discount::Fixed { amount: 500 }, None)
        .await;
    shop.sign_in(&token).await?;
    add_to_cart(shop, lamp, 1).await?;
    b.go("#/checkout").await?;
    let unusable = format!("#coupons [data-coupon-id=\"{big}\"]");
    b.wait_text(&unusable, "not usable for this cart").await?;
    b.wait_text(&unusable, "It needs an order of at least 50,000 points.")
        .await?;
    let disabled = format!("document.querySelector('{unusable} input').disabled");
    b.wait_until("the unusable coupon cannot be chosen", &disabled)
        .await?;
    b.wait_text(
        &format!("#coupons [data-coupon-id=\"{fixed}\"]"),
        "saves 500 points",
    )
    .await?;
    b.click(&format!("#coupons [data-coupon-id=\"{fixed}\"] input"))
        .await?;
    b.wait_text("#total", "11,500 points").await?;
    place_from_checkout(shop).await?;
    b.wait_text("#order-total", "11,500 points").await?;
    b.click("#cancel").await?;
    b.wait_text("#order-status", "Canceled").await?;
    Ok(())
}

pub async fn short_of_points_top_up_and_pay_again(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (uid, token) = shop.user("Dana", 20_000).await?;
    let lamp = shop.product("Desk Lamp", 12_000, 5).await?;
    // Two orders placed while the points covered each; the first one paid.
    let first = placed(shop, &token, &[(lamp, 1)], None).await?;
    let second = placed(shop, &token, &[(lamp, 1)], None).await?;
    let paid = shop
        .api
        .post(
            "/api/v1/payments",
            Some(&token),
            &json!({"order_id": first}),
        )
        .await?;
    paid.assert_ok(200);
    shop.sign_in(&token).await?;
    b.go("#/orders").await?;
    b.wait_text(&format!("tr[data-order-id=\"{first}\"]"), "Completed")
        .await?;
    b.click(&format!("tr[data-order-id=\"{second}\"] a"))
        .await?;
    b.click("#pay").await?;
    b.wait_text("#order-status-msg", "you need 4,000 more")
        .await?;
    b.wait_text("#order-status", "Waiting for payment").await?;
    let amount = b
        .js(
            "return document.querySelector('#shortfall input[name=amount]').value;",
            vec![],
        )
        .await?;
    assert_eq!(amount, json!("4000"), "the top-up offers the shortfall");
    b.click("#shortfall button[type=submit]").await?;
    b.wait_text("#order-status-msg", "You can pay again now")
        .await?;
    assert_eq!(shop.api.app.points(uid).await, 12_000);
    b.click("#pay").await?;
    b.wait_text("#order-status", "Completed").await?;
    b.wait_text("#receipt", "12,000 points").await?;
    assert_eq!(shop.api.app.points(uid).await, 0);
    Ok(())
}

pub async fn a_canceled_order_gives_the_coupon_back(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (uid, token) = shop.user("Dana", 50_000).await?;
    let lamp = shop.product("Desk Lamp", 12_000, 3).await?;
    let coupon = shop.api.app.coupon(uid, PERCENT, Some(10_000)).await;
    shop.sign_in(&token).await?;
    add_to_cart(shop, lamp, 1).await?;
    b.go("#/checkout").await?;
    b.click(&format!("#coupons [data-coupon-id=\"{coupon}\"] input"))
        .await?;
    b.wait_text("#total", "11,000 points").await?;
    place_from_checkout(shop).await?;
    b.click("#cancel").await?;
    b.wait_text("#order-status", "Canceled").await?;
    b.wait_text("#why", "You canceled this order.").await?;
    b.wait_text("#why", "Nothing was charged").await?;
    b.go("#/account").await?;
    let mine = format!("#my-coupons [data-coupon-id=\"{coupon}\"]");
    b.wait_text(&mine, "Available").await?;
    b.wait_text("#my-points", "50,000").await?;
    assert_eq!(shop.api.app.coupon_status(coupon).await.0, "AVAILABLE");
    Ok(())
}

pub async fn an_unpaid_order_expires_on_screen(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (_, token) = shop.user("Dana", 50_000).await?;
    let lamp = shop.product("Desk Lamp", 12_000, 3).await?;
    shop.sign_in(&token).await?;
    add_to_cart(shop, lamp, 1).await?;
    b.go("#/checkout").await?;
    let id = place_from_checkout(shop).await?;
    b.wait_text("#countdown", "Pay within 0:0").await?;
    // A mark on this very page: it is still there after the expiry, so nothing reloaded.
    b.js("window.stillThisPage = true; return null;", vec![])
        .await?;
    b.wait_text("#order-status", "Expired").await?;
    b.wait_text("#why", "The time to pay ran out").await?;
    assert_eq!(
        b.js("return window.stillThisPage === true;", vec![])
            .await?,
        json!(true)
    );
    assert_eq!(
        b.text_of("#pay").await?,
        "",
        "no Pay button on an expired order"
    );
    let shown = shop
        .api
        .get(&format!("/api/v1/orders/{id}"), Some(&token))
        .await?;
    assert_eq!(shown.assert_ok(200)["cancel_code"], "PAYMENT_EXPIRED");
    Ok(())
}

pub async fn sign_out_and_a_bad_token(shop: &mut Shop) -> R {
    let b = &shop.browser;
    let (_, token) = shop.user("Dana", 50_000).await?;
    b.open_page("/#/orders").await?;
    b.wait_text("h1", "Sign in").await?;
    b.type_into("#sign-in textarea", "not-a-token").await?;
    b.click("#sign-in button").await?;
    b.wait_text("#sign-in", "This token was not accepted")
        .await?;
    b.type_into("#sign-in textarea", &token).await?;
    b.click("#sign-in button").await?;
    b.wait_text("h1", "Catalogue").await?;
    b.click("#sign-out").await?;
    b.wait_text("h1", "Sign in").await?;
    b.wait_text("#notice", "You are signed out").await?;
    let kept = b
        .js("return sessionStorage.getItem('shop.token');", vec![])
        .await?;
    assert_eq!(kept, json!(null), "sign-out forgets the token");
    b.go("#/account").await?;
    b.wait_text("h1", "Sign in").await?;
    // A token the API refuses later (here, one signed with another secret) returns to sign-in.
    let forged = testkit::tokens::sign(
        &json!({"sub": "1", "role": "customer", "exp": 4_102_444_800_i64}),
        testkit::tokens::Algorithm::HS256,
        b"another secret that is long enough to be one",
    );
    b.open_page(&format!("/#token={forged}")).await?;
    b.wait_text("h1", "Sign in").await?;
    b.wait_text("#notice", "Please sign in again").await?;
    Ok(())
}

pub async fn the_api_down_and_back(shop: &mut Shop) -> R {
    let (_, token) = shop.user("Dana", 50_000).await?;
    shop.product("Desk Lamp", 12_000, 3).await?;
    shop.sign_in(&token).await?;
    let b = &shop.browser;
    // Down: the port refuses connections. The page says so and keeps trying.
    shop.api.stop_serving().await;
    b.go("#/orders").await?;
    b.wait_text("main", "The shop cannot be reached right now")
        .await?;
    // Up, but its database unreachable: 503, and the page asks to retry.
    let nowhere = store::db::connect_lazy(
        "postgres://postgres@127.0.0.1:9/none",
        Duration::from_secs(1),
    )?;
    let app = &shop.api.app;
    let broken = AppState::from_parts(app.settings.clone(), nowhere, Some(app.client.clone()));
    shop.api.serve_again(broken).await?;
    b.wait_text(
        "main",
        "The shop is temporarily unavailable. Please try again",
    )
    .await?;
    b.wait_text("#retry", "Try again now").await?;
    // Back: the page recovers by itself, without a reload.
    b.js("window.stillThisPage = true; return null;", vec![])
        .await?;
    let state = shop.api.state();
    shop.api.serve_again(state).await?;
    b.wait_text("main", "No orders yet").await?;
    assert_eq!(
        b.js("return window.stillThisPage === true;", vec![])
            .await?,
        json!(true)
    );
    b.go("#/").await?;
    b.wait_text("main", "Desk Lamp").await?;
    Ok(())
}
