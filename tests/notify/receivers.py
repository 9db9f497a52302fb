"""Local receivers that behave like the real services, for the notification tests.

* :class:`DingTalkRobotServer`: checks the signed mode exactly as DingTalk does (``timestamp`` within an hour of
  its clock; ``sign`` = URL-decoded base64 HMAC-SHA256 of ``timestamp + "\\n" + secret``) or the keyword mode,
  and answers with DingTalk's codes: 0 ok, 310000 for a bad signature / missing keyword, 130101 ("send too fast,
  exceed 20 times per minute") once 20 messages were accepted in the last minute, after which it blocks the robot
  for 10 minutes (every request answered 130101).
* :class:`WeComRobotServer`: the ``key`` URL (93000 for an unknown key), text ≤ 2,048 bytes and markdown ≤ 4,096
  bytes (40058 otherwise), 45009 after 20 messages a minute.
* :class:`AliyunServer`: recomputes the RPC signature (HMAC-SHA1 over the canonicalized query) from the
  AccessKey secret and refuses a mismatch (``SignatureDoesNotMatch``, HTTP 400), a reused nonce and a stale
  timestamp; keeps a per-number daily quota (``isv.BUSINESS_LIMIT_CONTROL``).

Each receiver uses the test's clock, so a flood over minutes runs in milliseconds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class _Server:
    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = owner.handle("POST", self.path, body)
                self._reply(status, answer)

            def do_GET(self) -> None:
                status, answer = owner.handle("GET", self.path, b"")
                self._reply(status, answer)

            def _reply(self, status: int, answer: dict[str, Any]) -> None:
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _RateLimited(_Server):
    limit = 20
    block = timedelta(minutes=10)

    def __init__(self, clock: Callable[[], datetime]) -> None:
        super().__init__(clock)
        self.accepted: list[tuple[datetime, dict[str, Any]]] = []
        self.refused: list[tuple[datetime, int]] = []
        self.blocked_until: datetime | None = None

    def over_limit(self, now: datetime) -> bool:
        if self.blocked_until is not None and now < self.blocked_until:
            return True
        recent = sum(1 for at, _ in self.accepted if at > now - timedelta(minutes=1))
        if recent >= self.limit:
            self.blocked_until = now + self.block
            return True
        return False

    @property
    def rate_limit_answers(self) -> int:
        return sum(1 for _, code in self.refused if code in (130101, 45009))


class DingTalkRobotServer(_RateLimited):
    def __init__(
        self, clock: Callable[[], datetime], token: str, *, secret: str | None = None, keyword: str | None = None
    ):
        super().__init__(clock)
        self.token, self.secret, self.keyword = token, secret, keyword

    @property
    def webhook(self) -> str:
        return f"{self.base}/robot/send?access_token={self.token}"

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with self.lock:
            if parts.path != "/robot/send" or query.get("access_token") != self.token:
                return self._refuse(now, 300001, "token is not exist")
            message = json.loads(body)
            if self.secret is not None:
                try:
                    stamp = int(query["timestamp"])
                except (KeyError, ValueError):
                    return self._refuse(now, 310000, "sign not match")
                if abs(now.timestamp() * 1000 - stamp) > 3_600_000:
                    return self._refuse(now, 310000, "invalid timestamp")
                mac = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256).digest()
                if not hmac.compare_digest(base64.b64encode(mac).decode(), query.get("sign", "")):
                    return self._refuse(now, 310000, "sign not match")
            if self.keyword is not None and self.keyword not in json.dumps(message, ensure_ascii=False):
                return self._refuse(now, 310000, "keywords not in content")
            if self.over_limit(now):
                return self._refuse(now, 130101, "send too fast, exceed 20 times per minute")
            self.accepted.append((now, message))
            return 200, {"errcode": 0, "errmsg": "ok"}

    def _refuse(self, now: datetime, code: int, why: str) -> tuple[int, dict[str, Any]]:
        self.refused.append((now, code))
        return 200, {"errcode": code, "errmsg": why}

    def texts(self) -> list[str]:
        return [m["markdown"]["text"] for _, m in self.accepted]


class WeComRobotServer(_RateLimited):
    def __init__(self, clock: Callable[[], datetime], key: str) -> None:
        super().__init__(clock)
        self.key = key

    @property
    def webhook(self) -> str:
        return f"{self.base}/cgi-bin/webhook/send?key={self.key}"

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        parts = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        with self.lock:
            if parts.path != "/cgi-bin/webhook/send" or query.get("key") != self.key:
                return self._refuse(now, 93000, "invalid webhook url")
            message = json.loads(body)
            kind = message.get("msgtype")
            if kind == "text":
                if len(message["text"]["content"].encode()) > 2048:
                    return self._refuse(now, 40058, "text.content exceed max length 2048")
            elif kind == "markdown":
                if len(message["markdown"]["content"].encode()) > 4096:
                    return self._refuse(now, 40058, "markdown.content exceed max length 4096")
            else:
                return self._refuse(now, 40008, "invalid message type")
            if self.over_limit(now):
                return self._refuse(now, 45009, "api freq out of limit")
            self.accepted.append((now, message))
            return 200, {"errcode": 0, "errmsg": "ok"}

    def _refuse(self, now: datetime, code: int, why: str) -> tuple[int, dict[str, Any]]:
        self.refused.append((now, code))
        return 200, {"errcode": code, "errmsg": why}

    def texts(self) -> list[str]:
        return [m[m["msgtype"]]["content"] for _, m in self.accepted]


def aliyun_signature(secret: str, method: str, params: dict[str, str]) -> str:
    """Aliyun's documented RPC signature, written out independently of Sentinel's signer."""

    def enc(s: str) -> str:
        return urllib.parse.quote(s, safe="-_.~")

    canonical = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    to_sign = method + "&" + enc("/") + "&" + enc(canonical)
    return base64.b64encode(hmac.new((secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


class AliyunServer(_Server):
    def __init__(self, clock: Callable[[], datetime], key_id: str, secret: str, daily_quota: int = 100) -> None:
        super().__init__(clock)
        self.key_id, self.secret, self.daily_quota = key_id, secret, daily_quota
        self.calls: list[dict[str, str]] = []
        self.refused: list[str] = []
        self.nonces: set[str] = set()

    def handle(self, method: str, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
        now = self.clock()
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query, keep_blank_values=True))
        with self.lock:
            signature = params.pop("Signature", "")
            if params.get("AccessKeyId") != self.key_id:
                return self._refuse("InvalidAccessKeyId.NotFound", 404)
            if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
                return self._refuse("InvalidParameter", 400)
            if not hmac.compare_digest(signature, aliyun_signature(self.secret, method, params)):
                return self._refuse("SignatureDoesNotMatch", 400)
            if params["SignatureNonce"] in self.nonces:
                return self._refuse("SignatureNonceUsed", 400)
            self.nonces.add(params["SignatureNonce"])
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            if abs(stamp - now) > timedelta(minutes=15):
                return self._refuse("InvalidTimeStamp.Expired", 400)
            number = params.get("PhoneNumbers") or params.get("CalledNumber") or ""
            today = sum(1 for c in self.calls if (c.get("PhoneNumbers") or c.get("CalledNumber")) == number)
            if today >= self.daily_quota:
                return self._refuse("isv.BUSINESS_LIMIT_CONTROL", 200)
            self.calls.append(params)
            return 200, {"Code": "OK", "Message": "OK", "RequestId": params["SignatureNonce"], "BizId": "1"}

    def _refuse(self, code: str, status: int) -> tuple[int, dict[str, Any]]:
        self.refused.append(code)
        return status, {"Code": code, "Message": code, "RequestId": "x"}

    def to(self, number: str, action: str | None = None) -> list[dict[str, str]]:
        return [
            c
            for c in self.calls
            if (c.get("PhoneNumbers") or c.get("CalledNumber")) == number and (action is None or c["Action"] == action)
        ]
