//! Every way a trade bill is refused: the typed error, the part, the line, and nothing after it.

use std::io::Cursor;

use bills::{BillError, Limits, Part, Problem, TradeBill};

use crate::helpers::*;

/// The day's entries with the detail text edited.
fn with_detail(edit: impl FnOnce(String) -> String) -> Vec<u8> {
    let (detail, summary) = entries(&day_rows());
    zip_with(&edit_gbk(&detail, edit), &summary)
}

fn detail_text() -> String {
    gbk_text(&entries(&day_rows()).0)
}

/// The error's part, line and problem.
fn refusal(zip: &[u8]) -> (Part, u64, Problem) {
    match read(zip).unwrap_err() {
        BillError::Line { part, line, problem } => (part, line, problem),
        other => panic!("not a line error: {other}"),
    }
}

#[test]
fn a_detail_cut_before_its_end_marker_is_truncated() {
    let text = detail_text();
    // Cut after the 7th row, at a line boundary: every row read is fine, then the file ends.
    let cut = cut_before(&text, "POS-7\t");
    let zip = with_detail(|_| cut.clone());
    let expected_line = cut.lines().count() as u64 + 1;
    assert_eq!(refusal(&zip), (Part::Detail, expected_line, Problem::Truncated("the end marker (业务明细列表结束)")));

    // Cut inside a row: that row is refused.
    let mid_row = format!("{}2026031422001458860000000007\t,POS-7\t,交易", cut);
    let (part, line, problem) = refusal(&with_detail(|_| mid_row));
    assert_eq!((part, line), (Part::Detail, expected_line));
    assert!(matches!(problem, Problem::Columns { expected: 25, found: 3 }), "{problem}");
}

#[test]
fn a_detail_cut_before_its_footer_is_truncated() {
    let text = detail_text();
    let cut = cut_before(&text, "#交易合计");
    let line = cut.lines().count() as u64 + 1;
    assert_eq!(
        refusal(&with_detail(|_| cut.clone())),
        (Part::Detail, line, Problem::Truncated("the totals line (#交易合计)"))
    );

    let cut = cut_before(&text, "#导出时间");
    let line = cut.lines().count() as u64 + 1;
    assert_eq!(
        refusal(&with_detail(|_| cut)),
        (Part::Detail, line, Problem::Truncated("the export time line (#导出时间)"))
    );
}

#[test]
fn a_footer_total_that_disagrees_is_refused_at_its_line() {
    let text = detail_text();
    let line = line_of(&text, "#交易合计");
    let zip = with_detail(|t| t.replace("#交易合计：12笔", "#交易合计：11笔"));
    assert_eq!(
        refusal(&zip),
        (Part::Detail, line, Problem::CountMismatch { what: "#交易合计", stated: 11, counted: 12 })
    );

    let line = line_of(&text, "#退款合计");
    let zip = with_detail(|t| t.replace("商家实收退款共-", "商家实收退款共-1"));
    let (part, at, problem) = refusal(&zip);
    assert_eq!((part, at), (Part::Detail, line));
    assert!(matches!(problem, Problem::SumMismatch { what: "#退款合计 商家实收退款", .. }), "{problem}");

    // Refund rows but no refund line.
    let line = line_of(&text, "#交易合计");
    let zip = with_detail(|t| t.lines().filter(|l| !l.starts_with("#退款合计")).map(|l| format!("{l}\n")).collect());
    assert_eq!(
        refusal(&zip),
        (Part::Detail, line, Problem::CountMismatch { what: "#退款合计", stated: 0, counted: 3 })
    );
}

#[test]
fn a_detail_that_disagrees_with_the_summary_is_refused() {
    let rows = day_rows();
    let (detail, summary) = entries(&rows);
    // A summary written for one row fewer: footer and rows agree, 合计 does not.
    let (_, short) = entries(&rows[..rows.len() - 1]);
    let summary_text = gbk_text(&short);
    let (part, line, problem) = refusal(&zip_with(&detail, &short));
    assert_eq!((part, line), (Part::Summary, line_of(&summary_text, "合计,")));
    assert_eq!(problem, Problem::CountMismatch { what: "退款订单总笔数", stated: 2, counted: 3 });

    // A summary whose stores do not add up to its 合计.
    let edited = edit_gbk(&summary, |t| t.replace("合计,,12,", "合计,,13,"));
    let err = TradeBill::open(Cursor::new(zip_with(&detail, &edited))).err().unwrap();
    assert!(matches!(err.problem(), Some(Problem::CountMismatch { stated: 13, counted: 12, .. })), "{err}");

    // A summary for another account.
    let other = edit_gbk(&summary, |t| t.replace("[20880211096256330156]", "[20880211096256340156]"));
    let (part, line, problem) = refusal(&zip_with(&detail, &other));
    assert_eq!((part, line, problem), (Part::Detail, 2, Problem::HeaderMismatch));
}

