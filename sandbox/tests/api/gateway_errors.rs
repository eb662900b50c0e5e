//! Requests Alipay's gateway refuses get Alipay's error for them; hostile input never gets a 500.

use alipay::charset::Charset;
use alipay::mapi::services::OverseasQuery;
use alipay::openapi::trade::{TradePay, TradeQuery};
use alipay::openapi::{self, Status};
use alipay::{Amount, Currency, OutTradeNo, Outcome, PrivateKey, SignType, Signer};
use serde_json::{Value, json};

use crate::helpers::*;

fn query(no: &str) -> TradeQuery {
    TradeQuery { trade: no.parse::<OutTradeNo>().unwrap().into() }
}

/// The status member of an OpenAPI answer body, whatever its key.
fn status_of(body: &[u8]) -> (String, Status) {
    let value: Value = serde_json::from_slice(body).unwrap();
    let (key, member) = value.as_object().unwrap().iter().find(|(k, _)| k.ends_with("_response")).unwrap();
    (key.clone(), serde_json::from_value(member.clone()).unwrap())
}

#[tokio::test]
async fn openapi_gateway_errors() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;

    let stranger = Merchant { id: "2021999999999999".into(), ..Merchant::openapi(&sandbox, SignType::Rsa2).await };
    let (_, reply) = stranger.call(&query("x1")).await;
    assert!(matches!(&reply.outcome, Outcome::Failed(f) if f.is("isv.invalid-app-id")), "{:?}", reply.outcome);

    let impostor = Merchant {
        signer: Signer::rsa2(std::sync::Arc::new(PrivateKey::generate().unwrap())).unwrap(),
        ..Merchant::openapi(&sandbox, SignType::Rsa2).await
    };
    let (_, reply) = impostor.call(&query("x1")).await;
    assert!(matches!(&reply.outcome, Outcome::Failed(f) if f.is("isv.invalid-signature")), "signed refusal");

    let (status, body) = merchant.post("app_id=1&charset=utf-8".into()).await;
    assert_eq!(status, 200);
    assert_eq!(status_of(&body).0, "error_response");
    assert_eq!(status_of(&body).1.sub_code.as_deref(), Some("isv.missing-method"));

    let mut form = merchant.openapi_form(&query("x1"));
    form = form.replace("method=alipay.trade.query", "method=alipay.trade.nothing");
    let (_, body) = merchant.post(form).await;
    // Changing the method breaks the signature first, as on Alipay.
    assert_eq!(status_of(&body).1.sub_code.as_deref(), Some("isv.invalid-signature"));

    let (_, body) = merchant.post("method=alipay.trade.query&charset=latin1&app_id=1".into()).await;
    assert_eq!(status_of(&body).1.sub_code.as_deref(), Some("isv.invalid-charset"));

    for (amount, expected) in
        [("1.001", "ACQ.INVALID_PARAMETER"), ("0", "ACQ.TOTAL_FEE_EXCEED"), ("100000000.01", "ACQ.TOTAL_FEE_EXCEED")]
    {
        let mut params = openapi::build_request(&query("x"), &meta(&merchant), &merchant.signer).unwrap();
        params.set("method", "alipay.trade.pay");
        let biz = json!({"out_trade_no": "a1", "auth_code": code("00"), "subject": "s", "total_amount": amount});
        params.set("biz_content", biz.to_string());
        resign(&mut params, &merchant.signer);
        let (_, body) = merchant.post(params.to_form(Charset::Utf8).unwrap()).await;
        assert_eq!(status_of(&body).1.sub_code.as_deref(), Some(expected), "{amount}");
    }
}

fn meta(merchant: &Merchant) -> openapi::RequestMeta<'static> {
    let app_id: &'static alipay::AppId = Box::leak(Box::new(merchant.id.parse().unwrap()));
    openapi::RequestMeta {
        app_id,
        charset: Charset::Utf8,
        timestamp: "2026-11-25 10:15:30",
        notify_url: None,
        app_auth_token: None,
    }
}

fn resign(params: &mut alipay::Params, signer: &Signer) {
    let text = params.canonical(alipay::params::Unsigned::Sign);
    params.set("sign", signer.sign(text.as_bytes()).unwrap());
}

