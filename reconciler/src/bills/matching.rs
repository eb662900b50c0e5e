//! Matching a bill day against the ledger, in the reconciler's memory and a partition at a time,
//! so that memory does not grow with the day and Postgres only reads the ledger's day (it once
//! loaded every bill row and joined in SQL: some 15 µs of its CPU per row).
//!
//! Both sides are spilled at once into [`spill::PARTITIONS`] files each, by the merchant's trade
//! number: the bill's rows as they are read (a trade bill on the spilling thread itself, each row
//! seen in place; Global's files sent by their reader), the ledger's trades and refunds of the day
//! (and the day before) as COPY brings them, over a connection of its own. Then each partition's
//! ledger side is held in hash maps and its bill rows checked against it: a payment against its
//! trade, a refund against the refund Alipay knows by the same number (or, named by the trade's own
//! number, against the trade's reversal). A row the window does not hold is looked up by its trade
//! number afterwards (an old trade's refund, a QR order paid late, a payment only Alipay knows).
//! What the ledger holds as done on the day and no row of the bill named is a disagreement too. A
//! row the bill holds twice refuses the file; nothing of a refused or cut file is recorded (this
//! module writes nothing: its caller records the outcome).

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use ledger::Store;
use ledger::store::{
    BillFeed, BillTotal, BilledKind, BilledRow, Disagreement, EntryView, LedgerBatch, MAX_DISAGREEMENTS, PaymentView,
    StoreError, read_ledger_day,
};
use time::Date;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The partitions' maps: keyed by Alipay's (signed, downloaded) file's numbers, hashed with a
/// per-process seed; std's SipHash was a twentieth of the matching's CPU.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use super::read;
use super::spill::{self, BillView, WorkDir};

const BILL: &str = "bill";
const LEDGER: &str = "ledger";

/// The most disagreements one day reports (a bill of another account would make every row one).
const MAX_FOUND: usize = MAX_DISAGREEMENTS as usize;

/// Why a day could not be matched; nothing of it was recorded.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    #[error("the bill was refused: {0}")]
    Refused(String),
    #[error("the bill's reader stopped before its end")]
    Cut,
    #[error("the bill was refused: it holds {0} twice")]
    Repeated(String),
    #[error("matching's spill files: {0}")]
    Disk(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What matching a day found.
#[derive(Debug, Default)]
pub struct Matched {
    pub payments: i64,
    pub refunds: i64,
    /// The disagreements, at most [`MAX_DISAGREEMENTS`].
    pub disagreements: Vec<Disagreement>,
    /// Disagreements found beyond those (counted, not classified).
    pub more: u64,
    /// What the bill settles per tenant, store and currency.
    pub totals: Vec<BillTotal>,
    /// The spill files' size, both sides.
    pub spilled_bytes: u64,
}

impl Matched {
    pub fn rows(&self) -> u64 {
        (self.payments + self.refunds).unsigned_abs()
    }

    fn found(&mut self, disagreement: Disagreement) {
        if self.disagreements.len() < MAX_FOUND {
            self.disagreements.push(disagreement);
        } else {
            self.more += 1;
        }
    }
}

/// Where the ledger's side is read.
pub struct Ledger<'a> {
    /// For the few rows outside the day's window.
    pub store: &'a Store,
    /// Where the day itself is read, over a connection of its own (see [`read_ledger_day`]).
    pub day_reader: pgtls::Target,
}

/// Where a day's bill rows come from.
#[derive(Debug)]
pub enum BillSource {
    /// A kept trade bill, read on the thread that spills it.
    TradeBill { path: PathBuf, day: Date },
    /// Rows a reader sends (Global's files).
    Feed(mpsc::Receiver<BillFeed>),
    /// No bill (Alipay has none for the day): what the ledger holds as done is missing from it.
    Empty,
}

