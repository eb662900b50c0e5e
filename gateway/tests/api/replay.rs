//! A captured request replayed (hostile review, item 7): on another replica, after a restart, and
//! with Redis away. Each signed request is accepted exactly once, whichever gateway gets it.

use stack::*;

/// A pay, signed once (stamped `timestamp`): the captured request.
struct Captured {
    authorization: String,
    body: String,
}

fn capture(pos: &Pos, timestamp: i64) -> Captured {
    let body = pos.charge_body(&trade_no("replay"), &code("00"), "3.00").to_string();
    let nonce = format!("n{}", uuid::Uuid::new_v4().simple());
    let authorization = tenants::signature::authorization(
        &pos.key_id,
        &pos.secret,
        "POST",
        "/v1/payments",
        timestamp,
        &nonce,
        body.as_bytes(),
    );
    Captured { authorization, body }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Sends `request` to the gateway at `base` (`http://host:port`); answers the status.
async fn replay(http: &reqwest::Client, base: &str, request: &Captured) -> u16 {
    http.post(format!("{base}/v1/payments"))
        .header("authorization", &request.authorization)
        .header("content-type", "application/json")
        .body(request.body.clone())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn gateway_binary() -> &'static str {
    env!("CARGO_BIN_EXE_gateway")
}

#[tokio::test]
async fn a_request_sent_to_two_gateways_is_accepted_by_one() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.mapi_tenant().await;
    let other = GatewayProcess::spawn(stack.gateway_process(gateway_binary(), &stack.gateway_config()));
    let (here, there) = (stack.base(), other.base.clone());
    let mut accepted = Vec::new();
    for _ in 0..10 {
        let request = capture(&pos, now());
        // Both at once: each gateway's own memory has not seen it.
        let (a, b) = tokio::join!(replay(&stack.http, &here, &request), replay(&stack.http, &there, &request));
        let mut statuses = [a, b];
        statuses.sort_unstable();
        accepted.push(statuses);
    }
    println!("the same request sent to two gateways at once, ten times: {accepted:?}");
    assert!(accepted.iter().all(|statuses| *statuses == [200, 401]), "exactly one accepted each time: {accepted:?}");
}

#[tokio::test]
async fn a_request_sent_before_and_after_a_restart_is_accepted_once() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.mapi_tenant().await;
    let config = stack.gateway_config();
    let mut gateway = GatewayProcess::spawn(stack.gateway_process(gateway_binary(), &config));
    let request = capture(&pos, now());
    assert_eq!(replay(&stack.http, &gateway.base, &request).await, 200);
    gateway.kill();
    let restarted = GatewayProcess::spawn(stack.gateway_process(gateway_binary(), &config));
    let again = replay(&stack.http, &restarted.base, &request).await;
    let fresh = replay(&stack.http, &restarted.base, &capture(&pos, now())).await;
    println!("before the restart: 200; the same request after it: {again}; a fresh one: {fresh}");
    assert_eq!((again, fresh), (401, 200), "the replay is refused, a fresh request accepted");
}

#[tokio::test]
async fn without_redis_a_request_stamped_before_the_start_is_refused() {
    let mut redis = PrivateRedis::start();
    let stack = Stack::start(Options { redis_url: redis.url(), ..Options::default() }).await;
    let pos = stack.mapi_tenant().await;
    // Captured a second ago (a request stamped in the second the gateway starts in is answered
    // 503 `busy`, "sign it again": it may have been sent before the start, or after).
    let captured = capture(&pos, now() - 1);
    redis.stop();
    let gateway = GatewayProcess::spawn(stack.gateway_process(gateway_binary(), &stack.gateway_config()));
    let old = replay(&stack.http, &gateway.base, &captured).await;
    // Stamped after the start: the POS's clock a second ahead (the start was in an earlier
    // second, or this one).
    let fresh = replay(&stack.http, &gateway.base, &capture(&pos, now() + 1)).await;
    let fresh_again = replay(&stack.http, &gateway.base, &capture(&pos, now() + 1)).await;
    let metrics = stack.http.get(format!("{}/metrics", gateway.admin)).send().await.unwrap().text().await.unwrap();
    let counted = |result: &str| {
        metrics.lines().any(|line| {
            line.starts_with("gateway_replay_fallback_total") && line.contains(&format!("result=\"{result}\""))
        })
    };
    println!("Redis stopped: a request stamped before the start: {old}; fresh ones: {fresh}, {fresh_again}");
    assert_eq!((old, fresh, fresh_again), (401, 200, 200));
    assert!(counted("refused") && counted("accepted"), "the fallback is counted:\n{metrics}");
}
