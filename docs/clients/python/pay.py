#!/usr/bin/env python3
"""Take a barcode payment through the partner API and read it back: Python 3.8+, standard library only.

    ACQ_BASE_URL=https://api.acquirer.example.com ACQ_KEY_ID=ak_... ACQ_SECRET=... python3 pay.py

Optional: ACQ_OUT_TRADE_NO (default: a new one), ACQ_AUTH_CODE (the scanned barcode; default: one
the sandbox pays at once), ACQ_AMOUNT (default 0.01). Exit status 0 when the payment is SUCCESS.
The guide: docs/partner-api.md.
"""

import hashlib
import hmac
import json
import os
import secrets
import sys
import time
import urllib.error
import urllib.request

BASE_URL = os.environ["ACQ_BASE_URL"].rstrip("/")
KEY_ID = os.environ["ACQ_KEY_ID"]
SECRET = os.environ["ACQ_SECRET"]


def authorization(method, path_and_query, body):
    """The Authorization header of one request (guide §2): a new nonce and the current time."""
    timestamp = str(int(time.time()))
    nonce = secrets.token_hex(16)
    string_to_sign = "\n".join(
        ["ACQ1-HMAC-SHA256", method, path_and_query, timestamp, nonce, hashlib.sha256(body).hexdigest()]
    )
    signature = hmac.new(SECRET.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    return f"ACQ1-HMAC-SHA256 Credential={KEY_ID}, Timestamp={timestamp}, Nonce={nonce}, Signature={signature}"


def call(method, path_and_query, payload=None, attempts=4):
    """Sends one call, signed afresh on every attempt; retries what the gateway says is retryable
    (after Retry-After) and calls that got no answer (every call here is idempotent).
    Answers (HTTP status, JSON body)."""
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    for attempt in range(1, attempts + 1):
        request = urllib.request.Request(BASE_URL + path_and_query, data=body or None, method=method)
        request.add_header("Authorization", authorization(method, path_and_query, body))
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30 + 60) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
            try:
                problem = json.loads(text)
            except ValueError:  # not the gateway's answer (a proxy's): a 5xx may be sent again
                problem = {"detail": text.decode(errors="replace"), "retryable": status >= 500}
            if not problem.get("retryable") or attempt == attempts:
                return status, problem
            wait = float(error.headers.get("Retry-After") or 2 ** (attempt - 1))
        except OSError:  # no answer: connection refused or reset, timeout
            if attempt == attempts:
                raise
            wait = 2 ** (attempt - 1)
        time.sleep(wait)


def show(method, path_and_query, status, answer):
    print(f"{method} {path_and_query} -> {status} {json.dumps(answer, separators=(',', ':'))}", flush=True)


def main():
    out_trade_no = os.environ.get("ACQ_OUT_TRADE_NO") or f"py-{int(time.time() * 1000)}"
    payment = {
        "out_trade_no": out_trade_no,
        "auth_code": os.environ.get("ACQ_AUTH_CODE") or "281234567890123400",
        "amount": os.environ.get("ACQ_AMOUNT") or "0.01",
        "subject": "Beef noodles",
        "store_id": "S1",
    }
    status, answer = call("POST", "/v1/payments", payment)
    show("POST", "/v1/payments", status, answer)
    if status != 200:
        return 2
    # The payment as the gateway holds it; an UNKNOWN one is held until final (at most 30 s).
    path = f"/v1/payments/{out_trade_no}?wait=30"
    status, answer = call("GET", path)
    show("GET", path, status, answer)
    if status == 200 and answer["status"] == "UNKNOWN":
        # Still not final: give up on it (closed if unpaid, given back if paid). Never leave it
        # and start another payment for the same sale.
        path = f"/v1/payments/{out_trade_no}/cancel"
        status, answer = call("POST", path)
        show("POST", path, status, answer)
    return 0 if status == 200 and answer["status"] == "SUCCESS" else 1


if __name__ == "__main__":
    sys.exit(main())
