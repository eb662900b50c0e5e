//! The whole stack on a Postgres that speaks TLS only (`hostssl` lines alone in `pg_hba.conf`)
//! with `sslmode=require`: migrations, the gateway's pools, its tenant-snapshot and settlement
//! LISTEN connections, and a reconciler settling an UNKNOWN payment.

use std::time::Duration;

use stack::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_and_a_reconciler_run_on_a_postgres_that_takes_tls_only() {
    let pki = TestPki::new(&["localhost"]);
    let server = PrivatePostgres::start_tls_only(&pki.server_certificate, &pki.server_key);
    let plain = tenants::db::connect(&format!("{}?sslmode=disable", server.admin_url())).await;
    assert!(format!("{:?}", plain.err()).contains("no encryption"), "the server refuses plain connections");

    let options =
        Options { postgres_admin_url: format!("{}?sslmode=require", server.admin_url()), ..Options::scaled(0.1) };
    let stack = Stack::start(options).await;
    // Ready: the pool answers and the settlement listener is listening.
    ready_within(&format!("http://{}", stack.gateway.admin_addr()), Duration::from_secs(10)).await;
    // The tenant reaches the gateway through its snapshot's LISTEN connection.
    let pos = stack.mapi_tenant().await;
    let (status, paid) = pos.charge(&trade_no("tls"), &code("00"), "1.00").await;
    assert_eq!((status, paid["status"].as_str()), (200, Some("SUCCESS")), "{paid}");

    let reconciler = stack.start_reconciler(stack.reconciler_config()).await;
    let later = trade_no("tls");
    assert_eq!(pos.charge(&later, &code("60"), "2.00").await.1["status"], "UNKNOWN");
    let settled = final_trade(&stack, &pos, &later, Duration::from_secs(20)).await;
    assert_eq!(settled.state.as_str(), "SUCCESS");

    let admin = tenants::db::connect(&stack.options.postgres_admin_url).await.unwrap();
    let sessions = "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
                    JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1";
    let row = admin.query_one(sessions, &[&stack.db.name]).await.unwrap();
    let (all, tls): (i64, i64) = (row.get(0), row.get(1));
    println!("{all} sessions of the stack's database, {tls} of them on TLS");
    assert!(all >= 4 && tls == all, "{tls} of {all} sessions on TLS");
    reconciler.stop().await;
}
