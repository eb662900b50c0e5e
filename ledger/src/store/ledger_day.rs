//! The ledger's side of a whole bill day, read in bulk: `COPY (SELECT …) TO STDOUT (FORMAT
//! binary)` over a connection of its own, each row seen where it lies in the message that
//! carries it (no row objects, no per-column type lookups), an hour of the day's window per
//! statement (so each statement stays within the connection's `statement_timeout` whatever the
//! day's size). COPY takes no parameters: the account, the tenants and the bounds are set with
//! `set_config` (which does) and read back by `current_setting`, so nothing is written into a
//! statement's text.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Stream, TryStreamExt};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

use super::StoreError;
use super::bill_ledger::{EntryView, PaymentView, refunds_sql, trades_sql};
use super::bills::beijing_bounds;

/// What [`read_ledger_day`] sets, read back once per statement (a row of its own, materialized:
/// `current_setting` written in the statement itself would be called, and its text parsed, for
/// every row).
const PARAMS: &str = "SELECT current_setting('acq.bill_account') AS account, \
     current_setting('acq.bill_day_start')::timestamptz AS day_start, \
     current_setting('acq.bill_day_end')::timestamptz AS day_end, \
     current_setting('acq.bill_tenants')::uuid[] AS tenants, \
     current_setting('acq.bill_from')::timestamptz AS hour_start, \
     current_setting('acq.bill_to')::timestamptz AS hour_end";

/// The statements' parameters, as [`PARAMS`] names them (`$5` and `$6`: an hour's bounds).
const PARAM_COLUMNS: [(&str, &str); 6] = [
    ("$1", "p.account"),
    ("$2", "p.day_start"),
    ("$3", "p.day_end"),
    ("$4", "p.tenants"),
    ("$5", "p.hour_start"),
    ("$6", "p.hour_end"),
];

/// The binary COPY format's signature, flags and header extension length (none).
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Columns of either statement's rows.
const COLUMNS: i16 = 11;

/// Hands `sink` the ledger's side of `account`'s day `day` (its trades being those of `tenants`):
/// the trades made on the day or the day before, and the refunds done on the day or a day either
/// side, each seen where it lies, read over a connection of its own to `target` (a bulk read
/// beside the pool). Run it on a current-thread runtime on the thread that consumes the entries:
/// the connection, the statements and `sink` then never wait on one another across threads (on a
/// pool's connection, driven by another thread, a million rows cost some 60,000 context switches).
/// Answers how many entries were read.
pub async fn read_ledger_day<E: From<StoreError>>(
    target: &pgtls::Target,
    account: &str,
    tenants: &[Uuid],
    day: Date,
    mut sink: impl FnMut(EntryView<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    let (start, end) = beijing_bounds(day);
    let (mut client, connection) = target.connect().await.map_err(StoreError::from)?;
    // Ends when `client` is dropped (or the connection fails, and with it every statement).
    tokio::spawn(connection);
    // One snapshot for every statement: an entry is in one hour's statement or another's, once.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(StoreError::from)?;
    let tenant_list = format!("{{{}}}", tenants.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","));
    let set = "SELECT set_config('acq.bill_account', $1, true), set_config('acq.bill_day_start', $2, true), \
               set_config('acq.bill_day_end', $3, true), set_config('acq.bill_tenants', $4, true)";
    tx.execute(set, &[&account, &rfc3339(start)?, &rfc3339(end)?, &tenant_list]).await.map_err(StoreError::from)?;
    // Trades of the account's tenants only (their time index); refunds by theirs.
    let trades = copy_of(&trades_sql("t.tenant_id = ANY($4) AND t.created_at >= $5 AND t.created_at < $6"));
    let refunds = copy_of(&refunds_sql("r.tenant_id = ANY($4) AND r.refunded_at >= $5 AND r.refunded_at < $6"));
    let mut read = 0u64;
    for (sql, from, to, entry_of) in [
        (&trades, start - Duration::DAY, end, trade_of as EntryOf),
        (&refunds, start - Duration::DAY, end + Duration::DAY, refund_of),
    ] {
        let mut hour = from;
        while hour < to {
            let next = hour + Duration::HOUR;
            let bounds = "SELECT set_config('acq.bill_from', $1, true), set_config('acq.bill_to', $2, true)";
            tx.execute(bounds, &[&rfc3339(hour)?, &rfc3339(next)?]).await.map_err(StoreError::from)?;
            let stream = tx.copy_out(sql.as_str()).await.map_err(StoreError::from)?;
            read += copy_rows(stream, entry_of, &mut sink).await?;
            hour = next;
        }
    }
    tx.commit().await.map_err(StoreError::from)?;
    Ok(read)
}

/// How a statement's row is seen: [`trade_of`] or [`refund_of`].
type EntryOf = for<'r> fn(&mut Fields<'r>) -> Result<EntryView<'r>, StoreError>;

fn copy_of(select: &str) -> String {
    let select = PARAM_COLUMNS.iter().fold(select.to_owned(), |sql, (param, column)| sql.replace(param, column));
    format!(
        "COPY (WITH p AS MATERIALIZED ({PARAMS}) SELECT q.* FROM p CROSS JOIN LATERAL ({select}) q) \
         TO STDOUT (FORMAT binary)"
    )
}