#[test]
fn a_malformed_amount_is_refused_at_its_line() {
    let text = detail_text();
    let line = line_of(&text, "POS-3\t");
    let zip = with_detail(|t| t.replacen(",14.11,14.11,", ",14.11,14.1x,", 1));
    let (part, at, problem) = refusal(&zip);
    assert_eq!((part, at), (Part::Detail, line));
    assert!(matches!(problem, Problem::Amount { column: "商家实收(元)", .. }), "{problem}");

    // A refund row with a positive amount contradicts its kind.
    let line = line_of(&text, "REF-2");
    let zip = with_detail(|t| t.replacen(",-11.37,-11.37,", ",11.37,-11.37,", 1));
    assert_eq!(refusal(&zip), (Part::Detail, line, Problem::Sign { column: "订单金额(元)" }));

    // A time that is not one.
    let zip = with_detail(|t| t.replacen("2026-03-14 10:03:00", "2026-03-14 25:03:00", 1));
    assert_eq!(refusal(&zip).2, Problem::Time { column: "创建时间" });
}

#[test]
fn a_row_with_the_wrong_column_count_is_refused() {
    let text = detail_text();
    let line = line_of(&text, "POS-2\t");
    let zip = with_detail(|t| t.replacen("POS-2\t,", "POS-2\t,extra,", 1));
    assert_eq!(refusal(&zip), (Part::Detail, line, Problem::Columns { expected: 25, found: 26 }));
}

#[test]
fn a_line_past_the_bound_is_refused() {
    let text = detail_text();
    let line = line_of(&text, "POS-5\t");
    let long = "长".repeat(5_000);
    let zip = with_detail(|t| t.replacen("牛肉面 #5", &long, 1));
    assert_eq!(refusal(&zip), (Part::Detail, line, Problem::TooLong { limit: 8 * 1024 }));

    // The bound is the caller's.
    let (detail, summary) = entries(&day_rows());
    let limits = Limits { max_line_bytes: 200, ..Limits::default() };
    let mut bill = TradeBill::open_with(Cursor::new(zip_with(&detail, &summary)), &limits).unwrap();
    let err = bill.rows().err().unwrap();
    assert_eq!(err.problem(), Some(&Problem::TooLong { limit: 200 }));
}

#[test]
fn too_many_rows_are_refused() {
    let (detail, summary) = entries(&day_rows());
    let limits = Limits { max_rows: 5, ..Limits::default() };
    let mut bill = TradeBill::open_with(Cursor::new(zip_with(&detail, &summary)), &limits).unwrap();
    let results: Vec<_> = bill.rows().unwrap().collect();
    assert_eq!(results.len(), 6);
    assert_eq!(results[5].as_ref().err().and_then(BillError::problem), Some(&Problem::TooManyRows { limit: 5 }));
}

#[test]
fn an_archive_without_either_entry_is_refused() {
    let (detail, summary) = entries(&day_rows());
    let missing = |zip: Vec<u8>| TradeBill::open(Cursor::new(zip)).err().unwrap();
    assert!(matches!(missing(zip_of(&[(Name::Gbk(SUMMARY_NAME), &summary)])), BillError::MissingEntry(Part::Detail)));
    assert!(matches!(missing(zip_of(&[(Name::Gbk(DETAIL_NAME), &detail)])), BillError::MissingEntry(Part::Summary)));
    assert!(matches!(missing(zip_of(&[])), BillError::MissingEntry(Part::Detail)));
    let twice = zip_of(&[
        (Name::Gbk(DETAIL_NAME), &detail),
        (Name::Gbk("other_业务明细.csv"), &detail),
        (Name::Gbk(SUMMARY_NAME), &summary),
    ]);
    assert!(matches!(missing(twice), BillError::DuplicateEntry(Part::Detail)));
    assert!(matches!(missing(b"not a zip".to_vec()), BillError::Archive(_)));

    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..17 {
        zip.start_file(format!("f{i}"), zip::write::SimpleFileOptions::default()).unwrap();
    }
    let many = zip.finish().unwrap().into_inner();
    assert!(matches!(missing(many), BillError::TooManyEntries { found: 17, limit: 16 }));
}

