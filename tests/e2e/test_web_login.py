"""The web login over TLS in a real browser (chromium at /usr/bin/chromium, driven by
Playwright): the coordinator's HTTPS port with a certificate from a test CA the browser is told
to trust (by the certificate's public key), the sign-in form, the session cookie."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from coordinator.app import Coordinator
from coordinator.config.objects import MasterConfig
from coordinator.config.security import Auth
from coordinator.passwords import hash_password
from coordinator.tls import TlsFiles
from tests.pki import TestCA

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180),
              pytest.mark.skipif(not CHROMIUM.exists(), reason="no chromium at /usr/bin/chromium")]


def spki_hash(cert: Path) -> str:
    """What chromium's --ignore-certificate-errors-spki-list expects: base64(sha256(SPKI))."""
    public = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


async def test_sign_in_over_https_in_a_browser(tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    server = TestCA(tmp_path / "pki").issue("server")
    cfg = MasterConfig(auth=Auth(users={"alice": {"password": hash_password("wonderland"),  # type: ignore[dict-item]
                                                  "groups": ["dev"]}}))
    coord = Coordinator(cfg, tmp_path / "d", "127.0.0.1:0", http="127.0.0.1:0",
                        tls=TlsFiles(server.cert, server.key))
    await coord.start()
    port = coord.http_address.rpartition(":")[2]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=str(CHROMIUM),
                args=[f"--ignore-certificate-errors-spki-list={spki_hash(server.cert)}"],
            )
            try:
                page = await browser.new_page()
                await page.goto(f"https://localhost:{port}/auth/login?next=/auth/whoami")
                await page.fill("input[name=user]", "alice")
                await page.fill("input[name=password]", "wonderland")
                await page.click("button")
                await page.wait_for_url("**/auth/whoami")
                doc = json.loads(await page.inner_text("body"))
                assert doc == {"user": "alice", "groups": ["dev"], "via": "session", "auth": True}
                cookies = await page.context.cookies()
                [session] = [c for c in cookies if c["name"] == "gantry_session"]
                assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Lax"
            finally:
                await browser.close()
    finally:
        await coord.aclose()
