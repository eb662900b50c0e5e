#!/usr/bin/env python3
"""A restaurant POS written on Alipay's official Python SDK, pointed at any Alipay-compatible gateway.do.

SDK: `alipay-sdk-python` 3.7.1411 (module `alipay.aop.api`), Alipay's own Python SDK, chosen
over the community `python-alipay-sdk` because POS software written "on Alipay's SDK" in Python
uses this one, so it is what the gateway's front door has to satisfy. It installs and runs on
Python 3 (pure Python; needs `rsa` and `pycryptodome`). Used exactly as a POS uses it:
DefaultAlipayClient.execute with the typed request and model classes and `alipay_public_key`
set, so every answer's signature is verified by the SDK (it raises on a bad one); notifications
are verified with the SDK's own SignatureUtils (get_sign_content + verify_with_rsa), the check
Alipay's documentation gives for this SDK. This script signs and verifies nothing itself.

One defect of the SDK is worked around, in transport only: WebUtils.get_http_connection always
connects to port 80 (443 for https) and crashes (`str + int`) when the gateway URL names a port,
so as shipped the SDK cannot reach http://127.0.0.1:8090/gateway.do. When ALIPAY_GATEWAY names a
port, `_sdk_port_fix` below replaces that one function with one that keeps the port; the request
the SDK sends is otherwise byte for byte the same (an absolute-form request target, the query
string holding the common parameters and the signature, the form body holding biz_content and
the rest). With a port-less URL (Alipay's own, or a front door on 443) the SDK runs unpatched.
(A POS on this SDK therefore needs the front door on the default port of its scheme.)

Environment (the Node POS in ../node reads the same):
  ALIPAY_GATEWAY     the full gateway.do URL
  APP_ID             the app id the POS signs as
  APP_PRIVATE_KEY    the app private key, PKCS#1: PEM ("BEGIN RSA PRIVATE KEY") or bare base64
                     (as Alipay's key tool writes it); the SDK takes no PKCS#8
  ALIPAY_PUBLIC_KEY  "Alipay's" public key, bare base64 SPKI (as Alipay's console shows it)
  SIGN_TYPE          RSA2 (default) or RSA
  SANDBOX_URL        the Alipay sandbox's base URL, for the buyer's side (POST /sandbox/qr/scan,
                     POST /sandbox/oauth/codes)
  UPSTREAM_APP_ID    the app id the sandbox knows the merchant by (default APP_ID)
  QUERY_INTERVAL_MS  the POS's query loop interval (default 5000), QUERY_ROUNDS (default 12)
  GIVE_UP_ROUNDS     queries before the POS gives up on a buyer who never pays (default 2)
  RUN_ID             prefix of every out_trade_no (default: from the clock)
  NOTIFY_HOST        the address the POS's notify_url listens on (default 127.0.0.1)
  NOTIFY_TIMEOUT_MS  how long to wait for a notification (default 20000)
  SDK_TIMEOUT_MS     the SDK's HTTP timeout (default 15000)
HTTPS: the SDK checks certificates with Python's default context; for a test CA set SSL_CERT_FILE.

Prints `ok   <what>` per check and exits 1 at the first `FAIL <what>: <detail>`; the last line of
a good run is `all POS SDK checks passed`. Run it with the venv that ../install makes:
python/.venv/bin/python python/pos.py
"""

