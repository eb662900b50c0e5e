// A restaurant POS written on Alipay's official Node.js SDK (npm `alipay-sdk` 4.14.0), used as a
// POS uses it: answers verified against Alipay's public key (validateSign), notifications verified
// with the SDK's checkNotifySign (and checkNotifySignV2). Nothing but the environment says where
// "Alipay" is, so the same script runs against the sandbox's gateway.do and against the gateway's
// Alipay-compatible front door. Prints `ok   <what>` per check and exits non-zero at the first
// `FAIL <what>: <detail>`; the last line of a good run is `all POS SDK checks passed`.
// Run: ../install, then `node node/pos.mjs` with the environment below.
//
// Environment (the Python POS in ../python reads the same):
//   ALIPAY_GATEWAY     the full gateway.do URL, e.g. http://127.0.0.1:8090/gateway.do
//   APP_ID             the app id the POS signs as
//   APP_PRIVATE_KEY    the app private key: PKCS#1, PEM or bare base64 (as Alipay's key tool
//                      writes it); a PKCS#8 PEM ("BEGIN PRIVATE KEY") is accepted here too
//   ALIPAY_PUBLIC_KEY  "Alipay's" public key, bare base64 SPKI (as Alipay's console shows it)
//   SIGN_TYPE          RSA2 (default) or RSA
//   SANDBOX_URL        the Alipay sandbox's base URL, for the buyer's side (the test hooks
//                      POST /sandbox/qr/scan and POST /sandbox/oauth/codes)
//   UPSTREAM_APP_ID    the app id the sandbox knows the merchant by (default APP_ID)
//   QUERY_INTERVAL_MS  the POS's query loop interval (default 5000), QUERY_ROUNDS (default 12)
//   GIVE_UP_ROUNDS     queries before the POS gives up on a buyer who never pays (default 2)
//   RUN_ID             prefix of every out_trade_no (default: from the clock), so reruns never collide
//   NOTIFY_HOST        the address the POS's notify_url listens on (default 127.0.0.1)
//   NOTIFY_TIMEOUT_MS  how long to wait for a notification (default 20000)
//   SDK_TIMEOUT_MS     the SDK's HTTP timeout (default 15000)
// HTTPS: the SDK checks certificates; for a test CA set NODE_EXTRA_CA_CERTS.

import crypto from 'node:crypto';
import http from 'node:http';
import { AlipaySdk } from 'alipay-sdk';

