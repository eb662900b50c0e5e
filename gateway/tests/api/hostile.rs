//! Hostile input, signed by a real POS so that it reaches validation, over every endpoint that
//! reads a body or a query: each is refused with a 4xx problem that blames the POS, nothing is
//! written, and the gateway stays up. The same bodies go to Alipay's notification receiver and,
//! with the admin token, to every admin API call that reads a body.

use stack::*;

pub fn hostile_bodies() -> Vec<(&'static str, Vec<u8>)> {
    let deep_array = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    let long = "x".repeat(60_000);
    vec![
        ("empty", Vec::new()),
        ("null", b"null".to_vec()),
        ("not JSON", b"out_trade_no=1&amount=2".to_vec()),
        ("bad UTF-8", vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}']),
        ("deep array", deep_array.into_bytes()),
        ("deep object", deep_object.into_bytes()),
        ("huge number", br#"{"out_trade_no":"h1","auth_code":"281234567890123400","amount":1e400,"subject":"x"}"#.to_vec()),
        ("huge amount", br#"{"out_trade_no":"h1","auth_code":"281234567890123400","amount":"99999999999999999999.99","subject":"x","out_request_no":"r1","code":"c"}"#.to_vec()),
        ("zero amount", br#"{"out_trade_no":"h1","auth_code":"281234567890123400","amount":"0.00","subject":"x","out_request_no":"r1"}"#.to_vec()),
        ("three decimals", br#"{"out_trade_no":"h1","auth_code":"281234567890123400","amount":"1.001","subject":"x","out_request_no":"r1"}"#.to_vec()),
        ("negative", br#"{"out_trade_no":"h1","auth_code":"281234567890123400","amount":"-5.00","subject":"x","out_request_no":"r1"}"#.to_vec()),
        ("wrong types", br#"{"out_trade_no":7,"auth_code":["2812"],"amount":{"v":1},"subject":null,"out_request_no":1,"code":2}"#.to_vec()),
        ("NUL in text", b"{\"out_trade_no\":\"h1\",\"auth_code\":\"281234567890123400\",\"amount\":\"1.00\",\"subject\":\"a\\u0000b\",\"code\":\"\\u0000\"}".to_vec()),
        ("duplicate keys", br#"{"out_trade_no":"h1","out_trade_no":"h2","auth_code":"281234567890123400","amount":"1.00","subject":"x"}"#.to_vec()),
        ("long strings", format!(r#"{{"out_trade_no":"{long}","subject":"x","code":"y"}}"#).into_bytes()),
        ("over the limit", vec![b' '; 70_000]),
    ]
}

#[tokio::test]
async fn hostile_bodies_and_queries_are_refused_and_write_nothing() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let (_, paid) = pos.pay(&trade_no("base"), &code("00"), "10.00").await;
    let paid_no = paid["out_trade_no"].as_str().unwrap().to_owned();
    let client = stack.db.client().await;
    let count = |table: &'static str| {
        let client = &client;
        async move { client.query_one(&format!("SELECT count(*) FROM {table}"), &[]).await.unwrap().get::<_, i64>(0) }
    };
    let before = (count("trades").await, count("refunds").await);
    let endpoints = [
        "/v1/payments".to_owned(),
        format!("/v1/payments/{paid_no}/refunds"),
        "/v1/qr-orders".to_owned(),
        "/v1/oauth/token".to_owned(),
    ];
    let mut refused = 0;
    for path in &endpoints {
        for (what, body) in hostile_bodies() {
            let (status, answer) = pos.send_raw("POST", path, body).await;
            assert!((400..500).contains(&status), "{what} to {path}: {status} {answer}");
            let problem: serde_json::Value = serde_json::from_str(&answer).unwrap();
            assert_eq!(problem["fault"], "pos", "{what} to {path}: {answer}");
            refused += 1;
        }
    }
    let queries = [
        format!("/v1/payments/{paid_no}?wait=99999999999999999999"),
        format!("/v1/payments/{paid_no}?wait=-1"),
        "/v1/reports/sales?from=2026-02-30&to=2026-03-01".to_owned(),
        "/v1/reports/sales?from=2026-01-01&to=2030-01-01".to_owned(),
        "/v1/reports/sales?from=%FF%FE&to=%00".to_owned(),
        format!("/v1/payments/{}", "n".repeat(5_000)),
    ];
    for path in &queries {
        let (status, answer) = pos.send_raw("GET", path, Vec::new()).await;
        assert!((400..500).contains(&status), "GET {path}: {status} {answer}");
        refused += 1;
    }
    assert_eq!(refused, endpoints.len() * hostile_bodies().len() + queries.len());
    assert_eq!((count("trades").await, count("refunds").await), before, "nothing written");
    // And the gateway still serves.
    let (status, body) = pos.pay(&trade_no("after"), &code("00"), "1.00").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")));
}

/// Every row of every table, as text: equal before and after means nothing was written.
pub async fn everything(client: &tokio_postgres::Client) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "tenants",
        "tenant_secrets",
        "api_credentials",
        "tenant_audit",
        "trades",
        "refunds",
        "alipay_notifications",
        "webhook_outbox",
        "front_doors",
    ] {
        let sql = format!("SELECT coalesce(string_agg(t::text, '|' ORDER BY t::text), '') FROM {table} t");
        rows.push(client.query_one(&sql, &[]).await.unwrap().get(0));
    }
    rows
}

#[tokio::test]
async fn hostile_bodies_to_the_notify_receiver_and_the_admin_api_are_refused_and_write_nothing() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.mapi_tenant().await;
    assert_eq!(pos.pay_in(&trade_no("base"), &code("00"), "10.00", "HKD").await.0, 200);
    let client = stack.db.client().await;
    let before = everything(&client).await;
    let admin = format!("http://{}/admin/tenants", stack.gateway.admin_addr());
    let calls = [
        (reqwest::Method::POST, format!("{}/notify/{}", stack.base(), pos.tenant_id)),
        (reqwest::Method::POST, admin.clone()),
        (reqwest::Method::PATCH, format!("{admin}/{}", pos.slug)),
        (reqwest::Method::PUT, format!("{admin}/{}/keys", pos.slug)),
        (reqwest::Method::POST, format!("{admin}/{}/api-secret/rotate", pos.slug)),
    ];
    let mut refused = 0;
    for (method, url) in &calls {
        for (what, body) in hostile_bodies() {
            if what == "empty" && url.ends_with("/rotate") {
                continue; // a rotation with the default overlap: a valid call
            }
            let response = stack
                .http
                .request(method.clone(), url)
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let answer = response.text().await.unwrap();
            assert!((400..500).contains(&status), "{what} to {method} {url}: {status} {answer}");
            if url.contains("/notify/") {
                assert_ne!(answer, "success", "{what}: Alipay must be told to deliver it again");
            }
            refused += 1;
        }
    }
    assert_eq!(refused, calls.len() * hostile_bodies().len() - 1);
    assert_eq!(everything(&client).await, before, "nothing written");
    let (status, body) = pos.pay_in(&trade_no("after"), &code("00"), "1.00", "HKD").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("SUCCESS")), "the gateway still serves");
}

/// A POS sending 3 MB, 48 times what the gateway takes: the whole body written (by a raw socket
/// that writes everything before it reads, with a `Content-Length` and chunked, and by reqwest),
/// then the answer read. The raw socket's send buffer is 64 KiB, as a POS's on a real network
/// holds far less than 3 MB in flight (on loopback the kernel would otherwise swallow it all). Each hears a 413 problem+json, not a reset: the gateway answers early,
/// then reads and discards the rest before it closes (with unread data, closing would reset the
/// connection and throw away the answer the client had not read yet).
#[tokio::test]
async fn a_body_over_the_limit_gets_a_413_the_client_can_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let body = vec![b' '; 3 * 1024 * 1024];
    let authorization = pos.authorization("POST", "/v1/payments", &body);
    for framing in ["content-length", "chunked"] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_send_buffer_size(64 * 1024).unwrap();
        let mut stream = socket.connect(stack.gateway.addr()).await.unwrap();
        let length = match framing {
            "chunked" => "transfer-encoding: chunked".to_owned(),
            _ => format!("content-length: {}", body.len()),
        };
        let head = format!(
            "POST /v1/payments HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n\
             authorization: {authorization}\r\n{length}\r\n\r\n"
        );
        let mut wire = head.into_bytes();
        match framing {
            "chunked" => {
                for chunk in body.chunks(64 * 1024) {
                    wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                    wire.extend_from_slice(chunk);
                    wire.extend_from_slice(b"\r\n");
                }
                wire.extend_from_slice(b"0\r\n\r\n");
            }
            _ => wire.extend_from_slice(&body),
        }
        let written = stream.write_all(&wire).await;
        assert!(written.is_ok(), "{framing}: the POS could not send its 3 MB: {written:?}");
        let mut answer = Vec::new();
        let read = stream.read_to_end(&mut answer).await;
        assert!(read.is_ok(), "{framing}: the POS could not read the answer: {read:?}");
        let answer = String::from_utf8_lossy(&answer).to_lowercase();
        assert!(answer.starts_with("http/1.1 413"), "{framing}: {answer}");
        assert!(answer.contains("content-type: application/problem+json"), "{framing}: {answer}");
        assert!(answer.contains("connection: close"), "{framing}: {answer}");
        assert!(answer.contains(r#""code":"payload_too_large""#), "{framing}: {answer}");
    }
    let sent = pos.try_send_raw("POST", "/v1/payments", body).await;
    let (status, answer) = sent.expect("reqwest hears the answer");
    assert_eq!(status, 413, "{answer}");
    let problem: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!((problem["code"].as_str(), problem["fault"].as_str()), (Some("payload_too_large"), Some("pos")));
}

/// Malformed `Authorization` headers, each made from a correctly signed one, sent through the
/// partner API with a valid payment body: every one is the same 401 (no hint which part was
/// wrong), nothing is written, and the request's nonce is not spent — the unchanged header, sent
/// last, is accepted.
#[tokio::test]
async fn malformed_authorization_headers_are_refused_through_the_api() {
    let stack = Stack::start(Options::default()).await;
    let pos = stack.openapi_tenant().await;
    let no = trade_no("auth");
    let body =
        serde_json::json!({"out_trade_no": no, "auth_code": code("00"), "amount": "1.00", "subject": "x"}).to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let nonce = format!("n{}", uuid::Uuid::new_v4().simple());
    let valid = tenants::signature::authorization(
        &pos.key_id,
        &pos.secret,
        "POST",
        "/v1/payments",
        now,
        &nonce,
        body.as_bytes(),
    );
    let (credential, timestamp, signature) = (
        format!("Credential={}", pos.key_id),
        format!("Timestamp={now}"),
        valid.rsplit_once(", ").unwrap().1.to_owned(),
    );
    let fields = |parts: &[&str]| format!("ACQ1-HMAC-SHA256 {}", parts.join(", "));
    let nonce_field = format!("Nonce={nonce}");
    let (c, t, n, s) = (credential.as_str(), timestamp.as_str(), nonce_field.as_str(), signature.as_str());
    let flipped = format!("{}{}", &s[..s.len() - 1], if s.ends_with('0') { '1' } else { '0' });
    let headers: Vec<(&str, Vec<Vec<u8>>)> = vec![
        ("no header", vec![]),
        ("empty", vec![Vec::new()]),
        ("scheme only", vec![b"ACQ1-HMAC-SHA256".to_vec()]),
        ("scheme lower case", vec![valid.replacen("ACQ1-HMAC-SHA256", "acq1-hmac-sha256", 1).into_bytes()]),
        ("another scheme", vec![valid.replacen("ACQ1-HMAC-SHA256", "Bearer", 1).into_bytes()]),
        ("no space after the scheme", vec![valid.replacen("ACQ1-HMAC-SHA256 ", "ACQ1-HMAC-SHA256", 1).into_bytes()]),
        ("semicolons", vec![valid.replace(", ", "; ").into_bytes()]),
        ("credential missing", vec![fields(&[t, n, s]).into_bytes()]),
        ("signature missing", vec![fields(&[c, t, n]).into_bytes()]),
        ("a field twice", vec![fields(&["Credential=ak_other", c, t, n, s]).into_bytes()]),
        ("an unknown field", vec![fields(&[c, t, n, s, "Region=cn"]).into_bytes()]),
        ("a field without a value", vec![fields(&[c, t, n, s, "Extra"]).into_bytes()]),
        ("timestamp signed", vec![fields(&[c, &format!("Timestamp=+{now}"), n, s]).into_bytes()]),
        ("timestamp negative", vec![fields(&[c, "Timestamp=-1", n, s]).into_bytes()]),
        ("timestamp 13 digits", vec![fields(&[c, &format!("Timestamp=0{now}00"), n, s]).into_bytes()]),
        ("nonce 7 characters", vec![fields(&[c, t, "Nonce=abcdefg", s]).into_bytes()]),
        ("nonce 65 characters", vec![fields(&[c, t, &format!("Nonce={}", "a".repeat(65)), s]).into_bytes()]),
        ("nonce with a slash", vec![fields(&[c, t, "Nonce=abcd/efgh", s]).into_bytes()]),
        ("signature short", vec![fields(&[c, t, n, &s[..s.len() - 2]]).into_bytes()]),
        ("signature long", vec![fields(&[c, t, n, &format!("{s}00")]).into_bytes()]),
        ("signature not hex", vec![fields(&[c, t, n, &format!("{}zz", &s[..s.len() - 2])]).into_bytes()]),
        ("signature one digit off", vec![fields(&[c, t, n, &flipped]).into_bytes()]),
        ("credential 65 characters", vec![fields(&[&format!("Credential={}", "k".repeat(65)), t, n, s]).into_bytes()]),
        ("bytes that are not UTF-8", vec![[valid.as_bytes(), b"\xff\xfe"].concat()]),
        ("8 KB", vec![fields(&[c, t, n, s, &"x".repeat(8_000)]).into_bytes()]),
        ("twice, both valid", vec![valid.clone().into_bytes(), valid.clone().into_bytes()]),
        ("a valid one after a bad one", vec![b"Bearer x".to_vec(), valid.clone().into_bytes()]),
    ];
    let url = format!("{}/v1/payments", stack.base());
    let mut answers = std::collections::BTreeSet::new();
    for (what, values) in &headers {
        let mut request = stack.http.post(&url).header("content-type", "application/json").body(body.clone());
        for value in values {
            request = request.header("authorization", reqwest::header::HeaderValue::from_bytes(value).unwrap());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(status, 401, "{what}: {text}");
        answers.insert(text);
    }
    assert_eq!(answers.len(), 1, "every refusal reads the same: {answers:?}");
    assert!(stack.ledger(&pos, &no).await.is_none(), "nothing was written");
    let accepted = stack.http.post(&url).header("authorization", &valid).body(body.clone()).send().await.unwrap();
    assert_eq!(accepted.status().as_u16(), 200, "the nonce was not spent by the refusals");
    eprintln!("malformed Authorization headers: {} refused with one 401, the valid one accepted after", headers.len());
}
