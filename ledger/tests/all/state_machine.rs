//! The trade state machine, model against implementation: generated histories of intents,
//! settlements and stale writes run against the real store, and after every step the store
//! holds what design §4 says it must. The model below is written from the design's diagram, not
//! from `TradeState::can_become`.
//!
//! `PROPTEST_CASES=5000 cargo test -p ledger --test all state_machine` for a longer run.

use std::collections::HashMap;
use std::time::Duration;

use ledger::{Begin, CancelAction, Recorded, Settlement, Store, StoreError, Trade, TradeKey, TradeState};
use proptest::prelude::*;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::helpers::*;

/// Design §4: which settlement may follow which state.
fn design_allows(from: TradeState, to: TradeState) -> bool {
    use TradeState::*;
    match from {
        Paying => matches!(to, Success | Failed | Unknown | Waiting | Cancelled),
        Unknown => matches!(to, Success | Failed | Cancelled),
        Waiting => matches!(to, Success | Cancelled),
        // A paid trade changes only by refunds, or by a cancel that reverses it.
        Success | PartiallyRefunded => matches!(to, Cancelled),
        Failed | Cancelled | Refunded => false,
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Paid,
    Failed,
    Unknown,
    Waiting,
    Closed,
    Reversed,
}

impl Outcome {
    fn settlement(self) -> Settlement {
        let later = OffsetDateTime::now_utc() + Duration::from_secs(60);
        match self {
            Outcome::Paid => paid(),
            Outcome::Failed => Settlement::Failed { code: "ACQ.BUYER_BALANCE_NOT_ENOUGH".into(), message: None },
            Outcome::Unknown => Settlement::Unknown { reason: "timeout".into(), next_check_at: later, deadline: later },
            Outcome::Waiting => {
                Settlement::Waiting { qr_code: "https://qr.alipay.com/x".into(), next_check_at: later, deadline: later }
            }
            Outcome::Closed => Settlement::Cancelled { action: CancelAction::Close },
            Outcome::Reversed => Settlement::Cancelled { action: CancelAction::Refund },
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The intent again (a POS retry): the existing trade, unchanged.
    Begin(usize),
    /// A writer holding the latest version.
    Settle(usize, Outcome),
    /// A writer holding the trade as it was first read (a paused worker).
    StaleSettle(usize, Outcome),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Paid),
        Just(Outcome::Failed),
        Just(Outcome::Unknown),
        Just(Outcome::Waiting),
        Just(Outcome::Closed),
        Just(Outcome::Reversed),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..3usize).prop_map(Step::Begin),
        (0..3usize, outcome()).prop_map(|(k, o)| Step::Settle(k, o)),
        (0..3usize, outcome()).prop_map(|(k, o)| Step::StaleSettle(k, o)),
    ]
}

/// What the model expects of one trade.
struct Modelled {
    state: TradeState,
    version: i32,
    /// The trade as first read, for stale writers.
    first: Trade,
    latest: Trade,
}

async fn run_history(store: &Store, steps: &[Step]) -> Result<(), TestCaseError> {
    let tenant = Uuid::new_v4();
    let mut model: HashMap<usize, Modelled> = HashMap::new();
    for k in 0..3 {
        let Begin::Started(trade) = store.begin(&intent(tenant, &format!("K{k}"), "10.00")).await.unwrap() else {
            return Err(TestCaseError::fail("a fresh key did not start"));
        };
        prop_assert_eq!((trade.state, trade.version), (TradeState::Paying, 1));
        model.insert(k, Modelled { state: trade.state, version: 1, first: trade.clone(), latest: trade });
    }
    for step in steps {
        match *step {
            Step::Begin(k) => {
                let Begin::Existing(trade) = store.begin(&intent(tenant, &format!("K{k}"), "10.00")).await.unwrap()
                else {
                    return Err(TestCaseError::fail("a used key started again"));
                };
                prop_assert_eq!((trade.state, trade.version), (model[&k].state, model[&k].version));
            }
            Step::Settle(k, outcome) | Step::StaleSettle(k, outcome) => {
                let stale = matches!(step, Step::StaleSettle(..));
                let entry = model.get_mut(&k).unwrap();
                let held = if stale { entry.first.clone() } else { entry.latest.clone() };
                let settlement = outcome.settlement();
                let to = settlement.state();
                let result = store.record(&held, &settlement).await;
                if !design_allows(held.state, to) {
                    prop_assert!(matches!(result, Err(StoreError::Transition { .. })), "{step:?}: {result:?}");
                } else if held.version != entry.version {
                    let Ok(Recorded::Stale(current)) = result else {
                        return Err(TestCaseError::fail(format!("{step:?}: a stale write was applied: {result:?}")));
                    };
                    prop_assert_eq!((current.state, current.version), (entry.state, entry.version));
                } else {
                    let Ok(Recorded::Applied(updated)) = result else {
                        return Err(TestCaseError::fail(format!("{step:?}: an allowed write was refused: {result:?}")));
                    };
                    prop_assert_eq!((updated.state, updated.version), (to, entry.version + 1));
                    if to == TradeState::Cancelled && matches!(outcome, Outcome::Reversed) {
                        prop_assert_eq!(updated.refunded, updated.amount, "a reversal refunds everything");
                    }
                    prop_assert_eq!(updated.next_check_at.is_some(), !to.is_final(), "open trades are scheduled");
                    entry.state = to;
                    entry.version += 1;
                    entry.latest = updated;
                }
            }
        }
        // The store holds exactly what the model does, for every trade.
        for (k, expected) in &model {
            let stored = store.get(&TradeKey::new(tenant, format!("K{k}"))).await.unwrap().unwrap();
            prop_assert_eq!(
                (stored.state, stored.version),
                (expected.state, expected.version),
                "K{} after {:?}",
                k,
                step
            );
        }
    }
    Ok(())
}

#[test]
fn generated_histories_keep_to_the_design() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_db, store) = runtime.block_on(database());
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200);
    let config = ProptestConfig::with_cases(cases);
    proptest!(config, |(steps in proptest::collection::vec(step(), 1..24))| {
        runtime.block_on(run_history(&store, &steps))?;
    });
}
