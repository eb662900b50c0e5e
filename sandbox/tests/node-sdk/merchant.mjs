// A merchant using Alipay's official Node.js SDK (alipay-sdk, signature verification on) against
// alipay-sandbox: pay, query, refund, cancel and precreate, then it verifies a notification the
// sandbox sent. Run by sandbox/tests/official_sdk.rs; exits non-zero on the first failure.
//
// Environment: SANDBOX_URL, APP_ID, APP_PRIVATE_KEY (bare base64 PKCS#1, as Alipay's key tool
// hands it out), ALIPAY_PUBLIC_KEY (bare base64 SPKI, as Alipay's console shows it), and
// APP_PUBLIC_KEY (the merchant's own public key, to show a wrong key is refused).

import http from 'node:http';
import { AlipaySdk } from 'alipay-sdk';

const { SANDBOX_URL, APP_ID, APP_PRIVATE_KEY, ALIPAY_PUBLIC_KEY } = process.env;

function check(condition, what, detail) {
  if (!condition) {
    console.error(`FAIL ${what}: ${JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok   ${what}`);
}

// The merchant's notify_url: answers `success` after verifying, as Alipay requires.
const notifications = [];
let notified;
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (chunk) => { body += chunk; });
  req.on('end', () => {
    const postData = Object.fromEntries(new URLSearchParams(body));
    notifications.push(postData);
    if (notified) notified();
    res.end('success');
  });
});
await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const notifyUrl = `http://127.0.0.1:${receiver.address().port}/notify`;

function nextNotification(outTradeNo) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no notification for ${outTradeNo}`)), 10000);
    const look = () => {
      const found = notifications.find((n) => n.out_trade_no === outTradeNo);
      if (found) { clearTimeout(timer); resolve(found); } else { notified = look; }
    };
    look();
  });
}

const sdk = new AlipaySdk({
  appId: APP_ID,
  privateKey: APP_PRIVATE_KEY,
  alipayPublicKey: ALIPAY_PUBLIC_KEY,
  gateway: `${SANDBOX_URL}/gateway.do`,
  signType: 'RSA2',
  timeout: 10000,
});
const verified = { validateSign: true };
const run = Date.now().toString(36);

// Barcode payment, paid at once.
const paid = `sdk${run}a`;
const pay = await sdk.exec('alipay.trade.pay', {
  notifyUrl,
  bizContent: { outTradeNo: paid, scene: 'bar_code', authCode: '281234567890123400', subject: 'Combo meal #3', totalAmount: '88.88' },
}, verified);
check(pay.code === '10000' && pay.tradeNo && pay.totalAmount === '88.88', 'trade.pay answers 10000, verified', pay);

const query = await sdk.exec('alipay.trade.query', { bizContent: { outTradeNo: paid } }, verified);
check(query.code === '10000' && query.tradeStatus === 'TRADE_SUCCESS', 'trade.query shows TRADE_SUCCESS', query);

const refund = await sdk.exec('alipay.trade.refund', {
  bizContent: { outTradeNo: paid, refundAmount: '10.00', outRequestNo: 'r1' },
}, verified);
check(refund.code === '10000' && refund.fundChange === 'Y' && refund.refundFee === '10.00', 'trade.refund refunds 10.00', refund);
const again = await sdk.exec('alipay.trade.refund', {
  bizContent: { outTradeNo: paid, refundAmount: '10.00', outRequestNo: 'r1' },
}, verified);
check(again.code === '10000' && again.fundChange === 'N' && again.refundFee === '10.00', 'a repeated refund moves no money', again);

// A buyer who never confirms: the cancel closes the trade.
const pending = `sdk${run}b`;
const waiting = await sdk.exec('alipay.trade.pay', {
  bizContent: { outTradeNo: pending, scene: 'bar_code', authCode: '281234567890123461', subject: 'Tea', totalAmount: '5.00' },
}, verified);
check(waiting.code === '10003', 'trade.pay answers 10003 while the buyer confirms', waiting);
const cancel = await sdk.exec('alipay.trade.cancel', { bizContent: { outTradeNo: pending } }, verified);
check(cancel.code === '10000' && cancel.action === 'close' && cancel.retryFlag === 'N', 'trade.cancel closes it', cancel);
const cancelPaid = await sdk.exec('alipay.trade.cancel', { bizContent: { outTradeNo: paid } }, verified);
check(cancelPaid.code === '10000' && cancelPaid.action === 'refund', 'trade.cancel of a paid trade refunds it', cancelPaid);

// An order QR code; the sandbox's hook plays the buyer who scans and pays it.
const order = `sdk${run}c`;
const precreate = await sdk.exec('alipay.trade.precreate', {
  notifyUrl,
  bizContent: { outTradeNo: order, subject: 'Table 4', totalAmount: '42.00' },
}, verified);
check(precreate.code === '10000' && precreate.qrCode.startsWith('https://qr.alipay.com/'), 'trade.precreate gives a QR code', precreate);
const scan = await fetch(`${SANDBOX_URL}/sandbox/qr/scan`, {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ qr_code: precreate.qrCode }),
});
check(scan.status === 200, 'the buyer scans and pays', await scan.text());

for (const outTradeNo of [paid, order]) {
  const notification = await nextNotification(outTradeNo);
  check(sdk.checkNotifySignV2(notification), `checkNotifySignV2 accepts the notification of ${outTradeNo}`, notification);
  check(!sdk.checkNotifySignV2({ ...notification, total_amount: '0.01' }), 'a tampered notification is refused', notification);
}

// Verification is real: the same SDK with another Alipay public key refuses the answer.
const other = new AlipaySdk({
  appId: APP_ID,
  privateKey: APP_PRIVATE_KEY,
  alipayPublicKey: process.env.APP_PUBLIC_KEY,
  gateway: `${SANDBOX_URL}/gateway.do`,
  signType: 'RSA2',
});
let refused = false;
try {
  await other.exec('alipay.trade.query', { bizContent: { outTradeNo: paid } }, verified);
} catch (err) {
  refused = /验签失败/.test(err.message);
}
check(refused, 'an answer checked against the wrong public key is refused', refused);

receiver.close();
console.log('all official SDK checks passed');