#[tokio::test]
async fn parameters_split_between_query_and_body_get_and_gbk_all_work() {
    let sandbox = start(TIME_SCALE).await;
    let mut merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    merchant.charset = Charset::Gbk;
    let no = trade_no("gbk");
    let pay = TradePay::new(
        no.parse().unwrap(),
        code("00").parse().unwrap(),
        "牛肉面 & 茶".parse().unwrap(),
        Amount::parse("12.50", Currency::CNY).unwrap(),
    );
    let (_, reply) = merchant.call(&pay).await;
    assert_eq!(reply.outcome, Outcome::Success, "a GBK request, signed over GBK bytes, answered in GBK");
    assert_eq!(merchant.truth(&no).await["subject"], "牛肉面 & 茶");

    // Java-SDK style: protocol parameters in the query string, biz_content in the body.
    merchant.charset = Charset::Utf8;
    let params = openapi::build_request(&query(&no), &meta(&merchant), &merchant.signer).unwrap();
    let (in_query, in_body): (Vec<_>, Vec<_>) = params.iter().partition(|(k, _)| *k != "biz_content");
    let mut url_part = String::new();
    alipay::charset::encode_form(in_query, Charset::Utf8, &mut url_part).unwrap();
    let mut body_part = String::new();
    alipay::charset::encode_form(in_body, Charset::Utf8, &mut body_part).unwrap();
    let response = merchant
        .http
        .post(format!("{}?{url_part}", merchant.gateway))
        .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
        .body(body_part)
        .send()
        .await
        .unwrap();
    let body = response.bytes().await.unwrap();
    assert_eq!(openapi::read_reply::<TradeQuery>(&body, Charset::Utf8, &merchant.verifier).outcome, Outcome::Success);

    // FZ style: everything in the query string of a GET.
    let form = params.to_form(Charset::Utf8).unwrap();
    let body = merchant.http.get(format!("{}?{form}", merchant.gateway)).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(openapi::read_reply::<TradeQuery>(&body, Charset::Utf8, &merchant.verifier).outcome, Outcome::Success);
}

#[tokio::test]
async fn mapi_gateway_errors() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::mapi(&sandbox, SignType::Md5).await;
    let refusal = |body: &[u8]| alipay::mapi::xml::read(&String::from_utf8_lossy(body)).unwrap();

    let stranger = Merchant { id: "2088999999999999".into(), ..Merchant::mapi(&sandbox, SignType::Md5).await };
    let (_, reply) = stranger.service(&OverseasQuery { partner_trans_id: "x1".parse().unwrap() }).await;
    assert!(matches!(&reply.outcome, Outcome::Failed(f) if f.is("ILLEGAL_PARTNER")));

    let impostor = Merchant {
        signer: Signer::from_secret(SignType::Md5, "wrongkey").unwrap(),
        ..Merchant::mapi(&sandbox, SignType::Md5).await
    };
    let (_, reply) = impostor.service(&OverseasQuery { partner_trans_id: "x1".parse().unwrap() }).await;
    assert!(matches!(&reply.outcome, Outcome::Failed(f) if f.is("ILLEGAL_SIGN")));

    let (_, body) =
        merchant.post(format!("service=alipay.acquire.nothing&partner={}&sign_type=MD5&sign=x", merchant.id)).await;
    assert_eq!(refusal(&body).error.as_deref(), Some("ILLEGAL_SIGN"));
    let (_, body) = merchant.post("service=x&_input_charset=latin1".into()).await;
    assert_eq!(refusal(&body).error.as_deref(), Some("ILLEGAL_CHARSET"));

    let partner: alipay::Partner = merchant.id.parse().unwrap();
    let mut params = alipay::Params::new();
    params.set("service", "alipay.acquire.overseas.spot.pay");
    params.set("partner", partner.as_str());
    params.set("_input_charset", "UTF-8");
    let text = alipay::mapi::signed_text(params.iter());
    params.set("sign", merchant.signer.sign(text.as_bytes()).unwrap());
    params.set("sign_type", "MD5");
    let (_, body) = merchant.post(params.to_form(Charset::Utf8).unwrap()).await;
    assert_eq!(refusal(&body).error.as_deref(), Some("ILLEGAL_ARGUMENT"), "missing required arguments");
}

