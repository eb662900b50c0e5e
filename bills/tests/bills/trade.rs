//! Trade bills written and read back, and the forms Alipay's files come in.

use std::io::Cursor;

use bills::trade::{BillRow, RowKind, write_detail};
use bills::{BillPeriod, SignedAmount, Total, TradeBill};
use encoding_rs::GBK;
use time::Month;
use zip::ZipArchive;

use crate::helpers::*;

#[test]
fn a_day_of_payments_and_refunds_reads_back_exactly() {
    let rows = day_rows();
    let (read, footer, summary) = read(&bill_zip(&rows)).unwrap();
    assert_eq!(read, rows);

    assert_eq!((footer.payments, footer.refunds), (12, 3));
    let paid: i64 = rows.iter().filter(|r| !r.is_refund()).map(|r| r.received.minor() as i64).sum();
    let refunded: i64 = rows.iter().filter(|r| r.is_refund()).map(|r| r.received.minor() as i64).sum();
    assert_eq!(footer.payments_received, Total::from_minor(paid, CNY));
    assert_eq!(footer.refunds_received, Total::from_minor(-refunded, CNY));
    assert_eq!(footer.payments_merchant_discount.minor(), 50);
    assert_eq!(footer.exported_at, exported_at());

    // One line per store (none, SH-001, SH-002), adding up to 合计.
    let stores: Vec<Option<&str>> = summary.stores.iter().map(|s| s.store_id.as_ref().map(|s| s.as_str())).collect();
    assert_eq!(stores, [None, Some("SH-001"), Some("SH-002")]);
    assert_eq!((summary.total.payments, summary.total.refunds), (12, 3));
    assert_eq!(summary.total.amount.minor(), rows.iter().map(|r| r.signed_amount().minor()).sum::<i64>());
    assert_eq!(summary.total.net.minor(), summary.total.received.minor() + summary.total.fee.minor());
    assert_eq!(summary.header, header());
}

#[test]
fn refund_rows_repeat_the_payment_and_carry_their_request_number() {
    let rows = day_rows();
    let (read, _, _) = read(&bill_zip(&rows)).unwrap();
    let refunds: Vec<&BillRow> = read.iter().filter(|r| r.is_refund()).collect();
    assert_eq!(refunds.len(), 3);
    assert_eq!(refunds[0].trade_no, read[0].trade_no);
    assert_eq!(refunds[0].out_trade_no, read[0].out_trade_no);
    assert_eq!(refunds[0].out_request_no().map(|r| r.as_str()), Some("REF-1"));
    assert_eq!(refunds[0].amount.minor(), 300);
    assert_eq!(refunds[0].signed_amount().to_string(), "-3.00");
    assert_eq!(refunds[1].amount, read[1].amount, "a full refund");
    assert_eq!(read[0].out_request_no(), None);
    assert!(read[0].fee.is_negative() && !refunds[0].fee.is_negative());
}

#[test]
fn a_day_with_nothing_reads_as_no_rows() {
    let (read, footer, summary) = read(&bill_zip(&[])).unwrap();
    assert!(read.is_empty());
    assert_eq!((footer.payments, footer.refunds), (0, 0));
    assert!(summary.stores.is_empty());
    assert_eq!(summary.total.amount, Total::zero(CNY));
    // No refunds: no #退款合计 line, as the samples allow.
    let (detail, _) = entries(&[]);
    assert!(!gbk_text(&detail).contains("退款合计"));
}

