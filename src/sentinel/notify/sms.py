"""SMS and voice calls through Aliyun (阿里云短信 / 语音服务), behind the channel interface.

Requests are Aliyun RPC calls signed as Aliyun documents (signature version 1.0, HMAC-SHA1):

1. take every request parameter except ``Signature`` (common ones: ``AccessKeyId``, ``Action``, ``Format``,
   ``RegionId``, ``SignatureMethod=HMAC-SHA1``, ``SignatureNonce`` (unique per request), ``SignatureVersion=1.0``,
   ``Timestamp`` (UTC, ``YYYY-MM-DDThh:mm:ssZ``), ``Version``; and the action's own), sort them by name;
2. percent-encode names and values per RFC 3986 (unreserved ``A-Z a-z 0-9 - _ . ~`` kept; space is ``%20``,
   ``*`` is ``%2A``), join as ``name=value`` with ``&``: the canonicalized query string;
3. ``StringToSign = HTTPMethod + "&" + percentEncode("/") + "&" + percentEncode(canonicalized)``;
4. ``Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))``, added as a (percent-encoded)
   parameter.

SMS is ``SendSms`` (version 2017-05-25) with a template and its JSON parameters; the voice hook is the same
interface with ``SingleCallByTts`` (text-to-speech call). Answers: ``Code`` ``OK`` is success;
``isv.BUSINESS_LIMIT_CONTROL`` is Aliyun's per-number quota (held until tomorrow); ``Throttling*`` is the rate
limit; signature, key, sign-name and template errors are configuration errors. Sentinel also keeps its own
per-number daily limit (``daily_limit_per_number``), counted from the audit trail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sentinel.notify.channel import Message, Outcome, SendResult, network_failure

CONFIG_CODES = (
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.INVALID_PARAMETERS",
    "isv.MOBILE_NUMBER_ILLEGAL",
    "Forbidden",
)


def percent_encode(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def canonicalized(params: dict[str, str]) -> str:
    return "&".join(f"{percent_encode(k)}={percent_encode(params[k])}" for k in sorted(params))


def string_to_sign(method: str, params: dict[str, str]) -> str:
    return f"{method}&{percent_encode('/')}&{percent_encode(canonicalized(params))}"


def signature(secret: str, method: str, params: dict[str, str]) -> str:
    digest = hmac.new(f"{secret}&".encode(), string_to_sign(method, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_query(secret: str, params: dict[str, str], method: str = "GET") -> str:
    return f"Signature={percent_encode(signature(secret, method, params))}&{canonicalized(params)}"


@dataclass
class AliyunCall:
    """SendSms (``kind="sms"``) or SingleCallByTts (``kind="voice"``) through one Aliyun account."""

    name: str
    access_key_id: str
    access_key_secret: str
    template_code: str
    sign_name: str = ""  # SMS only
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region: str = "cn-hangzhou"
    called_show_number: str = ""  # voice only
    kind: str = "sms"
    daily_per_recipient: int | None = 10
    per_minute: int | None = None
    timeout_s: float = 5.0
    group: bool = False

    def params(self, message: Message, recipient: str, now: datetime) -> dict[str, str]:
        common = {
            "AccessKeyId": self.access_key_id,
            "Format": "JSON",
            "RegionId": self.region,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        template = json.dumps(message.params, ensure_ascii=False, separators=(",", ":"))
        if self.kind == "voice":
            own = {"Action": "SingleCallByTts", "CalledNumber": recipient, "TtsCode": self.template_code}
            own["TtsParam"] = template
            if self.called_show_number:
                own["CalledShowNumber"] = self.called_show_number
        else:
            own = {"Action": "SendSms", "PhoneNumbers": recipient, "SignName": self.sign_name}
            own |= {"TemplateCode": self.template_code, "TemplateParam": template}
        return common | own

    def send(self, message: Message, recipient: str, now: datetime) -> SendResult:
        query = signed_query(self.access_key_secret, self.params(message, recipient, now))
        url = f"{self.endpoint}{'&' if '?' in self.endpoint else '?'}{query}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as response:
                answer = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read() or b"{}")
            except ValueError:
                return SendResult(Outcome.FAILED, f"阿里云应答 HTTP {exc.code}")
        except (OSError, ValueError) as exc:
            return network_failure(exc)
        return classify(answer if isinstance(answer, dict) else {})

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "provider": "aliyun",
            "endpoint": self.endpoint,
            "access_key_id": self.access_key_id[:4] + "***",
            "access_key_secret": "***",
            "template_code": self.template_code,
            "sign_name": self.sign_name,
            "daily_limit_per_number": self.daily_per_recipient,
        }


def classify(answer: dict[str, Any]) -> SendResult:
    code = str(answer.get("Code", ""))
    if code == "OK":
        return SendResult(Outcome.OK)
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        return SendResult(Outcome.DAILY_LIMIT, "阿里云号码频控 isv.BUSINESS_LIMIT_CONTROL")
    if code.startswith("Throttling"):
        return SendResult(Outcome.RATE_LIMITED, f"阿里云限流 {code}")
    if code.startswith(CONFIG_CODES):
        return SendResult(Outcome.CONFIG_ERROR, f"阿里云拒绝 {code}: 检查 AccessKey、签名名称与模板")
    return SendResult(Outcome.FAILED, f"阿里云应答 {code or '无 Code'}")