function fail(what, detail) {
  console.error(`FAIL ${what}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
  process.exit(1);
}

function check(condition, what, detail) {
  if (!condition) fail(what, detail);
  console.log(`ok   ${what}`);
}

function env(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback === undefined) fail('environment', `${name} is not set`);
  return fallback;
}

function envInt(name, fallback) {
  const value = Number.parseInt(env(name, String(fallback)), 10);
  if (!Number.isFinite(value) || value < 0) fail('environment', `${name} must be a number`);
  return value;
}

const GATEWAY = env('ALIPAY_GATEWAY');
const APP_ID = env('APP_ID');
const APP_PRIVATE_KEY = env('APP_PRIVATE_KEY');
const ALIPAY_PUBLIC_KEY = env('ALIPAY_PUBLIC_KEY');
const SIGN_TYPE = env('SIGN_TYPE', 'RSA2');
const SANDBOX_URL = env('SANDBOX_URL').replace(/\/+$/, '');
const UPSTREAM_APP_ID = env('UPSTREAM_APP_ID', APP_ID);
const QUERY_INTERVAL_MS = envInt('QUERY_INTERVAL_MS', 5000);
const QUERY_ROUNDS = envInt('QUERY_ROUNDS', 12);
const GIVE_UP_ROUNDS = envInt('GIVE_UP_ROUNDS', 2);
const RUN_ID = env('RUN_ID', `n${Date.now().toString(36)}${crypto.randomBytes(2).toString('hex')}`);
const NOTIFY_HOST = env('NOTIFY_HOST', '127.0.0.1');
const NOTIFY_TIMEOUT_MS = envInt('NOTIFY_TIMEOUT_MS', 20000);
const SDK_TIMEOUT_MS = envInt('SDK_TIMEOUT_MS', 15000);
if (!['RSA2', 'RSA'].includes(SIGN_TYPE)) fail('environment', 'SIGN_TYPE must be RSA2 or RSA');

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
const outTradeNo = (what) => `${RUN_ID}_${what}`;

// Test buyers' barcodes: 18 digits starting 28; the last two pick what the sandbox's buyer does.
const BUYER = {
  pays: '281234567890123400',
  balanceNotEnough: '281234567890123450',
  paysLater: '281234567890123460',
  neverPays: '281234567890123461',
};

function newSdk(privateKey) {
  return new AlipaySdk({
    appId: APP_ID,
    privateKey,
    keyType: /BEGIN PRIVATE KEY/.test(privateKey) ? 'PKCS8' : 'PKCS1',
    alipayPublicKey: ALIPAY_PUBLIC_KEY,
    gateway: GATEWAY,
    signType: SIGN_TYPE,
    timeout: SDK_TIMEOUT_MS,
  });
}

const sdk = newSdk(APP_PRIVATE_KEY);
const verified = { validateSign: true };

// One OpenAPI call, the answer's signature verified by the SDK. A throw (transport error,
// non-200, an answer that does not verify) fails the check named `what`.
async function call(what, method, params) {
  try {
    return await sdk.exec(method, params, verified);
  } catch (err) {
    return fail(what, `${err.name}: ${err.message}${err.responseDataRaw ? ` raw=${err.responseDataRaw}` : ''}`);
  }
}

// The same for a call that is expected to be refused: the SDK verifies the refusal like any
// answer, but a refusal the SDK cannot verify (it throws) is still read from the raw answer.
async function refusal(client, method, params) {
  try {
    return { answer: await client.exec(method, params, verified), note: 'answer verified' };
  } catch (err) {
    if (err.responseDataRaw) {
      try {
        const raw = JSON.parse(err.responseDataRaw);
        const key = `${method.replaceAll('.', '_')}_response`;
        const answer = raw[key] ?? raw.error_response ?? {};
        return { answer: { ...answer, subCode: answer.sub_code }, note: `the SDK threw: ${err.message}` };
      } catch {
        // fall through
      }
    }
    return { answer: { thrown: `${err.name}: ${err.message}` }, note: 'no answer' };
  }
}

// ---- the POS's notify_url: verifies with the SDK, then answers `success` as Alipay requires.
const notifications = [];
const waiters = new Set();
const receiver = http.createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const postData = Object.fromEntries(new URLSearchParams(body));
    // checkNotifySign is the documented check; checkNotifySignV2 the one for already-decoded
    // values (the SDK's issue #45). Alipay's notifications must pass both.
    const ok = sdk.checkNotifySign(postData) && sdk.checkNotifySignV2(postData);
    notifications.push({ postData, verified: ok });
    for (const waiter of waiters) waiter();
    res.end(ok ? 'success' : 'fail');
  });
});
await new Promise((resolve) => { receiver.listen(0, NOTIFY_HOST, resolve); });
const notifyUrl = `http://${NOTIFY_HOST}:${receiver.address().port}/alipay/notify`;

// The first notification of `tradeNo` saying the trade is paid, within NOTIFY_TIMEOUT_MS.
function paidNotification(no) {
  const find = () => notifications.find((n) => n.postData.out_trade_no === no
    && ['TRADE_SUCCESS', 'TRADE_FINISHED'].includes(n.postData.trade_status));
  return new Promise((resolve) => {
    const found = find();
    if (found) { resolve(found); return; }
    const timer = setTimeout(() => { waiters.delete(look); resolve(undefined); }, NOTIFY_TIMEOUT_MS);
    function look() {
      const hit = find();
      if (hit) { clearTimeout(timer); waiters.delete(look); resolve(hit); }
    }
    waiters.add(look);
  });
}

async function checkNotification(no, amount) {
  const got = await paidNotification(no);
  const seen = notifications.map((n) => `${n.postData.out_trade_no}/${n.postData.trade_status}`);
  check(got, `the notification of ${no} arrives at notify_url`, { waitedMs: NOTIFY_TIMEOUT_MS, seen });
  const n = got.postData;
  check(got.verified && sdk.checkNotifySign(n) && sdk.checkNotifySignV2(n),
    `checkNotifySign (and V2) accept the notification of ${no}`, n);
  check(n.app_id === APP_ID && n.total_amount === amount && n.trade_no,
    `the notification of ${no} names app ${APP_ID}, amount ${amount} and a trade_no`, n);
  const tampered = { ...n, total_amount: '0.01' };
  check(!sdk.checkNotifySign(tampered) && !sdk.checkNotifySignV2(tampered),
    `checkNotifySign (and V2) refuse a tampered copy of ${no}'s`, n);
}

async function hook(path, body) {
  let res;
  try {
    res = await fetch(`${SANDBOX_URL}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10000),
    });
  } catch (err) {
    return fail(`sandbox hook ${path}`, err.message);
  }
  const text = await res.text();
  if (res.status !== 200 && res.status !== 201) fail(`sandbox hook ${path}`, `HTTP ${res.status}: ${text}`);
  return JSON.parse(text);
}

async function query(what, no) {
  return call(what, 'alipay.trade.query', { bizContent: { outTradeNo: no } });
}

// Alipay's prescribed cancel: repeat while it answers retry_flag=Y (bounded).
async function cancel(what, no) {
  let answer;
  for (let attempt = 1; attempt <= 6; attempt += 1) {
    answer = await call(what, 'alipay.trade.cancel', { bizContent: { outTradeNo: no } });
    if (answer.retryFlag !== 'Y') return answer;
    await sleep(Math.min(QUERY_INTERVAL_MS, 2000));
  }
  return answer;
}

// ---- a. barcode pay, paid at once (with a notify_url).
const paid = outTradeNo('paid');
const pay = await call('a. trade.pay', 'alipay.trade.pay', {
  notifyUrl,
  bizContent: { outTradeNo: paid, scene: 'bar_code', authCode: BUYER.pays, subject: 'Table 7: 2x noodles', totalAmount: '88.88' },
});
check(pay.code === '10000' && pay.tradeNo && pay.totalAmount === '88.88' && pay.outTradeNo === paid,
  'a. trade.pay of a buyer who pays answers 10000 with trade_no and total_amount 88.88', pay);
const paidTradeNo = pay.tradeNo;

// ---- f. query of (a).
const paidQuery = await query('f. trade.query', paid);
check(paidQuery.code === '10000' && paidQuery.tradeStatus === 'TRADE_SUCCESS' && paidQuery.totalAmount === '88.88'
  && paidQuery.tradeNo === paidTradeNo && paidQuery.outTradeNo === paid,
'f. trade.query of (a) shows TRADE_SUCCESS, 88.88, the same trade_no', paidQuery);

// ---- the notification of (a).
await checkNotification(paid, '88.88');

// ---- g. partial refunds on (a).
const refund = (outRequestNo, amount) => call(`g. trade.refund ${outRequestNo}`, 'alipay.trade.refund', {
  bizContent: { outTradeNo: paid, refundAmount: amount, outRequestNo, refundReason: 'dish returned' },
});
const r1 = await refund('r1', '10.00');
check(r1.code === '10000' && r1.fundChange === 'Y' && r1.refundFee === '10.00',
  'g. trade.refund r1 of 10.00 answers 10000, fund_change Y, refund_fee 10.00', r1);
const r1Again = await refund('r1', '10.00');
check(r1Again.code === '10000' && r1Again.fundChange === 'N' && r1Again.refundFee === '10.00',
  'g. the same refund r1 again answers fund_change N, refund_fee still 10.00', r1Again);
const r2 = await refund('r2', '5.00');
check(r2.code === '10000' && r2.fundChange === 'Y' && r2.refundFee === '15.00',
  'g. a second refund r2 of 5.00 answers refund_fee 15.00', r2);

// ---- h. refund query of r1.
const rq = await call('h. trade.fastpay.refund.query', 'alipay.trade.fastpay.refund.query', {
  bizContent: { outTradeNo: paid, outRequestNo: 'r1' },
});
check(rq.code === '10000' && rq.refundAmount === '10.00' && (rq.refundStatus === undefined || rq.refundStatus === 'REFUND_SUCCESS'),
  `h. trade.fastpay.refund.query of r1 shows refund_amount 10.00${rq.refundStatus ? ', REFUND_SUCCESS' : ''}`, rq);

// ---- b. pay refused.
const poor = await call('b. trade.pay', 'alipay.trade.pay', {
  bizContent: { outTradeNo: outTradeNo('poor'), scene: 'bar_code', authCode: BUYER.balanceNotEnough, subject: 'Tea', totalAmount: '12.00' },
});
check(poor.code === '40004' && poor.subCode === 'ACQ.BUYER_BALANCE_NOT_ENOUGH',
  'b. trade.pay of a buyer without the balance answers 40004 ACQ.BUYER_BALANCE_NOT_ENOUGH', poor);

// ---- c. pay "in process": the POS's own query loop, as Alipay's docs prescribe.
const later = outTradeNo('later');
const inProcess = await call('c. trade.pay', 'alipay.trade.pay', {
  bizContent: { outTradeNo: later, scene: 'bar_code', authCode: BUYER.paysLater, subject: 'Dumplings', totalAmount: '23.50' },
});
check(inProcess.code === '10003' || inProcess.code === '20000',
  `c. trade.pay of a buyer still confirming answers ${inProcess.code} (in process)`, inProcess);
let settled;
for (let round = 1; round <= QUERY_ROUNDS && !settled; round += 1) {
  await sleep(QUERY_INTERVAL_MS);
  const q = await query('c. trade.query loop', later);
  if (q.code === '10000' && q.tradeStatus === 'TRADE_SUCCESS') settled = { round, q };
  else if (q.code === '10000' && q.tradeStatus !== 'WAIT_BUYER_PAY') fail('c. trade.query loop', q);
  else if (q.code !== '10000' && !['ACQ.TRADE_NOT_EXIST', 'ACQ.SYSTEM_ERROR'].includes(q.subCode)) fail('c. trade.query loop', q);
}
if (!settled) {
  await cancel('c. trade.cancel after the loop', later);
  fail('c. the query loop', `no TRADE_SUCCESS within ${QUERY_ROUNDS} rounds of ${QUERY_INTERVAL_MS} ms (cancelled)`);
}
check(settled.q.totalAmount === '23.50',
  `c. the query loop sees TRADE_SUCCESS at round ${settled.round} (every ${QUERY_INTERVAL_MS} ms)`, settled.q);

// ---- d. a buyer who never pays: the POS gives up and cancels (close).
const never = outTradeNo('never');
const waiting = await call('d. trade.pay', 'alipay.trade.pay', {
  bizContent: { outTradeNo: never, scene: 'bar_code', authCode: BUYER.neverPays, subject: 'Soup', totalAmount: '9.90' },
});
check(waiting.code === '10003' || waiting.code === '20000',
  `d. trade.pay of a buyer who never confirms answers ${waiting.code} (in process)`, waiting);
for (let round = 1; round <= GIVE_UP_ROUNDS; round += 1) {
  await sleep(QUERY_INTERVAL_MS);
  const q = await query('d. trade.query loop', never);
  const unpaid = (q.code === '10000' && q.tradeStatus === 'WAIT_BUYER_PAY')
    || (q.code !== '10000' && ['ACQ.TRADE_NOT_EXIST', 'ACQ.SYSTEM_ERROR'].includes(q.subCode));
  if (!unpaid) fail(`d. trade.query round ${round} still unpaid`, q);
}
console.log(`ok   d. still unpaid after ${GIVE_UP_ROUNDS} rounds of ${QUERY_INTERVAL_MS} ms`);
const closed = await cancel('d. trade.cancel', never);
check(closed.code === '10000' && closed.action === 'close',
  'd./i. trade.cancel of the unpaid trade answers 10000, action close', closed);
const afterClose = await query('d. trade.query after the cancel', never);
check((afterClose.code === '10000' && afterClose.tradeStatus === 'TRADE_CLOSED')
  || afterClose.subCode === 'ACQ.TRADE_NOT_EXIST',
`d. trade.query after the cancel shows ${afterClose.tradeStatus ?? afterClose.subCode}`, afterClose);

// ---- e. an order QR code: the buyer scans and pays it; the POS hears the notification and queries.
const order = outTradeNo('qr');
const precreate = await call('e. trade.precreate', 'alipay.trade.precreate', {
  notifyUrl,
  bizContent: { outTradeNo: order, subject: 'Table 4: hot pot', totalAmount: '42.00' },
});
check(precreate.code === '10000' && typeof precreate.qrCode === 'string' && precreate.qrCode.length > 0,
  'e. trade.precreate answers a qr_code', precreate);
await hook('/sandbox/qr/scan', { qr_code: precreate.qrCode });
console.log('ok   e. the buyer scans and pays the QR code (sandbox hook)');
await checkNotification(order, '42.00');
const orderQuery = await query('e. trade.query', order);
check(orderQuery.code === '10000' && orderQuery.tradeStatus === 'TRADE_SUCCESS' && orderQuery.totalAmount === '42.00',
  'e. trade.query of the QR order shows TRADE_SUCCESS', orderQuery);

// ---- i. cancel of a paid trade refunds it.
const oops = outTradeNo('oops');
const oopsPay = await call('i. trade.pay', 'alipay.trade.pay', {
  bizContent: { outTradeNo: oops, scene: 'bar_code', authCode: BUYER.pays, subject: 'Wrong table', totalAmount: '18.00' },
});
check(oopsPay.code === '10000', 'i. trade.pay of a second paid trade answers 10000', oopsPay);
const reversed = await cancel('i. trade.cancel', oops);
check(reversed.code === '10000' && reversed.action === 'refund',
  'i. trade.cancel of the paid trade answers 10000, action refund', reversed);
const afterRefund = await query('i. trade.query after the cancel', oops);
check(afterRefund.code === '10000' && afterRefund.tradeStatus === 'TRADE_CLOSED',
  'i. trade.query after the cancel shows TRADE_CLOSED', afterRefund);

// ---- j. oauth: the buyer authorises the app; the POS exchanges the code.
const issued = await hook('/sandbox/oauth/codes', { app_id: UPSTREAM_APP_ID });
const token = await call('j. system.oauth.token', 'alipay.system.oauth.token', {
  grantType: 'authorization_code', code: issued.code,
});
check(token.userId === issued.user_id && token.accessToken && !token.code,
  'j. system.oauth.token exchanges the auth code for user_id and access_token', { token, issued });

// ---- k. a forged request: the same SDK with a private key nobody registered.
const { privateKey: forgedKey } = crypto.generateKeyPairSync('rsa', {
  modulusLength: 2048,
  privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  publicKeyEncoding: { type: 'spki', format: 'pem' },
});
const forged = await refusal(newSdk(forgedKey), 'alipay.trade.query', { bizContent: { outTradeNo: paid } });
check(forged.answer.code === '40002' && forged.answer.subCode === 'isv.invalid-signature',
  `k. a request signed with another key is refused: 40002 isv.invalid-signature (${forged.note})`, forged);

// ---- l. an unknown method.
const unknown = await refusal(sdk, 'alipay.trade.nonexistent', { bizContent: { outTradeNo: paid } });
check(unknown.answer.code === '40002' && unknown.answer.subCode === 'isv.invalid-method',
  `l. an unknown method is refused: 40002 isv.invalid-method (${unknown.note})`, unknown);

const invalid = notifications.filter((n) => !n.verified);
check(invalid.length === 0, `every notification received (${notifications.length}) verifies`, invalid);
receiver.close();
console.log('all POS SDK checks passed');
process.exit(0);