#[test]
fn the_archive_is_named_and_encoded_as_alipay_does() {
    let zip = bill_zip(&day_rows());
    assert_eq!(header().archive_name(), "20880211096256330156_20260314.csv.zip");
    let mut archive = ZipArchive::new(Cursor::new(&zip)).unwrap();
    for (index, name) in [DETAIL_NAME, SUMMARY_NAME].iter().enumerate() {
        let entry = archive.by_index_raw(index).unwrap();
        assert_eq!(entry.name_raw(), &*GBK.encode(name).0, "a GBK name");
        assert_eq!(entry.flags().as_u16() & 0x0800, 0, "no UTF-8 flag");
    }
    let (detail, summary) = entries(&day_rows());
    let text = gbk_text(&detail);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#支付宝业务明细查询");
    assert_eq!(lines[1], "#账号：[20880211096256330156]");
    assert_eq!(lines[2], "#起始日期：[2026年03月14日 00:00:00]   终止日期：[2026年03月15日 00:00:00]");
    assert_eq!(lines[3], format!("#{}业务明细列表{}", "-".repeat(41), "-".repeat(40)));
    assert!(lines[4].starts_with("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,"));
    assert!(lines[4].contains("订单金额（元）"));
    assert_eq!(
        lines[5],
        "2026031422001458860000000000\t,POS-0\t,交易\t,牛肉面 #0,2026-03-14 10:00:00,2026-03-14 10:00:07,SH-001\t,\
         SH-001 店\t,alipay\t,\t,*津水(602***@qq.com)\t,10.00,10.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.06,0.00,"
    );
    assert!(lines.iter().any(|l| l.contains(",0.00,REF-1\t,0.01,")));
    assert_eq!(lines[lines.len() - 4], format!("#{}业务明细列表结束{}", "-".repeat(41), "-".repeat(36)));
    assert!(lines[lines.len() - 3].starts_with("#交易合计：12笔，商家实收共"));
    assert!(lines[lines.len() - 2].starts_with("#退款合计：3笔，商家实收退款共-"));
    assert_eq!(lines[lines.len() - 1], "#导出时间：[2026年03月15日 05:46:49]");
    let summary = gbk_text(&summary);
    assert!(summary.starts_with("#支付宝业务汇总查询\n#账号：[20880211096256330156]\n"));
    assert!(summary.contains(&format!("#{}业务汇总列表结束{}\n", "-".repeat(40), "-".repeat(37))));
    assert!(summary.lines().any(|l| l.starts_with("合计,,12,3,")));
}

#[test]
fn writing_the_same_day_twice_gives_the_same_bytes() {
    assert_eq!(bill_zip(&day_rows()), bill_zip(&day_rows()));
}

#[test]
fn entries_are_found_in_either_order_and_either_name_form() {
    let (detail, summary) = entries(&day_rows());
    let full_width = "20880211096256330156_20260314_业务明细（汇总）.csv";
    let archives = [
        zip_of(&[(Name::Gbk(SUMMARY_NAME), &summary), (Name::Gbk(DETAIL_NAME), &detail)]),
        zip_of(&[(Name::Gbk(full_width), &summary), (Name::Gbk(DETAIL_NAME), &detail)]),
        zip_of(&[(Name::Gbk(DETAIL_NAME), &detail), (Name::Gbk(full_width), &summary)]),
        zip_of(&[(Name::Utf8(DETAIL_NAME), &detail), (Name::Utf8(SUMMARY_NAME), &summary)]),
        zip_of(&[
            (Name::Gbk("x_财务明细.csv"), b"ignored"),
            (Name::Gbk(SUMMARY_NAME), &summary),
            (Name::Gbk(DETAIL_NAME), &detail),
        ]),
    ];
    for (i, zip) in archives.iter().enumerate() {
        assert_eq!(read(zip).unwrap().0, day_rows(), "archive {i}");
    }
}

#[test]
fn ascii_parentheses_in_the_headers_read_too() {
    let (detail, summary) = entries(&day_rows());
    let ascii = |bytes: &[u8]| edit_gbk(bytes, |t| t.replace("（元）", "(元)"));
    let (detail, summary) = (ascii(&detail), ascii(&summary));
    assert!(gbk_text(&detail).contains("订单金额(元)"));
    assert_eq!(read(&zip_with(&detail, &summary)).unwrap().0, day_rows());
}

#[test]
fn crlf_line_endings_and_dash_counts_do_not_matter() {
    let (detail, summary) = entries(&day_rows());
    let edit = |bytes: &[u8]| {
        edit_gbk(bytes, |t| t.replace(&"-".repeat(36), "---").replace(&"-".repeat(40), "-----").replace('\n', "\r\n"))
    };
    assert_eq!(read(&zip_with(&edit(&detail), &edit(&summary))).unwrap().0, day_rows());
}

