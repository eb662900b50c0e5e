//! The sandbox's requests/s for MD5 (MAPI spot.pay) and RSA2 (OpenAPI trade.pay) merchants.
//!
//! The release sandbox binary runs pinned to CPU 0 with one worker thread; this load generator
//! pins itself to CPU 1 and sends pre-signed payments (each a new trade) over keep-alive
//! connections. It reports the throughput reached and the sandbox's CPU time per request (from
//! /proc), whose inverse is what one core sustains. `cargo bench -p sandbox --bench throughput`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use alipay::charset::Charset;
use alipay::mapi::services::SpotPay;
use alipay::openapi::trade::TradePay;
use alipay::test_keys::{MD5_KEY, MERCHANT_PRIVATE, MERCHANT_PUBLIC_B64};
use alipay::{Amount, Currency, SignType, Signer};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use sandbox::{Dialect, Registration};

const CONNECTIONS: usize = 32;

fn main() {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pinned = cpus >= 2;
    if pinned {
        let _ = Command::new("taskset").args(["-p", "-c", "1", &std::process::id().to_string()]).output();
    }
    let exe = env!("CARGO_BIN_EXE_alipay-sandbox");
    let mut command = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "0", exe]);
        c
    } else {
        Command::new(exe)
    };
    let mut child = command
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("sandbox starts");
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
    let url = first_line.trim().rsplit(' ').next().unwrap().to_owned();
    let addr = url.trim_start_matches("http://").to_owned();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::new();
        let register = |body: Registration| {
            let http = http.clone();
            let url = format!("{url}/sandbox/merchants");
            async move { assert_eq!(http.post(url).json(&body).send().await.unwrap().status(), 201) }
        };
        register(Registration::md5("2088000000000001", MD5_KEY)).await;
        register(Registration::rsa(Dialect::Openapi, "2021000000000001", SignType::Rsa2, MERCHANT_PUBLIC_B64)).await;

        let md5 = Signer::from_secret(SignType::Md5, MD5_KEY).unwrap();
        let md5_bodies: Vec<Bytes> = (0..200_000).map(|i| mapi_pay(&md5, i)).collect();
        report("MD5 (MAPI spot.pay)", &addr, child.id(), md5_bodies, "<result_code>SUCCESS").await;

        let rsa2 = Signer::from_secret(SignType::Rsa2, MERCHANT_PRIVATE).unwrap();
        let rsa2_bodies: Vec<Bytes> = (0..12_000).map(|i| openapi_pay(&rsa2, i)).collect();
        report("RSA2 (OpenAPI trade.pay)", &addr, child.id(), rsa2_bodies, "\"code\":\"10000\"").await;
    });
    let _ = child.kill();
    let _ = child.wait();
}

fn mapi_pay(signer: &Signer, i: usize) -> Bytes {
    let partner = "2088000000000001".parse().unwrap();
    let pay = SpotPay {
        alipay_seller_id: "2088000000000001".parse().unwrap(),
        partner_trans_id: format!("bench-md5-{i}").parse().unwrap(),
        buyer_identity_code: "281234567890123400".parse().unwrap(),
        trans_name: "Burger set".parse().unwrap(),
        trans_amount: Amount::parse("58.00", Currency::HKD).unwrap(),
        trans_create_time: "20261125101530".into(),
        quantity: Some(1),
        memo: None,
        extend_info: None,
    };
    let meta = alipay::mapi::RequestMeta { partner: &partner, charset: Charset::Utf8, notify_url: None };
    Bytes::from(alipay::mapi::build_request(&pay, &meta, signer).unwrap().to_form(Charset::Utf8).unwrap())
}

fn openapi_pay(signer: &Signer, i: usize) -> Bytes {
    let app_id = "2021000000000001".parse().unwrap();
    let pay = TradePay::new(
        format!("bench-rsa2-{i}").parse().unwrap(),
        "281234567890123400".parse().unwrap(),
        "Combo meal #3".parse().unwrap(),
        Amount::parse("88.88", Currency::CNY).unwrap(),
    );
    let meta = alipay::openapi::RequestMeta {
        app_id: &app_id,
        charset: Charset::Utf8,
        timestamp: "2026-11-25 10:15:30",
        notify_url: None,
        app_auth_token: None,
    };
    Bytes::from(alipay::openapi::build_request(&pay, &meta, signer).unwrap().to_form(Charset::Utf8).unwrap())
}

/// User + system CPU seconds of process `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum());
    ticks / 100.0
}

async fn report(name: &str, addr: &str, pid: u32, bodies: Vec<Bytes>, success: &'static str) {
    let total = bodies.len();
    let per_connection = total.div_ceil(CONNECTIONS);
    let chunks: Vec<Vec<Bytes>> = bodies.chunks(per_connection).map(<[Bytes]>::to_vec).collect();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for chunk in chunks {
        let addr = addr.to_owned();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            let mut ok = 0usize;
            for body in chunk {
                let request = http::Request::post("/gateway.do")
                    .header("host", &addr)
                    .header("content-type", "application/x-www-form-urlencoded;charset=utf-8")
                    .body(Full::new(body))
                    .unwrap();
                let response = sender.send_request(request).await.unwrap();
                let bytes = response.into_body().collect().await.unwrap().to_bytes();
                ok += usize::from(memchr_contains(&bytes, success.as_bytes()));
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(pid) - cpu_before;
    let cpu_us = cpu * 1e6 / total as f64;
    println!(
        "{name}: {total} payments ({ok} paid) in {seconds:.2} s = {:.0} req/s; sandbox CPU {cpu_us:.1} µs/req = {:.0} req/s per core",
        total as f64 / seconds,
        1e6 / cpu_us
    );
    assert_eq!(ok, total, "every payment answered as paid");
}

fn memchr_contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
