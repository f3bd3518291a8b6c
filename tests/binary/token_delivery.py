"""A full token delivery with Python's smtplib (a client nobody on this project wrote).

1. User session on the submission port: EHLO, STARTTLS, EHLO, AUTH PLAIN, then
   GENSTOKEN TEMP <remote> (PROTOCOL.md §4): a temporary token for (remote, user).
2. Token session on the same port, as a Remote Client would (PROTOCOL.md §6, draft §4):
   LHLO, STARTTLS, LHLO (must list STOKEN), AUTH STOKEN (base64 of "user NUL token"),
   MAIL FROM:<remote>, RCPT TO:<user> STOKEN=<token>, DATA; the per-recipient reply must
   be "250 2.1.13 <user> <permanent token> <delivery id> Saved".

Prints one JSON object with every reply, for the Deno test to check. The server's
self-signed certificate is not verified. No token or password is printed on stderr.
"""
import argparse
import base64
import json
import smtplib
import ssl
import sys


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--remote", required=True)
    p.add_argument("--message", required=True, help="file with the raw message (CRLF line ends)")
    a = p.parse_args()

    out = {"genstoken": None, "lhlo": None, "auth": None, "mail": None, "rcpt": None,
           "data": None, "error": None}
    ctx = ssl._create_unverified_context()
    try:
        s = smtplib.SMTP("127.0.0.1", a.port, timeout=60)
        s.ehlo("client.example.test")
        s.starttls(context=ctx)
        s.ehlo("client.example.test")
        s.login(a.user, a.password)
        code, msg = s.docmd("GENSTOKEN", f"TEMP {a.remote}")
        out["genstoken"] = [code, text(msg)]
        s.quit()
        parts = text(msg).split()
        if code != 250 or len(parts) < 2:
            raise RuntimeError("GENSTOKEN gave no token")
        token = parts[1]

        # smtplib.LMTP greets with LHLO; its ehlo() sends LHLO, also after starttls().
        t = smtplib.LMTP("127.0.0.1", a.port, timeout=60)
        t.ehlo("remote.example.test")
        t.starttls(context=ctx)
        code, msg = t.ehlo("remote.example.test")
        out["lhlo"] = [code, text(msg)]
        resp = base64.b64encode(f"{a.user}\0{token}".encode()).decode()
        code, msg = t.docmd("AUTH", f"STOKEN {resp}")
        out["auth"] = [code, text(msg)]
        code, msg = t.mail(a.remote)
        out["mail"] = [code, text(msg)]
        code, msg = t.rcpt(a.user, [f"STOKEN={token}"])
        out["rcpt"] = [code, text(msg)]
        if code == 250:
            with open(a.message, "rb") as f:
                body = f.read()
            code, msg = t.data(body)
            out["data"] = [code, text(msg)]
        t.quit()
    except smtplib.SMTPResponseException as e:
        out["error"] = f"{e.smtp_code} {text(e.smtp_error)}"
    except Exception as e:  # report, the test decides
        out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout)


main()
