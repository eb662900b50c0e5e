//! Any rows the writer takes come back from the reader exactly.

use std::io::Cursor;

use alipay::time_text::BEIJING;
use alipay::{Amount, Currency, MerchantRef};
use bills::global::{TransactionReader, TransactionRow, TransactionType, write_transaction_file};
use bills::trade::{BillRow, RowKind};
use bills::{Limits, SignedAmount, TradeBill, write_trade_bill};
use proptest::prelude::*;
use time::OffsetDateTime;

use crate::helpers::{exported_at, header};

/// Free text as merchants and Alipay write it: ASCII, Chinese, full-width punctuation, commas,
/// quotes, spaces anywhere.
const TEXT: &str = "[a-zA-Z0-9 ,\"'#*@().面条饺子点心店备注：，（）-]{0,24}";

fn amount() -> impl Strategy<Value = Amount> {
    (0u64..=10_000_000_000)
        .prop_map(|minor| Amount::from_minor(minor, Currency::CNY).unwrap_or(Amount::zero(Currency::CNY)))
}

fn signed() -> impl Strategy<Value = SignedAmount> {
    (amount(), any::<bool>()).prop_map(|(a, negative)| SignedAmount::new(a, negative))
}

fn when() -> impl Strategy<Value = OffsetDateTime> {
    (946_684_800i64..4_102_444_800).prop_map(|s| OffsetDateTime::from_unix_timestamp(s).unwrap().to_offset(BEIJING))
}

fn merchant_ref() -> impl Strategy<Value = Option<MerchantRef>> {
    proptest::option::of("[A-Za-z0-9_-]{1,32}".prop_map(|s| s.parse().unwrap()))
}

prop_compose! {
    fn row()(
        trade_no in "[A-Za-z0-9]{1,64}",
        out_trade_no in "[A-Za-z0-9_-]{1,64}",
        refund in proptest::option::of("[A-Za-z0-9_-]{1,64}"),
        texts in [TEXT, TEXT, TEXT, TEXT, TEXT],
        times in (when(), when()),
        refs in (merchant_ref(), merchant_ref(), merchant_ref()),
        amounts in (amount(), amount()),
        signed in proptest::array::uniform9(signed()),
    ) -> BillRow {
        let [subject, store_name, counterparty, voucher_name, remark] = texts;
        BillRow {
            trade_no: trade_no.parse().unwrap(),
            out_trade_no: out_trade_no.parse().unwrap(),
            kind: match refund {
                None => RowKind::Payment,
                Some(no) => RowKind::Refund { out_request_no: no.parse().unwrap() },
            },
            subject,
            created_at: times.0,
            finished_at: times.1,
            store_id: refs.0,
            store_name,
            operator_id: refs.1,
            terminal_id: refs.2,
            counterparty,
            amount: amounts.0,
            received: amounts.1,
            alipay_red_packet: signed[0],
            jifenbao: signed[1],
            alipay_discount: signed[2],
            merchant_discount: signed[3],
            voucher_amount: signed[4],
            voucher_name,
            merchant_red_packet: signed[5],
            card_amount: signed[6],
            fee: signed[7],
            profit_share: signed[8],
            remark,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_rows_round_trip_through_the_archive(rows in proptest::collection::vec(row(), 0..40)) {
        let zip = write_trade_bill(Cursor::new(Vec::new()), &header(), exported_at(), &rows).unwrap().into_inner();
        let mut bill = TradeBill::open(Cursor::new(zip)).unwrap();
        let read: Vec<BillRow> = bill.rows().unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read, rows);
    }

    #[test]
    fn any_transactions_round_trip(
        rows in proptest::collection::vec(
            ("[A-Za-z0-9_-]{1,64}", "[0-9]{1,64}", 0u64..=10_000_000_000, 0u64..=1_000_000, when(), 0usize..4, "[a-zA-Z0-9 ,.點心-]{0,20}"),
            0..20,
        )
    ) {
        let kinds = [TransactionType::Payment, TransactionType::Reversal, TransactionType::Refund, TransactionType::Cancel];
        let rows: Vec<TransactionRow> = rows
            .into_iter()
            .map(|(id, trade_no, amount, fee, at, kind, text)| TransactionRow {
                partner_transaction_id: id.parse().unwrap(),
                transaction_id: trade_no.parse().unwrap(),
                amount: Amount::from_minor(amount, Currency::JPY).unwrap_or(Amount::zero(Currency::JPY)),
                fee: Amount::from_minor(fee, Currency::JPY).unwrap(),
                payment_time: at,
                kind: kinds[kind],
                remark: text.clone(),
                secondary_merchant_industry: None,
                secondary_merchant_name: text.clone(),
                operator_name: text,
                order_scene: Some("shopQrCode".parse().unwrap()),
                trans_amount: Amount::from_minor(amount, Currency::USD).unwrap(),
                trans_forex_rate: "0.00671230".parse().unwrap(),
            })
            .collect();
        let partner = header().account.partner().clone();
        let mut bytes = Vec::new();
        write_transaction_file(&mut bytes, &partner, time::macros::date!(2026 - 03 - 14), &rows).unwrap();
        let read: Vec<TransactionRow> = TransactionReader::new(&bytes[..], &Limits::default()).unwrap().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(read, rows);
    }
}