#[tokio::test]
async fn hostile_input_gets_a_4xx_or_an_alipay_error_never_a_5xx() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let http = reqwest::Client::new();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"%%%%".to_vec(),
        b"method=%ZZ&charset=utf-8".to_vec(),
        b"=&&=&=x&method".to_vec(),
        vec![0xff, 0xfe, 0x00, b'&', b'='],
        format!("method=alipay.trade.pay&app_id={}&biz_content={deep}", merchant.id).into_bytes(),
        (0..200).map(|i| format!("k{i}=v&")).collect::<String>().into_bytes(),
        format!("method=alipay.trade.pay&x={}", "a".repeat(40_000)).into_bytes(),
        b"service=alipay.acquire.overseas.spot.pay&_input_charset=GBK&partner=%81".to_vec(),
        "method=alipay.trade.pay&subject=\u{0}\u{1}<script>".as_bytes().to_vec(),
    ];
    for body in bodies {
        let response = http.post(&merchant.gateway).body(body.clone()).send().await.unwrap();
        assert!(response.status().as_u16() < 500, "{:?} → {}", String::from_utf8_lossy(&body), response.status());
    }
    let huge = vec![b'a'; 2 * 1024 * 1024];
    assert_eq!(http.post(&merchant.gateway).body(huge).send().await.unwrap().status(), 413);
    let json_body = http.post(&merchant.gateway).header("content-type", "application/json").body("{}").send().await;
    assert_eq!(json_body.unwrap().status(), 200, "answered as Alipay: an error member");
    assert_eq!(http.put(&merchant.gateway).send().await.unwrap().status(), 405);
    let (status, _) = merchant.hook("merchants", json!({"dialect": "openapi"})).await;
    assert_eq!(status, 400);
    let bad_key =
        json!({"dialect": "openapi", "app_id": "2021000000000777", "sign_type": "RSA2", "public_key": "AAAA"});
    assert_eq!(merchant.hook("merchants", bad_key).await.0, 400);
    let md5_openapi = json!({"dialect": "openapi", "app_id": "2021000000000778", "sign_type": "MD5", "md5_key": "k"});
    assert_eq!(merchant.hook("merchants", md5_openapi).await.0, 400);
    assert_eq!(merchant.hook("nothing", json!({})).await.0, 404);
    // Still serving.
    assert_eq!(merchant.call(&query("after")).await.0, 200);
}

#[tokio::test]
async fn injected_faults_fail_before_or_after_processing() {
    let sandbox = start(TIME_SCALE).await;
    let merchant = Merchant::openapi(&sandbox, SignType::Rsa2).await;
    let pay = |no: &str| {
        TradePay::new(
            no.parse().unwrap(),
            code("00").parse().unwrap(),
            "x".parse().unwrap(),
            Amount::parse("1.00", Currency::CNY).unwrap(),
        )
    };
    assert_eq!(merchant.hook("faults", json!({"error_rate": 1.0})).await.0, 200);
    let before = trade_no("f");
    assert_eq!(merchant.call(&pay(&before)).await.0, 502);
    assert!(!merchant.has_trade(&before).await, "nothing processed");
    merchant.hook("faults", json!({"error_rate": 1.0, "mode": "after"})).await;
    let after = trade_no("f");
    assert_eq!(merchant.call(&pay(&after)).await.0, 502);
    assert_eq!(merchant.truth(&after).await["trade_status"], "TRADE_SUCCESS", "processed, answer lost");
    assert_eq!(merchant.hook("faults", json!({"error_rate": 2.0})).await.0, 400);
    let cleared = reqwest::Client::new().delete(format!("{}/faults", merchant.hooks)).send().await.unwrap();
    assert_eq!(cleared.status(), 200);
    assert_eq!(merchant.call(&pay(&trade_no("f"))).await.1.outcome, Outcome::Success);
}