#[test]
fn a_damaged_entry_is_refused_not_misread() {
    let zip = bill_zip(&day_rows());
    // Flip bytes through the compressed data: each damaged archive is refused or, if the damage
    // missed the content, reads exactly; it never panics.
    let mut refused = 0;
    for at in (30..zip.len() - 100).step_by(97) {
        let mut damaged = zip.clone();
        damaged[at] ^= 0x5a;
        match read(&damaged) {
            Ok((rows, _, _)) => assert_eq!(rows, day_rows(), "damage at {at} changed the rows silently"),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0);
}

#[test]
fn everything_before_the_rows_is_checked() {
    let cases: [(&str, &str, Problem); 4] = [
        ("#支付宝业务明细查询", "#支付宝账务明细查询", Problem::Unexpected("#支付宝业务明细查询")),
        ("[20880211096256330156]", "[2088021109625633]", Problem::Account),
        ("终止日期：[2026年03月15日", "终止日期：[2026年03月16日", Problem::Window),
        ("商品名称", "商品", Problem::Header { index: 3, expected: "商品名称" }),
    ];
    for (from, to, expected) in cases {
        let (detail, summary) = entries(&day_rows());
        let detail = edit_gbk(&detail, |t| t.replacen(from, to, 1));
        let mut bill = TradeBill::open(Cursor::new(zip_with(&detail, &summary))).unwrap();
        let err = bill.rows().err().unwrap();
        assert_eq!(err.problem(), Some(&expected), "{from} -> {to}: {err}");
    }
}

#[test]
fn bytes_that_are_not_gbk_are_refused() {
    let (detail, summary) = entries(&day_rows());
    let text = gbk_text(&detail);
    let line = line_of(&text, "POS-1\t");
    let at = detail.windows(5).position(|w| w == b"POS-1").unwrap();
    let mut bad = detail.clone();
    bad[at] = 0xff;
    bad[at + 1] = 0xff;
    assert_eq!(refusal(&zip_with(&bad, &summary)), (Part::Detail, line, Problem::Encoding("GBK")));
}

#[test]
fn request_numbers_must_match_the_kind() {
    let text = detail_text();
    let line = line_of(&text, "REF-1");
    let zip = with_detail(|t| t.replacen("REF-1\t", "\t", 1));
    assert_eq!(refusal(&zip), (Part::Detail, line, Problem::RefundWithoutRequestNo));
    let line = line_of(&text, "POS-0\t");
    let zip = with_detail(|t| t.replacen("0.00\t,0.00,\t,-0.06", "0.00\t,0.00,R1\t,-0.06", 1));
    assert_eq!(refusal(&zip), (Part::Detail, line, Problem::PaymentWithRequestNo));
    let zip = with_detail(|t| t.replacen("\t,交易\t,", "\t,转账\t,", 1));
    assert!(matches!(refusal(&zip).2, Problem::Code { column: "业务类型", .. }));
}

#[test]
fn rows_seen_in_place_are_the_rows_written_and_stop_at_a_refusal() {
    let rows = day_rows();
    let mut bill = TradeBill::open(Cursor::new(bill_zip(&rows))).unwrap();
    let mut reader = bill.rows().unwrap();
    let mut seen = Vec::new();
    while let Some(view) = reader.next_view() {
        let view = view.unwrap();
        let row = view.to_row().unwrap();
        assert_eq!(
            (view.out_trade_no, view.store_id),
            (row.out_trade_no.as_str(), row.store_id.as_ref().map(|s| s.as_str()))
        );
        assert_eq!(view.out_request_no, row.out_request_no().map(|r| r.as_str()));
        seen.push(row);
    }
    assert_eq!(seen, rows);
    assert!(reader.footer().is_some(), "the footer was read and agreed");

    // The same file with POS-3's 商家实收 malformed: the rows before it, its error, then nothing.
    let zip = with_detail(|t| t.replacen(",14.11,14.11,", ",14.11,14.1x,", 1));
    let mut bill = TradeBill::open(Cursor::new(zip)).unwrap();
    let mut reader = bill.rows().unwrap();
    let mut before = 0;
    let error = loop {
        match reader.next_view() {
            Some(Ok(_)) => before += 1,
            Some(Err(error)) => break error,
            None => panic!("the malformed row was taken"),
        }
    };
    assert!(matches!(error.problem(), Some(Problem::Amount { .. })), "{error}");
    assert_eq!(before, rows.iter().position(|r| r.out_trade_no.as_str() == "POS-3").unwrap());
    assert!(reader.next_view().is_none() && reader.footer().is_none(), "nothing after a refusal");
}
