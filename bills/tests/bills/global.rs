//! Global's transaction and settlement files, written and read back, and refused.

use alipay::time_text::BEIJING;
use alipay::{Amount, Currency, Partner};
use bills::global::{
    SettlementReader, SettlementRow, SettlementType, TransactionReader, TransactionRow, TransactionType,
    settlement_file_name, transaction_file_name, write_settlement_file, write_transaction_file,
};
use bills::{BillError, Limits, Part, Problem, WriteError};
use time::macros::{date, datetime};

fn partner() -> Partner {
    "2088021966645500".parse().unwrap()
}

fn hkd(minor: u64) -> Amount {
    Amount::from_minor(minor, Currency::HKD).unwrap()
}

fn transaction(n: u32, kind: TransactionType) -> TransactionRow {
    TransactionRow {
        partner_transaction_id: format!("HK-STORE7-{n:06}").parse().unwrap(),
        transaction_id: format!("2026031421001004060213{n:06}").parse().unwrap(),
        amount: hkd(8_800 + u64::from(n)),
        fee: hkd(53),
        payment_time: datetime!(2026-03-14 12:00:00).assume_offset(BEIJING) + time::Duration::seconds(i64::from(n)),
        kind,
        remark: if kind == TransactionType::Refund { "Refund".to_owned() } else { String::new() },
        secondary_merchant_industry: Some("5812".parse().unwrap()),
        secondary_merchant_name: "Dim Sum 點心".to_owned(),
        operator_name: "till 3".to_owned(),
        order_scene: None,
        trans_amount: hkd(8_800 + u64::from(n)),
        trans_forex_rate: "1".parse().unwrap(),
    }
}

fn transactions() -> Vec<TransactionRow> {
    let kinds = [TransactionType::Payment, TransactionType::Reversal, TransactionType::Refund, TransactionType::Cancel];
    (0..8).map(|n| transaction(n, kinds[n as usize % 4])).collect()
}

fn settlement(n: u32, kind: SettlementType) -> SettlementRow {
    SettlementRow {
        partner_transaction_id: format!("EASA-{n}-5GP0GVWNY").parse().unwrap(),
        transaction_id: "2017080221001004060213245489".parse().unwrap(),
        amount: Amount::from_minor(36_930, Currency::AUD).unwrap(),
        rmb_amount: Amount::from_minor(200_138, Currency::CNY).unwrap(),
        fee: Amount::from_minor(222, Currency::AUD).unwrap(),
        settlement: Amount::from_minor(36_708, Currency::AUD).unwrap(),
        rmb_settlement: Amount::from_minor(198_937, Currency::CNY).unwrap(),
        rate: "5.41940000".parse().unwrap(),
        payment_time: datetime!(2017-08-02 07:36:46).assume_offset(BEIJING),
        settlement_time: datetime!(2017-08-03 15:46:00).assume_offset(BEIJING),
        kind,
        remarks: String::new(),
        secondary_merchant_industry: Some("5311".parse().unwrap()),
        secondary_merchant_name: "xxx".to_owned(),
        operator_name: "xxx".to_owned(),
        order_scene: Some("shopQrCode".parse().unwrap()),
        trans_amount: Amount::from_minor(36_930, Currency::AUD).unwrap(),
        trans_forex_rate: "1".parse().unwrap(),
    }
}

fn read_transactions(bytes: &[u8]) -> Result<Vec<TransactionRow>, BillError> {
    TransactionReader::new(bytes, &Limits::default())?.collect()
}

fn read_settlements(bytes: &[u8]) -> Result<Vec<SettlementRow>, BillError> {
    SettlementReader::new(bytes, &Limits::default())?.collect()
}

#[test]
fn file_names_follow_the_sftp_drop() {
    assert_eq!(
        transaction_file_name(&partner(), date!(2026 - 03 - 14)).unwrap(),
        "2088021966645500_transaction_20260314.txt"
    );
    assert_eq!(
        settlement_file_name(&partner(), date!(2026 - 03 - 16)).unwrap(),
        "2088021966645500_settlement_20260316.txt"
    );
}

