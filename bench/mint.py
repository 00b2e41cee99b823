#!/usr/bin/env python3
"""Mint authorization codes (or tokens) through Tessera's real flow, for bench/run.sh.

    mint.py codes  BASE COUNT OUT   lines `CODE VERIFIER`, unredeemed
    mint.py tokens BASE COUNT OUT   lines `REFRESH_TOKEN ACCESS_TOKEN`: each code redeemed
    mint.py csrf   BASE OUT         one line `CSRF`: a login form's token (also the
                                    value of its tessera_csrf cookie)

Environment: BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_REDIRECT_URI, BENCH_SCOPE,
BENCH_USERNAME, BENCH_PASSWORD; BENCH_MINT_THREADS (4) connections in parallel;
BENCH_MINT_DEADLINE (600) seconds the whole minting may take.

As a browser would: GET /authorize (login page, CSRF cookie), POST /login, POST
/consent (approve every scope, the first duration offered: the consent is
remembered), then, on the same session cookie, one GET /authorize per code with a
fresh PKCE S256 pair; each answers 302 with the code. Standard library only.
"""

import base64
import hashlib
import html
import http.client
import os
import re
import secrets
import sys
import threading
import time
import urllib.parse

TIMEOUT = 30  # seconds for any one request


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"mint.py: {name} is not set")
    return value


class Browser:
    """A keep-alive connection with a cookie jar (no redirects followed)."""

    def __init__(self, base, cookies=None):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
        self.cookies = dict(cookies or {})

    def request(self, method, path, form=None, headers=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read().decode("utf-8", "replace")
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A keep-alive connection closed by the server: once more on a new one.
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)
                if attempt == 2:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, dict((k.lower(), v) for k, v in response.getheaders()), data


def hidden(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    if not m:
        sys.exit(f"mint.py: no field {name} in page:\n{page[:2000]}")
    return html.unescape(m.group(1))


def checked(page, kind):
    """(name, value) of every checked <input type=kind>."""
    out = []
    for tag in re.findall(r"<input([^>]*)>", page):
        if f'type="{kind}"' in tag and " checked" in tag:
            name = re.search(r'name="([^"]*)"', tag)
            value = re.search(r'value="([^"]*)"', tag)
            if name:
                out.append((html.unescape(name.group(1)), html.unescape(value.group(1)) if value else "on"))
    return out


def pkce():
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_path(challenge):
    return "/authorize?" + urllib.parse.urlencode({
        "response_type": "code",
        "client_id": env("BENCH_CLIENT_ID"),
        "redirect_uri": env("BENCH_REDIRECT_URI"),
        "scope": env("BENCH_SCOPE"),
        "state": "bench",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })


def code_of(status, headers, page):
    if status not in (302, 303) or "location" not in headers:
        sys.exit(f"mint.py: expected a redirect with a code, got {status}:\n{page[:2000]}")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(headers["location"]).query)
    if "code" not in query:
        sys.exit(f"mint.py: no code in {headers['location']}")
    return query["code"][0]


def sign_in(base):
    """Log in and consent once; returns the browser (session cookie) and a first code."""
    b = Browser(base)
    verifier, challenge = pkce()
    status, headers, page = b.request("GET", authorize_path(challenge))
    if status != 200 or "/login\"" not in page:
        sys.exit(f"mint.py: expected the login page, got {status}:\n{page[:2000]}")
    status, headers, page = b.request("POST", "/login", form={
        "csrf": hidden(page, "csrf"), "request": hidden(page, "request"),
        "username": env("BENCH_USERNAME"), "password": env("BENCH_PASSWORD"),
    })
    if status == 200 and "/consent\"" in page:
        form = [("csrf", hidden(page, "csrf")), ("request", hidden(page, "request")),
                ("decision", "approve")]
        form += [(name, "on") for name, _ in checked(page, "checkbox")]
        form += [("duration", v) for _, v in checked(page, "radio")[:1]]
        status, headers, page = b.request("POST", "/consent", form=form)
    return b, (code_of(status, headers, page), verifier)


def redeem(b, code, verifier):
    auth = base64.b64encode(f"{env('BENCH_CLIENT_ID')}:{env('BENCH_CLIENT_SECRET')}".encode()).decode()
    status, _, body = b.request("POST", "/token", form={
        "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
        "redirect_uri": env("BENCH_REDIRECT_URI"),
    }, headers={"Authorization": "Basic " + auth})
    m_rt = re.search(r'"refresh_token":"([^"]+)"', body)
    m_at = re.search(r'"access_token":"([^"]+)"', body)
    if status != 200 or not m_at:
        sys.exit(f"mint.py: token request answered {status}: {body[:500]}")
    return f"{m_rt.group(1) if m_rt else '-'} {m_at.group(1)}"


def mint(base, count, out, redeem_them):
    deadline = time.monotonic() + float(os.environ.get("BENCH_MINT_DEADLINE", "600"))
    threads = max(1, int(os.environ.get("BENCH_MINT_THREADS", "4")))
    first_browser, first = sign_in(base)
    lines, lock, failures = [], threading.Lock(), []

    def add(line):
        with lock:
            lines.append(line)

    add(redeem(first_browser, *first) if redeem_them else f"{first[0]} {first[1]}")

    def worker(n):
        try:
            b = Browser(base, first_browser.cookies)
            for _ in range(n):
                if time.monotonic() > deadline:
                    raise TimeoutError("BENCH_MINT_DEADLINE passed")
                verifier, challenge = pkce()
                code = code_of(*b.request("GET", authorize_path(challenge)))
                add(redeem(b, code, verifier) if redeem_them else f"{code} {verifier}")
        except BaseException as e:  # noqa: BLE001 (reported below; SystemExit included)
            failures.append(e)

    rest = count - 1
    workers = [threading.Thread(target=worker, args=(rest // threads + (i < rest % threads),))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(1.0, deadline - time.monotonic() + 5))
    if failures or any(w.is_alive() for w in workers):
        sys.exit(f"mint.py: minting failed: {failures[:1] or 'timed out'}")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")


def csrf(base, out):
    b = Browser(base)
    status, _, page = b.request("GET", "/account/apps")
    token = hidden(page, "csrf")
    if b.cookies.get("tessera_csrf") != token:
        sys.exit(f"mint.py: the login form's csrf field is not its cookie (status {status})")
    with open(out, "w") as f:
        f.write(token + "\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    mode, args = sys.argv[1], sys.argv[2:]
    if mode in ("codes", "tokens") and len(args) == 3:
        mint(args[0], int(args[1]), args[2], mode == "tokens")
    elif mode == "csrf" and len(args) == 2:
        csrf(*args)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