import http.client
import http.server
import json
import os
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.constant.ParamConstants import P_METHOD
from alipay.aop.api.domain.AlipayTradeCancelModel import AlipayTradeCancelModel
from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel
from alipay.aop.api.domain.AlipayTradePayModel import AlipayTradePayModel
from alipay.aop.api.domain.AlipayTradePrecreateModel import AlipayTradePrecreateModel
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel
from alipay.aop.api.request.AlipaySystemOauthTokenRequest import AlipaySystemOauthTokenRequest
from alipay.aop.api.request.AlipayTradeCancelRequest import AlipayTradeCancelRequest
from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import AlipayTradeFastpayRefundQueryRequest
from alipay.aop.api.request.AlipayTradePayRequest import AlipayTradePayRequest
from alipay.aop.api.request.AlipayTradePrecreateRequest import AlipayTradePrecreateRequest
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest
from alipay.aop.api.response.AlipayResponse import AlipayResponse
from alipay.aop.api.response.AlipaySystemOauthTokenResponse import AlipaySystemOauthTokenResponse
from alipay.aop.api.response.AlipayTradeCancelResponse import AlipayTradeCancelResponse
from alipay.aop.api.response.AlipayTradeFastpayRefundQueryResponse import AlipayTradeFastpayRefundQueryResponse
from alipay.aop.api.response.AlipayTradePayResponse import AlipayTradePayResponse
from alipay.aop.api.response.AlipayTradePrecreateResponse import AlipayTradePrecreateResponse
from alipay.aop.api.response.AlipayTradeQueryResponse import AlipayTradeQueryResponse
from alipay.aop.api.response.AlipayTradeRefundResponse import AlipayTradeRefundResponse
from alipay.aop.api.util import WebUtils
from alipay.aop.api.util.SignatureUtils import get_sign_content, verify_with_rsa
from Crypto.PublicKey import RSA