/// Matches the bill `bill` gives against `account`'s ledger of `day` (its trades being those of
/// `tenants`; a row no trade holds is `sole_tenant`'s in the totals, when there is one), spilling
/// into `work`.
pub async fn match_day(
    Ledger { store, day_reader }: Ledger<'_>,
    account: &str,
    tenants: &[Uuid],
    sole_tenant: Option<Uuid>,
    day: Date,
    bill: BillSource,
    work: WorkDir,
) -> Result<Matched, MatchError> {
    let work = Arc::new(work);
    let bill_side = {
        let work = work.clone();
        tokio::task::spawn_blocking(move || spill_bill(&work, bill))
    };
    let ledger_side = {
        let (work, account, tenants) = (work.clone(), account.to_owned(), tenants.to_vec());
        tokio::task::spawn_blocking(move || spill_ledger(&work, &day_reader, &account, &tenants, day))
    };
    let (spilled, counts) = (ledger_side.await.map_err(stopped)?, bill_side.await.map_err(stopped)?);
    let (payments, refunds) = counts?;
    spilled?;
    let spilled_bytes =
        std::fs::read_dir(work.path())?.flatten().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();

    let (mut matched, mut totals, unresolved) =
        tokio::task::spawn_blocking(move || join(&work, sole_tenant)).await.map_err(stopped)??;
    (matched.payments, matched.refunds, matched.spilled_bytes) = (payments, refunds, spilled_bytes);
    if !unresolved.is_empty() {
        let mut numbers: Vec<String> = unresolved.iter().map(|row| row.out_trade_no.clone()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        let batches = store.ledger_entries_of(account, day, &numbers).await?;
        let mut ledger = Partition::new(sole_tenant);
        for entry in batches.iter().flat_map(LedgerBatch::entries) {
            ledger.add(entry?);
        }
        let mut seen = HashSet::new();
        for row in &unresolved {
            if !seen.insert((row.kind, row.out_trade_no.as_str(), row.out_request_no.as_str())) {
                return Err(repeated(BillView::of(row)));
            }
            if let Verdict::Differs(disagreement) = ledger.check(BillView::of(row), true)? {
                matched.found(disagreement);
            }
        }
        ledger.totals.merge_into(&mut totals);
    }
    matched.totals = totals.into_rows();
    Ok(matched)
}

fn stopped(error: tokio::task::JoinError) -> MatchError {
    MatchError::Disk(io::Error::other(format!("a matching thread stopped: {error}")))
}

/// Spills the bill's rows; answers its payments and refunds once the whole file is read.
fn spill_bill(work: &WorkDir, bill: BillSource) -> Result<(i64, i64), MatchError> {
    let mut writer = spill::Writer::create(work, BILL)?;
    let (mut payments, mut refunds) = (0i64, 0i64);
    let mut write = |row: BillView<'_>| {
        match row.kind {
            BilledKind::Payment => payments += 1,
            BilledKind::Refund => refunds += 1,
        }
        writer.write(&row)
    };
    match bill {
        BillSource::TradeBill { path, day } => read::trade_bill(&path, day, write)?,
        BillSource::Feed(mut feed) => loop {
            match feed.blocking_recv() {
                Some(BillFeed::Rows(rows)) => rows.iter().try_for_each(|row| write(BillView::of(row)))?,
                Some(BillFeed::End) => break,
                Some(BillFeed::Failed(why)) => return Err(MatchError::Refused(why)),
                None => return Err(MatchError::Cut),
            }
        },
        BillSource::Empty => {}
    }
    writer.finish()?;
    Ok((payments, refunds))
}

/// Spills the ledger's day as its entries come, read over a connection of its own driven by this
/// thread (see [`read_ledger_day`]).
fn spill_ledger(
    work: &WorkDir,
    ledger: &pgtls::Target,
    account: &str,
    tenants: &[Uuid],
    day: Date,
) -> Result<(), MatchError> {
    let mut writer = spill::Writer::create(work, LEDGER)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(read_ledger_day(ledger, account, tenants, day, |entry| {
        writer.write(&entry).map_err(MatchError::from)
    }))?;
    Ok(writer.finish()?)
}

