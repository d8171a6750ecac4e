"""Who may talk to the bridge: loopback by default, a bearer token otherwise.

``check_bind(host, token)`` refuses to bind a non-loopback address without a token. ``BridgeGuard``
is a plain ASGI middleware in front of the bridge routes: with a token, every request needs
``Authorization: Bearer <token>`` (compared in constant time), else 401 JSON. A request that carries
a browser ``Origin`` header from another site is refused (403): a web page must not be able to drive
the GPU of whoever visits it (the GIMP plug-in sends no Origin header).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import urllib.parse

from fauve.errors import FauveError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise FauveError(
            f"Refusing to listen on {host} without a token: anyone on the network could use this machine's GPU.",
            hint=f"Add --token <secret> (clients send 'Authorization: Bearer <secret>'), or keep the default --host 127.0.0.1.",
            code="token_required",
        )


def error_body(code: str, message: str, hint: str) -> bytes:
    return json.dumps({"code": code, "message": message, "hint": hint}).encode("utf-8")


class BridgeGuard:
    """ASGI middleware: token and cross-site checks for every bridge request."""

    def __init__(self, app, token: str | None) -> None:
        self.app = app
        self.token = token.encode("utf-8") if token else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(headers)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, body = refusal
        extra = [(b"www-authenticate", b'Bearer realm="fauve"')] if status == 401 else []
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + extra})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, headers: dict[str, str]) -> tuple[int, bytes] | None:
        origin = headers.get("origin")
        if origin and origin != "null":
            origin_host = urllib.parse.urlparse(origin).netloc.lower()
            if origin_host != headers.get("host", "").lower():
                return 403, error_body("cross_origin", f"Requests from web pages at {origin} are not accepted.",
                                       "Call the bridge from the GIMP plug-in or a script, not from a web page.")
        if self.token is None:
            return None
        auth = headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return 401, error_body("unauthorized", "This server needs a token and the request sent none.",
                                   "Send 'Authorization: Bearer <token>' (fauve gimp install --token <token>).")
        if not hmac.compare_digest(given.strip().encode("utf-8"), self.token):
            return 401, error_body("unauthorized", "The token is wrong.",
                                   "Use the token the server was started with (fauve serve --token ...).")
        return None
