#!/usr/bin/env python3
"""A merchant's webhook receiver (guide §11): verifies each delivery's signature, deduplicates on
delivery_id, answers 204 at once. Python 3.8+, standard library only.

    ACQ_WEBHOOK_SECRET=... ACQ_TENANT_ID=... python3 webhook_receiver.py [port]

Register its URL (as ops set it: `tenants update SLUG --webhook-url https://…/hooks/alipay`) and
put it behind your TLS terminator. The first line printed is the address it listens on; then one
line per event it accepts. The guide: docs/partner-api.md.
"""

import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = os.environ["ACQ_WEBHOOK_SECRET"]
TENANT_ID = os.environ["ACQ_TENANT_ID"]
WINDOW = 300  # seconds, as the gateway allows its own callers
HEADER = re.compile(
    r"ACQ1-HMAC-SHA256 Credential=([^,]+), Timestamp=(\d{1,12}), Nonce=([A-Za-z0-9_-]{8,64}), Signature=([0-9a-f]{64})"
)

lock = threading.Lock()
nonces = {}  # nonce -> when it was accepted: replays within the window are refused
delivered = set()  # delivery ids handled (keep these in your database)


def verify(secret, tenant_id, path_and_query, authorization, body):
    """Whether the request was signed by the gateway with this tenant's webhook secret."""
    m = HEADER.fullmatch(authorization or "")
    if not m or m[1] != tenant_id or abs(time.time() - int(m[2])) > WINDOW:
        return False
    text = "\n".join(["ACQ1-HMAC-SHA256", "POST", path_and_query, m[2], m[3], hashlib.sha256(body).hexdigest()])
    expected = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, m[4]):
        return False
    with lock:
        now = time.time()
        for old in [n for n, at in nonces.items() if now - at > 2 * WINDOW]:
            del nonces[old]
        if m[3] in nonces:
            return False
        nonces[m[3]] = now
    return True


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        # self.path is the request target as sent: the path and query of the registered URL.
        if not verify(SECRET, TENANT_ID, self.path, self.headers.get("Authorization"), body):
            self.send_response(401)
            self.end_headers()
            return
        event = json.loads(body)
        with lock:
            first = event["delivery_id"] not in delivered
            delivered.add(event["delivery_id"])
        self.send_response(204)  # any 2xx within 10 s: delivered
        self.end_headers()
        if first:  # handle it after answering; a repeat of a handled delivery is only acknowledged
            print(f"verified {self.headers['acq-event']} {event['out_trade_no']} {body.decode()}", flush=True)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Receiver)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/hooks/alipay", flush=True)
    server.serve_forever()