/// Each partition's bill rows checked against its ledger side; answers what was found, the
/// totals, and the rows the window does not hold (at most [`MAX_FOUND`]; beyond, counted).
fn join(work: &WorkDir, sole_tenant: Option<Uuid>) -> Result<(Matched, Totals, Vec<BilledRow>), MatchError> {
    let mut matched = Matched::default();
    let mut totals = Totals::default();
    let mut unresolved = Vec::new();
    let (mut ledger_bytes, mut bill_bytes) = (Vec::new(), Vec::new());
    // Each partition's maps sized as the one before was filled (partitions are alike in size):
    // growing them row by row rehashed each several times.
    let mut sizes = (0, 0);
    for partition in 0..spill::PARTITIONS {
        spill::load(work, LEDGER, partition, &mut ledger_bytes)?;
        spill::load(work, BILL, partition, &mut bill_bytes)?;
        let mut ledger = Partition::with_capacity(sole_tenant, sizes);
        for entry in spill::records(&ledger_bytes, spill::decode_entry) {
            ledger.add(entry?);
        }
        for row in spill::records(&bill_bytes, BillView::decode) {
            match ledger.check(row?, false)? {
                Verdict::Agrees => {}
                Verdict::Differs(disagreement) => matched.found(disagreement),
                Verdict::NotHeld(_) if unresolved.len() == MAX_FOUND => matched.more += 1,
                Verdict::NotHeld(row) => unresolved.push(row),
            }
        }
        for disagreement in ledger.not_billed() {
            matched.found(disagreement);
        }
        sizes = (ledger.trades.len(), ledger.refunds.len());
        ledger.totals.merge_into(&mut totals);
    }
    Ok((matched, totals, unresolved))
}

fn repeated(row: BillView<'_>) -> MatchError {
    MatchError::Repeated(match row.kind {
        BilledKind::Payment => format!("the payment of {}", row.out_trade_no),
        BilledKind::Refund => format!("the refund {} of {}", row.out_request_no, row.out_trade_no),
    })
}

/// What one bill row is, checked against the ledger.
enum Verdict {
    Agrees,
    Differs(Disagreement),
    /// Neither agrees nor differs with what this side holds (looked up afterwards).
    NotHeld(BilledRow),
}

struct TradeSlot<'a> {
    payment: PaymentView<'a>,
    paid: bool,
    paid_on_day: bool,
    reversed: Option<(i64, bool)>,
    billed: bool,
    reversal_billed: bool,
}

struct RefundSlot<'a> {
    trade: PaymentView<'a>,
    wire_request_no: &'a str,
    done: bool,
    amount_minor: i64,
    done_on_day: bool,
    billed: bool,
}

/// One partition's ledger side, by the merchant's trade number, seen where it lies, and what its
/// bill rows settle.
struct Partition<'a> {
    trades: HashMap<&'a str, TradeSlot<'a>>,
    refunds: HashMap<&'a str, Vec<RefundSlot<'a>>>,
    totals: PartitionTotals<'a>,
}

impl<'a> Partition<'a> {
    fn new(sole_tenant: Option<Uuid>) -> Self {
        Partition::with_capacity(sole_tenant, (0, 0))
    }

    /// Room for `trades` trades and the refunds of `refunded` trades.
    fn with_capacity(sole_tenant: Option<Uuid>, (trades, refunded): (usize, usize)) -> Self {
        Partition {
            trades: HashMap::with_capacity_and_hasher(trades, Default::default()),
            refunds: HashMap::with_capacity_and_hasher(refunded, Default::default()),
            totals: PartitionTotals { sole_tenant, by: HashMap::default() },
        }
    }