/// Written by hand in Alipay's layout (not by this crate's writer): TABs where the samples
/// have them, full-width punctuation, a refund, no quotes.
const HAND_WRITTEN: &str = "#支付宝业务明细查询
#账号：[20880211096256330156]
#起始日期：[2026年03月14日 00:00:00]   终止日期：[2026年03月15日 00:00:00]
#-----------------------------------------业务明细列表----------------------------------------
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注
2026031422001458860515315453\t,service_1773457259302\t,交易\t,下单测试,2026-03-14 10:55:16,2026-03-14 10:55:23,alipay_store\t,alipay_store\t,alipay\t,\t,*津水(602***@qq.com)\t,1.00,1.00,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,-0.01,0.00,下单测试
2026031422001458860515315453\t,service_1773457259302\t,退款\t,下单测试,2026-03-14 10:55:16,2026-03-14 10:56:48,alipay_store\t,alipay_store\t,alipay\t,\t,*津水(602***@qq.com)\t,-0.40,-0.40,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,re_test_1773457607356\t,0.00,0.00,下单测试
2026031422001465870515233238\t,20260314165659224L3VUQRL9\t,交易\t,订单INSURANCE88100011909161658423172,2026-03-14 16:58:56,2026-03-14 16:58:58,\t,\t,\t,\t,*庚辰(182****01)\t,0.01,0.01,0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,\t,0.00,0.00,
#-----------------------------------------业务明细列表结束------------------------------------
#交易合计：2笔，商家实收共1.01元，商家优惠共0.00元
#退款合计：1笔，商家实收退款共-0.40元，商家优惠退款共0.00元
#导出时间：[2026年03月15日 05:46:49]
";

#[test]
fn a_hand_written_alipay_detail_file_reads() {
    let (detail, _, _) = GBK.encode(HAND_WRITTEN);
    let mut reader = bills::DetailReader::new(&detail[..], &bills::Limits::default()).unwrap();
    assert_eq!(reader.header(), &header());
    let rows: Vec<BillRow> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0].trade_no.as_str(), "2026031422001458860515315453");
    assert_eq!(rows[0].store_id.as_ref().map(|s| s.as_str()), Some("alipay_store"));
    assert_eq!(rows[0].fee, SignedAmount::negative(fen(1)));
    assert_eq!(rows[1].kind, RowKind::Refund { out_request_no: "re_test_1773457607356".parse().unwrap() });
    assert_eq!((rows[1].amount, rows[1].received), (fen(40), fen(40)));
    assert_eq!(rows[1].created_at, rows[0].created_at);
    assert_eq!(rows[2].store_id, None);
    assert_eq!(rows[2].remark, "");
    assert_eq!(reader.footer().map(|f| (f.payments, f.refunds)), Some((2, 1)));

    // The writer lays out the same rows exactly as written by hand.
    let mut written = Vec::new();
    write_detail(&mut written, &header(), exported_at(), &rows).unwrap();
    assert_eq!(gbk_text(&written), HAND_WRITTEN);
}

#[test]
fn a_monthly_bill_reads_back() {
    let mut month = header();
    month.period = BillPeriod::month(2026, Month::March).unwrap();
    let rows = day_rows();
    let zip = bills::write_trade_bill(Cursor::new(Vec::new()), &month, exported_at(), &rows).unwrap().into_inner();
    let mut bill = TradeBill::open(Cursor::new(&zip)).unwrap();
    assert_eq!(bill.header(), &month);
    assert_eq!(month.archive_name(), "20880211096256330156_202603.csv.zip");
    let read: Vec<BillRow> = bill.rows().unwrap().collect::<Result<_, _>>().unwrap();
    assert_eq!(read, rows);
}

#[test]
fn the_writer_refuses_what_the_layout_cannot_carry() {
    let mut rows = day_rows();
    rows[3].subject = "line\nbreak".to_owned();
    let err = write_detail(Vec::new(), &header(), exported_at(), &rows).unwrap_err();
    assert!(matches!(err, bills::WriteError::Field { row: 3, field: "商品名称", .. }), "{err}");

    let mut rows = day_rows();
    rows[2].remark = "emoji 🍜".to_owned();
    let err = write_detail(Vec::new(), &header(), exported_at(), &rows).unwrap_err();
    assert!(matches!(err, bills::WriteError::Field { row: 2, field: "备注", .. }), "{err}");

    // A private-use character GBK would write as bytes that read back as another character.
    let mut rows = day_rows();
    rows[0].store_name = "\u{e5e5}".to_owned();
    let err = write_detail(Vec::new(), &header(), exported_at(), &rows).unwrap_err();
    assert!(matches!(err, bills::WriteError::Field { row: 0, field: "门店名称", .. }), "{err}");

    let mut rows = day_rows();
    rows[1].fee = SignedAmount::zero(alipay::Currency::HKD);
    assert!(write_detail(Vec::new(), &header(), exported_at(), &rows).is_err());
}