fn rfc3339(at: OffsetDateTime) -> Result<String, StoreError> {
    at.format(&time::format_description::well_known::Rfc3339).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Reads one COPY's rows to `sink`; answers how many. Rows are seen in the message that carries
/// them; one cut across messages is put together first.
async fn copy_rows<E: From<StoreError>>(
    stream: impl Stream<Item = Result<Bytes, tokio_postgres::Error>>,
    entry_of: EntryOf,
    sink: &mut impl FnMut(EntryView<'_>) -> Result<(), E>,
) -> Result<u64, E> {
    futures_util::pin_mut!(stream);
    let (mut rows, mut header_read, mut ended) = (0u64, false, false);
    let mut pending = BytesMut::new();
    while let Some(chunk) = stream.try_next().await.map_err(StoreError::from)? {
        let mut bytes: Bytes = if pending.is_empty() {
            chunk
        } else {
            pending.extend_from_slice(&chunk);
            pending.split().freeze()
        };
        if !header_read {
            if bytes.len() < SIGNATURE.len() + 8 {
                pending.extend_from_slice(&bytes);
                continue;
            }
            let extension = header(&bytes)?;
            bytes.advance(SIGNATURE.len() + 8 + extension);
            header_read = true;
        }
        let mut rest: &[u8] = &bytes;
        while !rest.is_empty() {
            let Some(length) = tuple_length(rest)? else { break };
            let (tuple, after) = rest.split_at(length);
            rest = after;
            match i16::from_be_bytes([tuple[0], tuple[1]]) {
                -1 => ended = true,
                COLUMNS if !ended => {
                    let mut fields = Fields(&tuple[2..]);
                    sink(entry_of(&mut fields)?)?;
                    rows += 1;
                }
                _ => return Err(corrupt("a row after the end, or of another width").into()),
            }
        }
        pending.extend_from_slice(rest);
    }
    if !ended || !pending.is_empty() {
        return Err(corrupt("it ended before its trailer").into());
    }
    Ok(rows)
}

/// The header's extension length, once the signature and flags are checked.
fn header(bytes: &[u8]) -> Result<usize, StoreError> {
    let (signature, rest) = bytes.split_at(SIGNATURE.len());
    if signature != SIGNATURE || rest[..4] != [0; 4] {
        return Err(corrupt("not binary COPY, or with OIDs"));
    }
    let extension = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    if extension > bytes.len() - SIGNATURE.len() - 8 {
        return Err(corrupt("a header extension"));
    }
    Ok(extension)
}

/// The length of the tuple at the start of `bytes` (its field count and fields, or the trailer),
/// or `None` when `bytes` holds only part of it.
fn tuple_length(bytes: &[u8]) -> Result<Option<usize>, StoreError> {
    let Some(count) = bytes.get(..2) else { return Ok(None) };
    let count = i16::from_be_bytes([count[0], count[1]]);
    if count == -1 {
        return Ok(Some(2));
    }
    let mut at = 2usize;
    for _ in 0..count.max(0) {
        let Some(length) = bytes.get(at..at + 4) else { return Ok(None) };
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        if length < -1 {
            return Err(corrupt("a field's length"));
        }
        at += 4 + usize::try_from(length.max(0)).map_err(|_| corrupt("a field's length"))?;
    }
    Ok((at <= bytes.len()).then_some(at))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("the ledger day's COPY: {what}"))
}

/// A tuple's fields, read in order, each checked for the type the statement gives it.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn next(&mut self) -> Result<Option<&'a [u8]>, StoreError> {
        let length = self.0.get(..4).ok_or_else(|| corrupt("a field cut short"))?;
        let length = i32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        self.0 = &self.0[4..];
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length).map_err(|_| corrupt("a field's length"))?;
        let (field, rest) = self.0.split_at_checked(length).ok_or_else(|| corrupt("a field cut short"))?;
        self.0 = rest;
        Ok(Some(field))
    }

    fn required(&mut self) -> Result<&'a [u8], StoreError> {
        self.next()?.ok_or_else(|| corrupt("a null where a value must be"))
    }

    fn text(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.required()?).map_err(|_| corrupt("text that is not UTF-8"))
    }

    fn opt_text(&mut self) -> Result<Option<&'a str>, StoreError> {
        self.next()?.map(|t| std::str::from_utf8(t).map_err(|_| corrupt("text that is not UTF-8"))).transpose()
    }

    fn int8(&mut self) -> Result<i64, StoreError> {
        int8(self.required()?)
    }

    fn opt_int8(&mut self) -> Result<Option<i64>, StoreError> {
        self.next()?.map(int8).transpose()
    }

    fn bool(&mut self) -> Result<bool, StoreError> {
        boolean(self.required()?)
    }

    fn uuid(&mut self) -> Result<Uuid, StoreError> {
        Uuid::from_slice(self.required()?).map_err(|_| corrupt("a uuid"))
    }

    fn payment(&mut self) -> Result<PaymentView<'a>, StoreError> {
        Ok(PaymentView {
            tenant_id: self.uuid()?,
            out_trade_no: self.text()?,
            state: self.text()?,
            trade_no: self.opt_text()?,
            currency: self.text()?,
            amount_minor: self.int8()?,
            store_id: self.opt_text()?,
        })
    }
}