    fn add(&mut self, entry: EntryView<'a>) {
        match entry {
            EntryView::Trade { payment, paid, paid_on_day, reversed } => {
                let slot = TradeSlot { payment, paid, paid_on_day, reversed, billed: false, reversal_billed: false };
                self.trades.insert(payment.out_trade_no, slot);
            }
            EntryView::Refund { trade, wire_request_no, state, amount_minor, done_on_day } => {
                let done = state == "SUCCESS";
                let slot = RefundSlot { trade, wire_request_no, done, amount_minor, done_on_day, billed: false };
                self.refunds.entry(trade.out_trade_no).or_default().push(slot);
            }
        }
    }

    /// Checks `row`; a row this side does not hold is [`Verdict::NotHeld`], or a disagreement
    /// when this side is all there is (`last`).
    fn check(&mut self, row: BillView<'a>, last: bool) -> Result<Verdict, MatchError> {
        let Partition { trades, refunds, totals } = self;
        let trade = trades.get_mut(row.out_trade_no);
        if row.kind == BilledKind::Payment {
            let Some(slot) = trade else {
                totals.add_unowned(&row, last);
                return Ok(match last {
                    true => Verdict::Differs(Disagreement::PaymentNotInLedger { row: row.to_row() }),
                    false => Verdict::NotHeld(row.to_row()),
                });
            };
            if std::mem::replace(&mut slot.billed, true) {
                return Err(repeated(row));
            }
            let ledger = slot.payment;
            totals.add(ledger.tenant_id, ledger.store_id, &row);
            let agrees = slot.paid
                && ledger.amount_minor == row.amount_minor
                && ledger.currency == row.currency
                && ledger.trade_no.is_none_or(|no| no == row.trade_no);
            return Ok(match agrees {
                true => Verdict::Agrees,
                false => {
                    Verdict::Differs(Disagreement::PaymentDiffers { ledger: ledger.to_payment(), row: row.to_row() })
                }
            });
        }
        let refund = refunds
            .get_mut(row.out_trade_no)
            .and_then(|slots| slots.iter_mut().find(|slot| slot.wire_request_no == row.out_request_no));
        if let Some(slot) = refund {
            if std::mem::replace(&mut slot.billed, true) {
                return Err(repeated(row));
            }
            totals.add(slot.trade.tenant_id, slot.trade.store_id, &row);
            if slot.done && slot.amount_minor == row.amount_minor {
                return Ok(Verdict::Agrees);
            }
            let (tenant_id, ledger_minor) = (Some(slot.trade.tenant_id), slot.done.then_some(slot.amount_minor));
            return Ok(Verdict::Differs(Disagreement::RefundDiffers { row: row.to_row(), tenant_id, ledger_minor }));
        }
        match trade {
            // A reversal's refund is billed under the trade's own number.
            Some(slot) if row.out_request_no == row.out_trade_no && slot.reversed.is_some() => {
                if std::mem::replace(&mut slot.reversal_billed, true) {
                    return Err(repeated(row));
                }
                totals.add(slot.payment.tenant_id, slot.payment.store_id, &row);
                let reversed = slot.reversed.map(|(minor, _)| minor);
                Ok(match reversed == Some(row.amount_minor) {
                    true => Verdict::Agrees,
                    false => Verdict::Differs(Disagreement::RefundDiffers {
                        tenant_id: Some(slot.payment.tenant_id),
                        ledger_minor: reversed,
                        row: row.to_row(),
                    }),
                })
            }
            Some(slot) if last => {
                totals.add(slot.payment.tenant_id, slot.payment.store_id, &row);
                let (tenant_id, ledger_minor) = (Some(slot.payment.tenant_id), slot.reversed.map(|(minor, _)| minor));
                Ok(Verdict::Differs(Disagreement::RefundDiffers { row: row.to_row(), tenant_id, ledger_minor }))
            }
            None if last => {
                totals.add_unowned(&row, last);
                Ok(Verdict::Differs(Disagreement::RefundDiffers {
                    row: row.to_row(),
                    tenant_id: None,
                    ledger_minor: None,
                }))
            }
            _ => Ok(Verdict::NotHeld(row.to_row())),
        }
    }

