"""Deliver one message with smtplib.LMTP to a TCP port or a unix socket.

smtplib's sendmail() reads a single reply after DATA, but LMTP (RFC 2033 §4.2) sends one
reply per accepted recipient, so this drives the commands one by one and reads the extra
replies with getreply(). Prints JSON:
  {"lhlo": [code, text], "mail": [...], "rcpt": [[addr, code, text]...],
   "data": [[code, text], ...], "error": null | "..."}
"""
import argparse
import json
import smtplib
import sys


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def main():
    p = argparse.ArgumentParser()
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--port", type=int)
    g.add_argument("--socket")
    p.add_argument("--from", dest="sender", required=True)
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--message", required=True)
    a = p.parse_args()

    out = {"lhlo": None, "mail": None, "rcpt": [], "data": [], "error": None}
    try:
        if a.socket:
            s = smtplib.LMTP(a.socket, timeout=60)  # a host starting with "/" is a unix socket
        else:
            s = smtplib.LMTP("127.0.0.1", a.port, timeout=60)
        code, msg = s.ehlo("mta.example.test")  # LMTP.ehlo sends LHLO
        out["lhlo"] = [code, text(msg)]
        code, msg = s.mail(a.sender)
        out["mail"] = [code, text(msg)]
        accepted = 0
        for rcpt in a.to:
            code, msg = s.rcpt(rcpt)
            out["rcpt"].append([rcpt, code, text(msg)])
            accepted += code == 250
        if accepted:
            with open(a.message, "rb") as f:
                body = f.read()
            code, msg = s.data(body)
            out["data"].append([code, text(msg)])
            for _ in range(accepted - 1):
                code, msg = s.getreply()
                out["data"].append([code, text(msg)])
        s.quit()
    except smtplib.SMTPResponseException as e:
        out["error"] = f"{e.smtp_code} {text(e.smtp_error)}"
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout)


main()