fn boolean(bytes: &[u8]) -> Result<bool, StoreError> {
    match bytes {
        [0] => Ok(false),
        [1] => Ok(true),
        _ => Err(corrupt("a boolean")),
    }
}

fn int8(bytes: &[u8]) -> Result<i64, StoreError> {
    Ok(i64::from_be_bytes(bytes.try_into().map_err(|_| corrupt("a bigint"))?))
}

/// A row of [`trades_sql`], as [`super::bill_ledger`] reads it from a fetched row.
fn trade_of<'a>(fields: &mut Fields<'a>) -> Result<EntryView<'a>, StoreError> {
    let payment = fields.payment()?;
    let (paid, paid_on_day) = (fields.bool()?, fields.bool()?);
    let reversed = fields.opt_int8()?;
    let reversed_on_day = fields.next()?;
    let reversed = match (reversed, reversed_on_day) {
        (Some(minor), Some(on_day)) => Some((minor, boolean(on_day)?)),
        (Some(_), None) => return Err(corrupt("a reversal without its day")),
        (None, _) => None,
    };
    Ok(EntryView::Trade { payment, paid, paid_on_day, reversed })
}

/// A row of [`refunds_sql`].
fn refund_of<'a>(fields: &mut Fields<'a>) -> Result<EntryView<'a>, StoreError> {
    Ok(EntryView::Refund {
        trade: fields.payment()?,
        wire_request_no: fields.text()?,
        state: fields.text()?,
        amount_minor: fields.int8()?,
        done_on_day: fields.bool()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A binary COPY of `rows` trades (the header, the tuples, the trailer).
    fn copy_of_trades(rows: usize) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        out.extend_from_slice(&[0; 8]);
        for n in 0..rows {
            let no = format!("POS-{n}");
            let reversed = (n % 2 == 1).then_some(5i64);
            let fields: Vec<Option<Vec<u8>>> = vec![
                Some(Uuid::from_u128(7).as_bytes().to_vec()),
                Some(no.into_bytes()),
                Some(b"SUCCESS".to_vec()),
                None,
                Some(b"CNY".to_vec()),
                Some(100i64.to_be_bytes().to_vec()),
                Some(b"S1".to_vec()),
                Some(vec![1]),
                Some(vec![0]),
                reversed.map(|r| r.to_be_bytes().to_vec()),
                Some(vec![1]),
            ];
            out.extend_from_slice(&COLUMNS.to_be_bytes());
            for field in fields {
                match field {
                    None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(bytes) => {
                        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                        out.extend_from_slice(&bytes);
                    }
                }
            }
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        out
    }

    /// The trades read from `copy` sent in messages cut at `cuts`, as text.
    fn read(copy: &[u8], cuts: &[usize]) -> Result<Vec<String>, StoreError> {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < copy.len()));
        bounds.push(copy.len());
        let messages: Vec<Result<Bytes, tokio_postgres::Error>> =
            bounds.windows(2).map(|w| Ok(Bytes::copy_from_slice(&copy[w[0]..w[1]]))).collect();
        let mut seen = Vec::new();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(copy_rows(futures_util::stream::iter(messages), trade_of, &mut |entry: EntryView<'_>| {
            seen.push(format!("{entry:?}"));
            Ok::<_, StoreError>(())
        }))?;
        Ok(seen)
    }

    #[test]
    fn rows_cut_across_messages_anywhere_read_as_whole_ones() {
        let copy = copy_of_trades(3);
        let whole = read(&copy, &[]).unwrap();
        assert_eq!(whole.len(), 3);
        assert!(whole[1].contains("POS-1") && whole[1].contains("reversed: Some((5, true))"), "{}", whole[1]);
        assert!(whole[0].contains("trade_no: None") && whole[0].contains("reversed: None"), "{}", whole[0]);
        for cut in 1..copy.len() {
            assert_eq!(read(&copy, &[cut]).unwrap(), whole, "cut at {cut}");
            assert_eq!(read(&copy, &[cut, cut + 3, cut + 20]).unwrap(), whole, "cut at {cut} and after");
        }
    }

    #[test]
    fn a_copy_cut_short_or_not_binary_is_refused() {
        let copy = copy_of_trades(2);
        for end in [copy.len() - 2, copy.len() - 1, copy.len() - 30, 10] {
            let error = read(&copy[..end], &[]).unwrap_err().to_string();
            assert!(error.contains("ended before its trailer"), "{end}: {error}");
        }
        let mut text = copy.clone();
        text[0] = b'X';
        assert!(read(&text, &[]).unwrap_err().to_string().contains("not binary COPY"));
        let mut wide = copy.clone();
        wide[SIGNATURE.len() + 8 + 1] = 12;
        assert!(read(&wide, &[]).is_err(), "a row of 12 columns");
    }
}
