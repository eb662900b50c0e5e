// Take a barcode payment through the partner API and read it back: Node 18+, no dependencies.
//
//   ACQ_BASE_URL=https://api.acquirer.example.com ACQ_KEY_ID=ak_... ACQ_SECRET=... node pay.mjs
//
// Optional: ACQ_OUT_TRADE_NO (default: a new one), ACQ_AUTH_CODE (the scanned barcode; default:
// one the sandbox pays at once), ACQ_AMOUNT (default 0.01). Exit status 0 when the payment is
// SUCCESS. The guide: docs/partner-api.md.

import { createHash, createHmac, randomBytes } from "node:crypto";

const BASE_URL = process.env.ACQ_BASE_URL.replace(/\/+$/, "");
const KEY_ID = process.env.ACQ_KEY_ID;
const SECRET = process.env.ACQ_SECRET;

/** The Authorization header of one request (guide §2): a new nonce and the current time. */
function authorization(method, pathAndQuery, body) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(16).toString("hex");
  const bodyHash = createHash("sha256").update(body).digest("hex");
  const stringToSign = ["ACQ1-HMAC-SHA256", method, pathAndQuery, timestamp, nonce, bodyHash].join("\n");
  const signature = createHmac("sha256", SECRET).update(stringToSign).digest("hex");
  return `ACQ1-HMAC-SHA256 Credential=${KEY_ID}, Timestamp=${timestamp}, Nonce=${nonce}, Signature=${signature}`;
}

const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

/**
 * Sends one call, signed afresh on every attempt; retries what the gateway says is retryable
 * (after Retry-After) and calls that got no answer (every call here is idempotent).
 * Answers [HTTP status, JSON body].
 */
async function call(method, pathAndQuery, payload, attempts = 4) {
  const body = Buffer.from(payload === undefined ? "" : JSON.stringify(payload), "utf8");
  for (let attempt = 1; ; attempt++) {
    let wait;
    try {
      const response = await fetch(BASE_URL + pathAndQuery, {
        method,
        headers: { authorization: authorization(method, pathAndQuery, body), "content-type": "application/json" },
        body: method === "GET" ? undefined : body,
        signal: AbortSignal.timeout((30 + 60) * 1000),
      });
      const text = await response.text();
      let answer;
      try {
        answer = JSON.parse(text);
      } catch {
        // Not the gateway's answer (a proxy's): a 5xx may be sent again.
        answer = { detail: text, retryable: response.status >= 500 };
      }
      if (response.ok || !answer.retryable || attempt === attempts) return [response.status, answer];
      wait = Number(response.headers.get("retry-after")) || 2 ** (attempt - 1);
    } catch (error) {
      // No answer: connection refused or reset, timeout.
      if (attempt === attempts) throw error;
      wait = 2 ** (attempt - 1);
    }
    await sleep(wait);
  }
}

function show(method, pathAndQuery, status, answer) {
  console.log(`${method} ${pathAndQuery} -> ${status} ${JSON.stringify(answer)}`);
}

async function main() {
  const outTradeNo = process.env.ACQ_OUT_TRADE_NO || `node-${Date.now()}`;
  const payment = {
    out_trade_no: outTradeNo,
    auth_code: process.env.ACQ_AUTH_CODE || "281234567890123400",
    amount: process.env.ACQ_AMOUNT || "0.01",
    subject: "Beef noodles",
    store_id: "S1",
  };
  let [status, answer] = await call("POST", "/v1/payments", payment);
  show("POST", "/v1/payments", status, answer);
  if (status !== 200) return 2;
  // The payment as the gateway holds it; an UNKNOWN one is held until final (at most 30 s).
  let path = `/v1/payments/${outTradeNo}?wait=30`;
  [status, answer] = await call("GET", path);
  show("GET", path, status, answer);
  if (status === 200 && answer.status === "UNKNOWN") {
    // Still not final: give up on it (closed if unpaid, given back if paid). Never leave it and
    // start another payment for the same sale.
    path = `/v1/payments/${outTradeNo}/cancel`;
    [status, answer] = await call("POST", path);
    show("POST", path, status, answer);
  }
  return status === 200 && answer.status === "SUCCESS" ? 0 : 1;
}

process.exitCode = await main();
