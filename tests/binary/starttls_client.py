"""Drive tests/binary/starttls_probe.ts with Python's smtplib: STARTTLS and implicit TLS
sessions, several at once, each checking that the upgrade happened (the server says
secure=yes, EHLO changes) and that a payload crosses the TLS layer intact (size and sha256).

Prints one JSON object: {"sessions": [{"mode", "size", "ok", "protocol", "error"}...]}.
The probe's self-signed certificate is not verified.
"""
import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import smtplib
import ssl
import sys


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def payload(size):
    """About `size` bytes of base64 lines with CRLF ends (nothing for smtplib to dot-stuff)."""
    raw = base64.b64encode(os.urandom(size * 3 // 4 + 3)).decode()
    lines = [raw[i:i + 76] for i in range(0, len(raw), 76)]
    return ("\r\n".join(lines) + "\r\n").encode()


def session(mode, port, size):
    out = {"mode": mode, "size": size, "ok": False, "protocol": None, "error": None}
    ctx = ssl._create_unverified_context()
    try:
        if mode == "implicit":
            s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx, timeout=30)
            s.ehlo("client.example.test")
        else:
            s = smtplib.SMTP("127.0.0.1", port, timeout=30)
            s.ehlo("client.example.test")
            if not s.has_extn("starttls"):
                raise RuntimeError("STARTTLS not offered before TLS")
            code, msg = s.starttls(context=ctx)
            if code != 220:
                raise RuntimeError(f"STARTTLS got {code} {text(msg)}")
            s.ehlo("client.example.test")
            if s.has_extn("starttls") or not s.has_extn("auth"):
                raise RuntimeError(f"EHLO after TLS unchanged: {s.esmtp_features}")
        code, msg = s.noop()
        if code != 250 or "secure=yes" not in text(msg):
            raise RuntimeError(f"server does not see TLS: {code} {text(msg)}")
        out["protocol"] = text(msg).split("protocol=")[-1]
        body = payload(size)
        code, msg = s.data(body)
        want = f"2.0.0 {len(body)} {hashlib.sha256(body).hexdigest()}"
        if code != 250 or text(msg) != want:
            raise RuntimeError(f"payload damaged: got {code} {text(msg)}, want 250 {want}")
        code, _ = s.noop()
        if code != 250:
            raise RuntimeError(f"NOOP after DATA got {code}")
        s.quit()
        out["ok"] = True
    except Exception as e:  # report, the test decides
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--starttls-port", type=int, required=True)
    p.add_argument("--implicit-port", type=int, required=True)
    p.add_argument("--parallel", type=int, default=8)
    a = p.parse_args()

    # One large payload per mode (crosses many TLS records and socket writes), the rest small.
    jobs = []
    for mode, port in (("starttls", a.starttls_port), ("implicit", a.implicit_port)):
        jobs.append((mode, port, 1 << 20))
        jobs += [(mode, port, 4096 * (i + 1)) for i in range(a.parallel - 1)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        sessions = list(pool.map(lambda j: session(*j), jobs))
    json.dump({"sessions": sessions}, sys.stdout)


main()