def fail(what, detail):
    if not isinstance(detail, str):
        detail = json.dumps(detail, ensure_ascii=False, default=str)
    print(f"FAIL {what}: {detail}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(condition, what, detail):
    if not condition:
        fail(what, detail)
    print(f"ok   {what}", flush=True)


def env(name, default=None):
    value = os.environ.get(name, "")
    if value:
        return value
    if default is None:
        fail("environment", f"{name} is not set")
    return default


def env_int(name, default):
    try:
        value = int(env(name, str(default)))
    except ValueError:
        value = -1
    if value < 0:
        fail("environment", f"{name} must be a number")
    return value


GATEWAY = env("ALIPAY_GATEWAY")
APP_ID = env("APP_ID")
APP_PRIVATE_KEY = env("APP_PRIVATE_KEY")
ALIPAY_PUBLIC_KEY = env("ALIPAY_PUBLIC_KEY")
SIGN_TYPE = env("SIGN_TYPE", "RSA2")
SANDBOX_URL = env("SANDBOX_URL").rstrip("/")
UPSTREAM_APP_ID = env("UPSTREAM_APP_ID", APP_ID)
QUERY_INTERVAL_MS = env_int("QUERY_INTERVAL_MS", 5000)
QUERY_ROUNDS = env_int("QUERY_ROUNDS", 12)
GIVE_UP_ROUNDS = env_int("GIVE_UP_ROUNDS", 2)
RUN_ID = env("RUN_ID", f"p{int(time.time() * 1000):x}{secrets.token_hex(2)}")
NOTIFY_HOST = env("NOTIFY_HOST", "127.0.0.1")
NOTIFY_TIMEOUT_MS = env_int("NOTIFY_TIMEOUT_MS", 20000)
SDK_TIMEOUT_MS = env_int("SDK_TIMEOUT_MS", 15000)
if SIGN_TYPE not in ("RSA2", "RSA"):
    fail("environment", "SIGN_TYPE must be RSA2 or RSA")
if "BEGIN PRIVATE KEY" in APP_PRIVATE_KEY:
    fail("environment", "APP_PRIVATE_KEY is PKCS#8; this SDK takes PKCS#1 (PEM or bare base64)")

# Test buyers' barcodes: 18 digits starting 28; the last two pick what the sandbox's buyer does.
BUYER_PAYS = "281234567890123400"
BUYER_BALANCE_NOT_ENOUGH = "281234567890123450"
BUYER_PAYS_LATER = "281234567890123460"
BUYER_NEVER_PAYS = "281234567890123461"


def out_trade_no(what):
    return f"{RUN_ID}_{what}"


# ---- the SDK, and its one transport defect (see the header).
_sdk_get_http_connection = WebUtils.get_http_connection


def _sdk_port_fix(url, query_string, timeout):
    parsed = urllib.parse.urlparse(url)
    if parsed.port is None:
        return _sdk_get_http_connection(url, query_string, timeout)
    if parsed.scheme == "https":
        connection = http.client.HTTPSConnection(host=parsed.hostname, port=parsed.port, timeout=timeout)
    else:
        connection = http.client.HTTPConnection(host=parsed.hostname, port=parsed.port, timeout=timeout)
    target = f"{parsed.scheme}://{parsed.hostname}:{parsed.port}{parsed.path}?{query_string}"
    return target, connection


SDK_PORT_FIX = urllib.parse.urlparse(GATEWAY).port is not None
if SDK_PORT_FIX:
    WebUtils.get_http_connection = _sdk_port_fix


def new_client(private_key):
    config = AlipayClientConfig()
    config.server_url = GATEWAY
    config.app_id = APP_ID
    config.app_private_key = private_key
    config.alipay_public_key = ALIPAY_PUBLIC_KEY
    config.sign_type = SIGN_TYPE
    config.timeout = SDK_TIMEOUT_MS / 1000
    return DefaultAlipayClient(alipay_client_config=config)


client = new_client(APP_PRIVATE_KEY)


def call(what, request, response_class, sdk=None):
    """One OpenAPI call; the SDK verifies the answer's signature (and raises if it does not verify)."""
    try:
        content = (sdk or client).execute(request)
    except Exception as error:  # the SDK raises RequestException / ResponseException (and TypeError on non-200)
        fail(what, f"{type(error).__name__}: {error}")
    response = response_class()
    response.parse_response_content(content)
    return response


def refusal(request, sdk=None):
    """A call expected to be refused: verified like any answer; if the SDK raises, the refusal is
    read from the raw answer in the exception's text. Returns (code, sub_code, body, note)."""
    try:
        content = (sdk or client).execute(request)
        response = AlipayResponse()
        response.parse_response_content(content)
        return response.code, response.sub_code, response.body, "answer verified"
    except Exception as error:
        text = str(error)
        start = text.find("{")
        try:
            answer = json.loads(text[start:]) if start >= 0 else {}
        except ValueError:
            answer = {}
        member = next((v for k, v in answer.items() if k.endswith("_response") and isinstance(v, dict)), {})
        return member.get("code"), member.get("sub_code"), text, f"the SDK raised {type(error).__name__}"


def pay_request(no, auth_code, subject, amount, notify_url=None):
    model = AlipayTradePayModel()
    model.out_trade_no = no
    model.scene = "bar_code"
    model.auth_code = auth_code
    model.subject = subject
    model.total_amount = amount
    request = AlipayTradePayRequest(biz_model=model)
    if notify_url:
        request.notify_url = notify_url
    return request


def query_request(no):
    model = AlipayTradeQueryModel()
    model.out_trade_no = no
    return AlipayTradeQueryRequest(biz_model=model)


def query(what, no):
    return call(what, query_request(no), AlipayTradeQueryResponse)


def cancel(what, no):
    """Alipay's prescribed cancel: repeated while it answers retry_flag=Y (bounded)."""
    model = AlipayTradeCancelModel()
    model.out_trade_no = no
    for _ in range(6):
        response = call(what, AlipayTradeCancelRequest(biz_model=model), AlipayTradeCancelResponse)
        if response.retry_flag != "Y":
            return response
        time.sleep(min(QUERY_INTERVAL_MS, 2000) / 1000)
    return response


def hook(path, body):
    request = urllib.request.Request(
        f"{SANDBOX_URL}{path}", data=json.dumps(body).encode(), headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())
    except urllib.error.HTTPError as error:
        fail(f"sandbox hook {path}", f"HTTP {error.code}: {error.read().decode(errors='replace')}")
    except OSError as error:
        fail(f"sandbox hook {path}", str(error))


# ---- the POS's notify_url: verifies with the SDK's utilities, then answers `success`.
def check_notify_sign(params):
    """Alipay's documented notification check for this SDK: drop sign and sign_type, sort, verify."""
    params = dict(params)
    sign = params.pop("sign", None)
    params.pop("sign_type", None)
    if not sign:
        return False
    try:
        return verify_with_rsa(ALIPAY_PUBLIC_KEY, get_sign_content(params).encode("utf-8"), sign)
    except Exception:  # rsa.VerificationError, or a malformed sign
        return False


notifications = []
notified = threading.Condition()


class NotifyHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (the stdlib's name)
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8")
        params = dict(urllib.parse.parse_qsl(body, keep_blank_values=True, encoding="utf-8"))
        verified = check_notify_sign(params)
        with notified:
            notifications.append((params, verified))
            notified.notify_all()
        answer = b"success" if verified else b"fail"
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


receiver = http.server.ThreadingHTTPServer((NOTIFY_HOST, 0), NotifyHandler)
receiver.daemon_threads = True
threading.Thread(target=receiver.serve_forever, daemon=True).start()
NOTIFY_URL = f"http://{NOTIFY_HOST}:{receiver.server_address[1]}/alipay/notify"


def paid_notification(no):
    def find():
        return next(
            (n for n in notifications if n[0].get("out_trade_no") == no and n[0].get("trade_status") in ("TRADE_SUCCESS", "TRADE_FINISHED")),
            None,
        )

    with notified:
        notified.wait_for(find, timeout=NOTIFY_TIMEOUT_MS / 1000)
        return find()


def check_notification(no, amount):
    got = paid_notification(no)
    seen = [f"{n[0].get('out_trade_no')}/{n[0].get('trade_status')}" for n in notifications]
    check(got, f"the notification of {no} arrives at notify_url", {"waited_ms": NOTIFY_TIMEOUT_MS, "seen": seen})
    params, verified = got
    check(verified and check_notify_sign(params), f"verify_with_rsa accepts the notification of {no}", params)
    check(
        params.get("app_id") == APP_ID and params.get("total_amount") == amount and params.get("trade_no"),
        f"the notification of {no} names app {APP_ID}, amount {amount} and a trade_no",
        params,
    )
    check(not check_notify_sign({**params, "total_amount": "0.01"}), f"verify_with_rsa refuses a tampered copy of {no}'s", params)


def main():
    if SDK_PORT_FIX:
        print("note the gateway URL names a port: the SDK's get_http_connection is replaced (see the header)", flush=True)

    # ---- a. barcode pay, paid at once (with a notify_url).
    paid = out_trade_no("paid")
    pay = call("a. trade.pay", pay_request(paid, BUYER_PAYS, "Table 7: 2x noodles", "88.88", NOTIFY_URL), AlipayTradePayResponse)
    check(
        pay.code == "10000" and pay.trade_no and pay.total_amount == "88.88" and pay.out_trade_no == paid,
        "a. trade.pay of a buyer who pays answers 10000 with trade_no and total_amount 88.88",
        pay.body,
    )

    # ---- f. query of (a).
    q = query("f. trade.query", paid)
    check(
        q.code == "10000" and q.trade_status == "TRADE_SUCCESS" and q.total_amount == "88.88" and q.trade_no == pay.trade_no,
        "f. trade.query of (a) shows TRADE_SUCCESS, 88.88, the same trade_no",
        q.body,
    )

    # ---- the notification of (a).
    check_notification(paid, "88.88")

    # ---- g. partial refunds on (a).
    def refund(out_request_no, amount):
        model = AlipayTradeRefundModel()
        model.out_trade_no = paid
        model.refund_amount = amount
        model.out_request_no = out_request_no
        model.refund_reason = "dish returned"
        return call(f"g. trade.refund {out_request_no}", AlipayTradeRefundRequest(biz_model=model), AlipayTradeRefundResponse)

    r1 = refund("r1", "10.00")
    check(
        r1.code == "10000" and r1.fund_change == "Y" and r1.refund_fee == "10.00",
        "g. trade.refund r1 of 10.00 answers 10000, fund_change Y, refund_fee 10.00",
        r1.body,
    )
    again = refund("r1", "10.00")
    check(
        again.code == "10000" and again.fund_change == "N" and again.refund_fee == "10.00",
        "g. the same refund r1 again answers fund_change N, refund_fee still 10.00",
        again.body,
    )
    r2 = refund("r2", "5.00")
    check(r2.code == "10000" and r2.fund_change == "Y" and r2.refund_fee == "15.00", "g. a second refund r2 of 5.00 answers refund_fee 15.00", r2.body)

    # ---- h. refund query of r1.
    model = AlipayTradeFastpayRefundQueryModel()
    model.out_trade_no = paid
    model.out_request_no = "r1"
    rq = call("h. trade.fastpay.refund.query", AlipayTradeFastpayRefundQueryRequest(biz_model=model), AlipayTradeFastpayRefundQueryResponse)
    check(
        rq.code == "10000" and rq.refund_amount == "10.00" and rq.refund_status in (None, "REFUND_SUCCESS"),
        "h. trade.fastpay.refund.query of r1 shows refund_amount 10.00" + (", REFUND_SUCCESS" if rq.refund_status else ""),
        rq.body,
    )

    # ---- b. pay refused.
    poor = call("b. trade.pay", pay_request(out_trade_no("poor"), BUYER_BALANCE_NOT_ENOUGH, "Tea", "12.00"), AlipayTradePayResponse)
    check(
        poor.code == "40004" and poor.sub_code == "ACQ.BUYER_BALANCE_NOT_ENOUGH",
        "b. trade.pay of a buyer without the balance answers 40004 ACQ.BUYER_BALANCE_NOT_ENOUGH",
        poor.body,
    )

    # ---- c. pay "in process": the POS's own query loop, as Alipay's docs prescribe.
    later = out_trade_no("later")
    in_process = call("c. trade.pay", pay_request(later, BUYER_PAYS_LATER, "Dumplings", "23.50"), AlipayTradePayResponse)
    check(in_process.code in ("10003", "20000"), f"c. trade.pay of a buyer still confirming answers {in_process.code} (in process)", in_process.body)
    settled = None
    for round_no in range(1, QUERY_ROUNDS + 1):
        time.sleep(QUERY_INTERVAL_MS / 1000)
        q = query("c. trade.query loop", later)
        if q.code == "10000" and q.trade_status == "TRADE_SUCCESS":
            settled = (round_no, q)
            break
        if q.code == "10000" and q.trade_status != "WAIT_BUYER_PAY":
            fail("c. trade.query loop", q.body)
        if q.code != "10000" and q.sub_code not in ("ACQ.TRADE_NOT_EXIST", "ACQ.SYSTEM_ERROR"):
            fail("c. trade.query loop", q.body)
    if not settled:
        cancel("c. trade.cancel after the loop", later)
        fail("c. the query loop", f"no TRADE_SUCCESS within {QUERY_ROUNDS} rounds of {QUERY_INTERVAL_MS} ms (cancelled)")
    check(settled[1].total_amount == "23.50", f"c. the query loop sees TRADE_SUCCESS at round {settled[0]} (every {QUERY_INTERVAL_MS} ms)", settled[1].body)

    # ---- d. a buyer who never pays: the POS gives up and cancels (close).
    never = out_trade_no("never")
    waiting = call("d. trade.pay", pay_request(never, BUYER_NEVER_PAYS, "Soup", "9.90"), AlipayTradePayResponse)
    check(waiting.code in ("10003", "20000"), f"d. trade.pay of a buyer who never confirms answers {waiting.code} (in process)", waiting.body)
    for round_no in range(1, GIVE_UP_ROUNDS + 1):
        time.sleep(QUERY_INTERVAL_MS / 1000)
        q = query("d. trade.query loop", never)
        unpaid = (q.code == "10000" and q.trade_status == "WAIT_BUYER_PAY") or (
            q.code != "10000" and q.sub_code in ("ACQ.TRADE_NOT_EXIST", "ACQ.SYSTEM_ERROR")
        )
        if not unpaid:
            fail(f"d. trade.query round {round_no} still unpaid", q.body)
    print(f"ok   d. still unpaid after {GIVE_UP_ROUNDS} rounds of {QUERY_INTERVAL_MS} ms", flush=True)
    closed = cancel("d. trade.cancel", never)
    check(closed.code == "10000" and closed.action == "close", "d./i. trade.cancel of the unpaid trade answers 10000, action close", closed.body)
    q = query("d. trade.query after the cancel", never)
    check(
        (q.code == "10000" and q.trade_status == "TRADE_CLOSED") or q.sub_code == "ACQ.TRADE_NOT_EXIST",
        f"d. trade.query after the cancel shows {q.trade_status or q.sub_code}",
        q.body,
    )

    # ---- e. an order QR code: the buyer scans and pays it; the POS hears the notification and queries.
    order = out_trade_no("qr")
    model = AlipayTradePrecreateModel()
    model.out_trade_no = order
    model.subject = "Table 4: hot pot"
    model.total_amount = "42.00"
    request = AlipayTradePrecreateRequest(biz_model=model)
    request.notify_url = NOTIFY_URL
    precreate = call("e. trade.precreate", request, AlipayTradePrecreateResponse)
    check(precreate.code == "10000" and precreate.qr_code, "e. trade.precreate answers a qr_code", precreate.body)
    hook("/sandbox/qr/scan", {"qr_code": precreate.qr_code})
    print("ok   e. the buyer scans and pays the QR code (sandbox hook)", flush=True)
    check_notification(order, "42.00")
    q = query("e. trade.query", order)
    check(q.code == "10000" and q.trade_status == "TRADE_SUCCESS" and q.total_amount == "42.00", "e. trade.query of the QR order shows TRADE_SUCCESS", q.body)

    # ---- i. cancel of a paid trade refunds it.
    oops = out_trade_no("oops")
    oops_pay = call("i. trade.pay", pay_request(oops, BUYER_PAYS, "Wrong table", "18.00"), AlipayTradePayResponse)
    check(oops_pay.code == "10000", "i. trade.pay of a second paid trade answers 10000", oops_pay.body)
    reversed_ = cancel("i. trade.cancel", oops)
    check(reversed_.code == "10000" and reversed_.action == "refund", "i. trade.cancel of the paid trade answers 10000, action refund", reversed_.body)
    q = query("i. trade.query after the cancel", oops)
    check(q.code == "10000" and q.trade_status == "TRADE_CLOSED", "i. trade.query after the cancel shows TRADE_CLOSED", q.body)

    # ---- j. oauth: the buyer authorises the app; the POS exchanges the code.
    issued = hook("/sandbox/oauth/codes", {"app_id": UPSTREAM_APP_ID})
    request = AlipaySystemOauthTokenRequest()
    request.grant_type = "authorization_code"
    request.code = issued["code"]
    token = call("j. system.oauth.token", request, AlipaySystemOauthTokenResponse)
    check(
        token.user_id == issued["user_id"] and token.access_token and not token.code,
        "j. system.oauth.token exchanges the auth code for user_id and access_token",
        {"token": token.body, "issued": issued},
    )

    # ---- k. a forged request: the same SDK with a private key nobody registered.
    forged_key = RSA.generate(2048).export_key(format="PEM", pkcs=1).decode()
    code, sub_code, body, note = refusal(query_request(paid), sdk=new_client(forged_key))
    check(
        code == "40002" and sub_code == "isv.invalid-signature",
        f"k. a request signed with another key is refused: 40002 isv.invalid-signature ({note})",
        body,
    )

    # ---- l. an unknown method (the SDK has no class for it; a POS subclasses one, as here).
    class UnknownMethodRequest(AlipayTradeQueryRequest):
        def get_params(self):
            params = super().get_params()
            params[P_METHOD] = "alipay.trade.nonexistent"
            return params

    model = AlipayTradeQueryModel()
    model.out_trade_no = paid
    code, sub_code, body, note = refusal(UnknownMethodRequest(biz_model=model))
    check(code == "40002" and sub_code == "isv.invalid-method", f"l. an unknown method is refused: 40002 isv.invalid-method ({note})", body)

    with notified:
        invalid = [n[0] for n in notifications if not n[1]]
        count = len(notifications)
    check(not invalid, f"every notification received ({count}) verifies", invalid)
    receiver.shutdown()
    receiver.server_close()
    print("all POS SDK checks passed", flush=True)


if __name__ == "__main__":
    main()