#[test]
fn a_transaction_file_reads_back_exactly() {
    let rows = transactions();
    let mut bytes = Vec::new();
    assert_eq!(write_transaction_file(&mut bytes, &partner(), date!(2026 - 03 - 14), &rows).unwrap(), 8);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with("Partner:2088021966645500|Payment_time: 2026-03-14|Total_count:8\nPartner_transaction_id|")
    );
    assert!(text.contains("\nHK-STORE7-000000|2026031421001004060213000000|88.00|0.53|HKD|2026-03-14 12:00:00|PAYMENT||5812|Dim Sum 點心|till 3||HKD|88.00|1\n"));
    let reader = TransactionReader::new(&bytes[..], &Limits::default()).unwrap();
    assert_eq!(reader.header().total_count, 8);
    assert_eq!(reader.header().date, date!(2026 - 03 - 14));
    assert_eq!(reader.collect::<Result<Vec<_>, _>>().unwrap(), rows);

    let mut empty = Vec::new();
    write_transaction_file(&mut empty, &partner(), date!(2026 - 03 - 14), Vec::<TransactionRow>::new()).unwrap();
    assert_eq!(read_transactions(&empty).unwrap(), []);
}

#[test]
fn the_documented_sample_forms_read() {
    // Amounts without decimals, no space after a colon, CRLF.
    let text = "Partner:2088021966645500|Payment_time:2013-12-02|Total_count:2\r\n\
        Partner_transaction_id|Transaction_id|Transaction_amount|Charge_amount|Currency|Payment_time|Transaction_type|Remark|Secondary_merchant_industry|Secondary_merchant_name|Operator_name|Order_scene|Trans_currency|Trans_amount|Trans_forex_rate\r\n\
        0001|201312020445|100|3|HKD|2013-12-02 10:45:42|PAYMENT||5812|xxx|xxx|shopQrCode|TWD|100|0.031\r\n\
        0003|201312020448|100|3|HKD|2013-12-02 10:45:09|REFUND|Refund|5812|xxx|xxx|shopQrCode|TWD|100|0.031\r\n";
    let rows = read_transactions(text.as_bytes()).unwrap();
    assert_eq!(rows[0].amount, hkd(10_000));
    assert_eq!(rows[1].kind, TransactionType::Refund);
    assert_eq!(rows[1].trans_amount.currency(), Currency::TWD);
    assert_eq!(rows[1].trans_forex_rate.to_string(), "0.031");

    let settlement = "Partner_transaction_id|Transaction_id|Amount|Rmb_amount|Fee|Settlement|Rmb_settlement|Currency|Rate|Payment_time|Settlement_time|Type|Status|Remarks|Secondary_merchant_industry|Secondary_merchant_name|Operator_name|Order_scene|Trans_currency|Trans_amount|Trans_forex_rate\n\
        EASA-20170801233604653-5GP0GVWNY|2017080221001004060213245489|369.30|2001.38|2.22|367.08|1989.37|AUD|5.41940000|2017-08-02 07:36:46|2017-08-03 15:46:00|P|L||5311|xxx|xxx|shopQrCode|AUD|369.30|1\n";
    let rows = read_settlements(settlement.as_bytes()).unwrap();
    assert_eq!(rows[0].settlement.minor(), 36_708);
    assert_eq!(rows[0].rate.to_string(), "5.41940000");
    let mut again = Vec::new();
    write_settlement_file(&mut again, &rows).unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), settlement);
}

#[test]
fn a_settlement_file_reads_back_exactly() {
    let rows: Vec<SettlementRow> = (0..5)
        .map(|n| settlement(n, if n % 2 == 0 { SettlementType::Payment } else { SettlementType::Refund }))
        .collect();
    let mut bytes = Vec::new();
    assert_eq!(write_settlement_file(&mut bytes, &rows).unwrap(), 5);
    assert_eq!(read_settlements(&bytes).unwrap(), rows);
}

fn refusal(result: Result<Vec<impl std::fmt::Debug>, BillError>) -> (Part, u64, Problem) {
    match result.unwrap_err() {
        BillError::Line { part, line, problem } => (part, line, problem),
        other => panic!("{other}"),
    }
}

