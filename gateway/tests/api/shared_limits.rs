//! Limits that hold across replicas (issue 19): three gateway processes on one Postgres and one
//! Redis, a POS spreading its calls over all three. A tenant gets its budget once, not once per
//! gateway, and the tenants of one Alipay app share the app's limit.

use std::time::{Duration, Instant};

use stack::*;
use tenants::model::{Dialect, Limits};

fn gateway_binary() -> &'static str {
    env!("CARGO_BIN_EXE_gateway")
}

/// `callers` at once, each asking for a payment that does not exist (404: the cheapest call that
/// draws on the budgets) from the POS of each of `terminals` in turn, for `run`. Answers how many
/// calls were answered and how many refused with 429.
async fn hammer(terminals: &[Pos], callers: usize, run: Duration) -> (u64, u64) {
    let until = Instant::now() + run;
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let terminals = terminals.to_vec();
        tasks.spawn(async move {
            let (mut answered, mut refused) = (0, 0);
            let mut turn = caller;
            while Instant::now() < until {
                let pos = &terminals[turn % terminals.len()];
                turn += 1;
                let (status, body) = pos.send_raw("GET", "/v1/payments/no-such-trade", Vec::new()).await;
                match status {
                    404 => answered += 1,
                    429 => {
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    other => panic!("{other}: {body}"),
                }
            }
            (answered, refused)
        });
    }
    tasks.join_all().await.into_iter().fold((0, 0), |sum, one| (sum.0 + one.0, sum.1 + one.1))
}

/// `pos` as it would call each of `gateways`.
fn terminals(pos: &Pos, gateways: &[GatewayProcess]) -> Vec<Pos> {
    gateways.iter().map(|gateway| Pos { base: gateway.base.clone(), ..pos.clone() }).collect()
}

fn within_5_percent(got: u64, budget: f64) -> bool {
    (got as f64) >= budget * 0.95 && (got as f64) <= budget * 1.05
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_budget_and_its_apps_hold_across_three_gateways() {
    let stack = Stack::start(Options::default()).await;
    let limited = Limits { pay_rate: 1000, pay_burst: 1000, other_rate: 20 };
    let alone = stack.tenant(Dialect::Openapi, alipay::SignType::Rsa2, limited).await;
    let first = stack.tenant(Dialect::Openapi, alipay::SignType::Rsa2, generous()).await;
    let second = stack.tenant_sharing_account(&first, alipay::SignType::Rsa2).await;
    // The app's limit: 50/s in bursts of 10; the gateways' part 80% of it (40/s, 8).
    let mut config = stack.gateway_config();
    config.alipay_app_limits = vec![format!("{}=50/10", first.alipay_account())];
    let gateways: Vec<GatewayProcess> =
        (0..3).map(|_| GatewayProcess::spawn(stack.gateway_process(gateway_binary(), &config))).collect();
    let run = Duration::from_secs(3);

    let (answered, refused) = hammer(&terminals(&alone, &gateways), 6, run).await;
    let budget = 20.0 + 20.0 * run.as_secs_f64();
    println!(
        "one tenant (20/s, burst 20) over three gateways for 3 s: {answered} answered of a budget of {budget}, {refused} refused"
    );
    assert!(within_5_percent(answered, budget), "{answered} answered, the budget is {budget}");

    let mut both = terminals(&first, &gateways);
    both.extend(terminals(&second, &gateways));
    let (answered, refused) = hammer(&both, 6, run).await;
    let budget = 8.0 + 40.0 * run.as_secs_f64();
    println!(
        "two tenants on one app (its gateways' part 40/s, burst 8) over three gateways for 3 s: {answered} answered of {budget}, {refused} refused"
    );
    assert!(within_5_percent(answered, budget), "{answered} answered, the app's budget is {budget}");
}
