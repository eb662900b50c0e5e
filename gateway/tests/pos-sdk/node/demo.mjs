// The dev stack's front-door demo (deploy/dev up runs it): one payment made through Alipay's
// official Node.js SDK, unchanged, against the gateway's front door, with the credentials
// `deploy/dev up` wrote for the noodle-bar demo tenant into .dev/stack.json (its `front_door`).
// The SDK signs with the POS's key and verifies the answer with the front door's public key, as it
// would Alipay's. Usage: node demo.mjs path/to/stack.json

import { readFileSync } from 'node:fs';
import { AlipaySdk } from 'alipay-sdk';

const stack = JSON.parse(readFileSync(process.argv[2] ?? '.dev/stack.json', 'utf8'));
const tenant = stack.tenants.find((t) => t.slug === 'noodle-bar');
const door = tenant?.front_door;
if (!door?.app_id) {
  console.error('noodle-bar has no front door in stack.json: run deploy/dev up');
  process.exit(1);
}

const sdk = new AlipaySdk({
  gateway: door.gateway_url,
  appId: door.app_id,
  privateKey: door.app_private_key,
  alipayPublicKey: door.alipay_public_key,
  signType: door.sign_type,
  timeout: 10000,
});
const outTradeNo = `demo-sdk-${Date.now()}`;
const started = Date.now();
const pay = await sdk.exec('alipay.trade.pay', {
  bizContent: {
    outTradeNo, scene: 'bar_code', authCode: '281234567890123400', subject: 'Noodles (official SDK)', totalAmount: '26.00',
  },
}, { validateSign: true });
const took = Date.now() - started;
const shown = `code=${pay.code} trade_no=${pay.tradeNo} total_amount=${pay.totalAmount}`;
console.log(`  ${'alipay.trade.pay via alipay-sdk, signature verified'.padEnd(52)} ${shown}  (${took} ms)`);
const query = await sdk.exec('alipay.trade.query', { bizContent: { outTradeNo } }, { validateSign: true });
console.log(`  ${'alipay.trade.query'.padEnd(52)} code=${query.code} trade_status=${query.tradeStatus}`);
if (pay.code !== '10000' || query.tradeStatus !== 'TRADE_SUCCESS') process.exit(1);