#[test]
fn transaction_files_are_refused_when_they_disagree_or_break() {
    let mut bytes = Vec::new();
    write_transaction_file(&mut bytes, &partner(), date!(2026 - 03 - 14), transactions()).unwrap();
    let text = String::from_utf8(bytes).unwrap();

    // Cut at a line boundary: fewer rows than Total_count.
    let cut: String = text.lines().take(7).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        refusal(read_transactions(cut.as_bytes())),
        (Part::Transactions, 1, Problem::CountMismatch { what: "Total_count", stated: 8, counted: 5 })
    );
    // More rows than stated.
    let more = text.replace("Total_count:8", "Total_count:7");
    assert_eq!(
        refusal(read_transactions(more.as_bytes())),
        (Part::Transactions, 10, Problem::CountMismatch { what: "Total_count", stated: 7, counted: 8 })
    );
    // Cut inside a row.
    let mid = &text[..text.len() - 30];
    assert!(matches!(refusal(read_transactions(mid.as_bytes())).2, Problem::Columns { expected: 15, .. }));
    // An unknown type, a malformed amount, too many decimals for the currency.
    let bad = text.replacen("|REVERSAL|", "|REVERSED|", 1);
    assert!(matches!(refusal(read_transactions(bad.as_bytes())), (_, 4, Problem::Code { .. })));
    let bad = text.replacen("|88.00|0.53|", "|88.0.0|0.53|", 1);
    assert!(matches!(refusal(read_transactions(bad.as_bytes())), (_, 3, Problem::Amount { .. })));
    let bad = text.replacen("|88.00|0.53|HKD|", "|88.00|0.53|JPY|", 1);
    assert!(matches!(refusal(read_transactions(bad.as_bytes())), (_, 3, Problem::Amount { .. })));
    // Not UTF-8.
    let mut bad = text.clone().into_bytes();
    let at = bad.windows(3).position(|w| w == "點".as_bytes()).unwrap();
    bad[at] = 0xff;
    assert_eq!(refusal(read_transactions(&bad)).2, Problem::Encoding("UTF-8"));
    // A wrong first line.
    let bad = text.replacen("Partner:", "Partner_id:", 1);
    assert!(matches!(refusal(read_transactions(bad.as_bytes())), (_, 1, Problem::Unexpected(_))));
}

#[test]
fn settlement_files_are_refused_when_they_break() {
    let rows = vec![settlement(0, SettlementType::Payment)];
    let mut bytes = Vec::new();
    write_settlement_file(&mut bytes, &rows).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let bad = text.replacen("|P|L|", "|P|S|", 1);
    assert!(matches!(
        refusal(read_settlements(bad.as_bytes())),
        (Part::Settlements, 2, Problem::Code { column: "Status", .. })
    ));
    let bad = text.replacen("Rmb_amount", "RMB_amount", 1);
    assert!(matches!(refusal(read_settlements(bad.as_bytes())), (_, 1, Problem::Header { index: 3, .. })));
    let mid = &text[..text.rfind("|AUD|").unwrap()];
    assert!(matches!(refusal(read_settlements(mid.as_bytes())), (_, 2, Problem::Columns { expected: 21, found: 18 })));
    let trailing = format!("{text}\n\nstray\n");
    assert!(matches!(refusal(read_settlements(trailing.as_bytes())), (_, 5, Problem::Unexpected(_))));
}

#[test]
fn the_writers_refuse_what_the_layout_cannot_carry() {
    let mut row = transaction(0, TransactionType::Payment);
    row.remark = "a|b".to_owned();
    let err = write_transaction_file(Vec::new(), &partner(), date!(2026 - 03 - 14), [row]).unwrap_err();
    assert!(matches!(err, WriteError::Field { row: 0, field: "Remark", .. }), "{err}");
    let mut row = transaction(0, TransactionType::Payment);
    row.fee = Amount::from_minor(1, Currency::USD).unwrap();
    assert!(write_transaction_file(Vec::new(), &partner(), date!(2026 - 03 - 14), [row]).is_err());
}
