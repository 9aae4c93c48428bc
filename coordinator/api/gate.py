"""The one authentication-and-authorization check, shared by the gRPC interceptor and the HTTP
middleware: credentials -> Identity (Auth) -> allowed or not (Authz), with refusals that name the
action and never say whether a builder exists."""

from __future__ import annotations

import contextvars
import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from coordinator.config.security import Auth
from coordinator.domain.auth import actions
from coordinator.domain.auth.authz import Authz
from coordinator.domain.auth.identity import ANONYMOUS, Identity
from coordinator.domain.auth.tokens import InvalidToken, Tokens
from coordinator.domain.auth.visibility import set_current as set_visibility
from coordinator.domain.errors import PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)
CHANGE_HOOK = Identity("change-hook", via="change-token")
# The identity of the call being served (set by the interceptor/middleware, read by the audit log
# and token creation): each gRPC call and HTTP request runs in its own task, hence its own context.
current_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("identity", default=None)


@dataclass(frozen=True)
class Credentials:
    """What a request carried, whatever the transport."""

    peer_ip: str = ""
    bearer: str | None = None
    cert_user: str | None = None  # a verified client certificate's common name
    cert_groups: tuple[str, ...] = ()
    proxy_user: str | None = None
    proxy_groups: tuple[str, ...] = ()


def bearer_of(header: str | bytes | None) -> str | None:
    if header is None:
        return None
    text = header.decode("latin-1") if isinstance(header, bytes) else header
    scheme, _, value = text.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


class Gate:
    def __init__(
        self, auth: Auth, authz: Authz, tokens: Tokens | None, *,
        tags_of: Callable[[str], Iterable[str]] = lambda _b: (), change_token: str = "",
    ) -> None:
        self.auth = auth
        self.authz = authz
        self.tokens = tokens if auth.tokens else None
        self.tags_of = tags_of
        self._change_token = change_token.encode()
        self._proxies = {ipaddress.ip_address(a) for a in auth.proxy_addresses}

    def _trusted_proxy(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self._proxies
        except ValueError:
            return False

    async def identify(self, creds: Credentials) -> Identity:
        """The caller's identity (ANONYMOUS when it sent nothing); raises Unauthenticated when
        it sent credentials that are not valid."""
        if creds.bearer is not None:
            if self._change_token and hmac.compare_digest(creds.bearer.encode(), self._change_token):
                return CHANGE_HOOK
            if self.tokens is None:
                raise Unauthenticated("this coordinator does not accept API tokens")
            try:
                return await self.tokens.identify(creds.bearer)
            except InvalidToken:
                raise Unauthenticated("the API token is not valid (unknown, revoked or expired)") from None
        if self.auth.client_certificates and creds.cert_user:
            return Identity(creds.cert_user, frozenset(creds.cert_groups), "certificate")
        if self.auth.proxy_header and creds.proxy_user and self._trusted_proxy(creds.peer_ip):
            return Identity(creds.proxy_user, frozenset(creds.proxy_groups), "proxy")
        return ANONYMOUS

    def max_message(self, who: Identity | None) -> int:
        """The largest request `who` may send (None: a caller not identified, as for a health
        check): Auth's max_message_anonymous / max_message / max_message_roles."""
        auth = self.auth
        if who is None or who.anonymous:
            return auth.max_message_anonymous
        if who is CHANGE_HOOK:
            return auth.max_message
        by_role = [auth.max_message_roles[r] for r in self.authz.roles_of(who) if r in auth.max_message_roles]
        return max(by_role) if by_role else auth.max_message

    def authorize(self, who: Identity, action: str, builders: Sequence[str] = ()) -> None:
        """Raises Unauthenticated (anonymous) or PermissionDenied (authenticated) when not allowed.
        An allowed read by a reader scoped to some builders sets the call's visibility, so the
        read side lists only those (decided here once, not per row)."""
        set_visibility(None)
        if action == actions.PUBLIC or action == actions.WORKER:
            return
        if who is CHANGE_HOOK:
            if action == actions.SUBMIT:
                return
            raise PermissionDenied(f"the change token only allows submitting changes, not {action}")
        decision = self.authz.decide(who, action, builders, self.tags_of)
        if decision.allowed:
            if action == actions.READ:
                set_visibility(self.authz.read_scope(who, self.tags_of))
            return
        if who.anonymous:
            raise Unauthenticated(
                f"{decision.reason}: send an API token (`gantry --token`, $GANTRY_TOKEN) or a client certificate"
            )
        raise PermissionDenied(f"permission denied: {decision.reason}")