    /// What the ledger holds as done on the day that no row of the bill named.
    fn not_billed(&self) -> impl Iterator<Item = Disagreement> + '_ {
        let trades = self.trades.values().flat_map(|slot| {
            let reversal = match slot.reversed {
                Some((minor, true)) if minor > 0 && !slot.reversal_billed => Some(Disagreement::RefundNotInBill {
                    out_request_no: slot.payment.out_trade_no.to_owned(),
                    amount_minor: minor,
                    ledger: slot.payment.to_payment(),
                }),
                _ => None,
            };
            let payment = (slot.paid_on_day && !slot.billed)
                .then(|| Disagreement::PaymentNotInBill { ledger: slot.payment.to_payment() });
            payment.into_iter().chain(reversal)
        });
        let refunds = self.refunds.values().flatten().filter(|slot| slot.done_on_day && !slot.billed).map(|slot| {
            Disagreement::RefundNotInBill {
                ledger: slot.trade.to_payment(),
                out_request_no: slot.wire_request_no.to_owned(),
                amount_minor: slot.amount_minor,
            }
        });
        trades.chain(refunds)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    payments: i64,
    refunds: i64,
    fees_minor: i64,
    net_minor: i64,
}

/// What one partition's rows settle, by tenant, store and currency (borrowed keys: nothing is
/// allocated per row).
struct PartitionTotals<'a> {
    /// Whose a row no trade holds is (an account's only tenant).
    sole_tenant: Option<Uuid>,
    by: HashMap<(Uuid, Option<&'a str>, &'a str), Sums>,
}

impl<'a> PartitionTotals<'a> {
    fn add(&mut self, tenant_id: Uuid, store_id: Option<&'a str>, row: &BillView<'a>) {
        let sums = self.by.entry((tenant_id, store_id, row.currency)).or_default();
        let signed = match row.kind {
            BilledKind::Payment => {
                sums.payments += 1;
                row.amount_minor
            }
            BilledKind::Refund => {
                sums.refunds += 1;
                -row.amount_minor
            }
        };
        sums.fees_minor += row.fee_minor;
        sums.net_minor += signed + row.fee_minor;
    }

    /// A row no trade holds, once that is final (`last`): the sole tenant's, without a store.
    fn add_unowned(&mut self, row: &BillView<'a>, last: bool) {
        if let (Some(tenant), true) = (self.sole_tenant, last) {
            self.add(tenant, None, row);
        }
    }

    fn merge_into(self, totals: &mut Totals) {
        for ((tenant_id, store_id, currency), sums) in self.by {
            let key = (tenant_id, store_id.map(str::to_owned), currency.to_owned());
            let total = totals.by.entry(key).or_default();
            total.payments += sums.payments;
            total.refunds += sums.refunds;
            total.fees_minor += sums.fees_minor;
            total.net_minor += sums.net_minor;
        }
    }
}

/// What the bill settles, by tenant, store and currency.
#[derive(Default)]
struct Totals {
    by: HashMap<(Uuid, Option<String>, String), Sums>,
}

impl Totals {
    fn into_rows(self) -> Vec<BillTotal> {
        let mut rows: Vec<BillTotal> = self
            .by
            .into_iter()
            .map(|((tenant_id, store_id, currency), sums)| BillTotal {
                tenant_id,
                store_id,
                currency,
                payments: sums.payments,
                refunds: sums.refunds,
                fees_minor: sums.fees_minor,
                net_minor: sums.net_minor,
            })
            .collect();
        rows.sort_by(|a, b| (a.tenant_id, &a.store_id, &a.currency).cmp(&(b.tenant_id, &b.store_id, &b.currency)));
        rows
    }
}
