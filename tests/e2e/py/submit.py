"""Submit one message with Python's smtplib (a client nobody on this project wrote).

Prints one JSON object with every reply, for the Deno test to check:
  {"ehlo": [code, text], "auth": [code, text], "mail": [...], "rcpt": [[addr, code, text]...],
   "data": [code, text] | null, "error": null | "..."}
The server's self-signed certificate is not verified.
"""
import argparse
import json
import smtplib
import ssl
import sys


def text(b):
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["starttls", "ssl"], required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--mech", choices=["PLAIN", "LOGIN"])
    p.add_argument("--from", dest="sender")
    p.add_argument("--to", action="append", default=[])
    p.add_argument("--message", help="file with the raw message bytes (CRLF line ends)")
    a = p.parse_args()

    out = {"ehlo": None, "auth": None, "mail": None, "rcpt": [], "data": None, "error": None}
    ctx = ssl._create_unverified_context()
    try:
        if a.mode == "ssl":
            s = smtplib.SMTP_SSL("127.0.0.1", a.port, context=ctx, timeout=60)
        else:
            s = smtplib.SMTP("127.0.0.1", a.port, timeout=60)
            s.ehlo("client.example.test")
            s.starttls(context=ctx)
        code, msg = s.ehlo("client.example.test")
        out["ehlo"] = [code, text(msg)]
        if a.mech:
            s.user, s.password = a.user, a.password
            auth = {"PLAIN": s.auth_plain, "LOGIN": s.auth_login}[a.mech]
            code, msg = s.auth(a.mech, auth, initial_response_ok=(a.mech == "PLAIN"))
        else:
            code, msg = s.login(a.user, a.password)
        out["auth"] = [code, text(msg)]
        if a.sender:
            code, msg = s.mail(a.sender)
            out["mail"] = [code, text(msg)]
            accepted = 0
            for rcpt in a.to:
                code, msg = s.rcpt(rcpt)
                out["rcpt"].append([rcpt, code, text(msg)])
                accepted += code in (250, 251)
            if accepted:
                with open(a.message, "rb") as f:
                    body = f.read()
                # smtplib.data() dot-stuffs and ends with CRLF.CRLF; bytes are sent as they are.
                code, msg = s.data(body)
                out["data"] = [code, text(msg)]
        s.quit()
    except smtplib.SMTPResponseException as e:
        out["error"] = f"{e.smtp_code} {text(e.smtp_error)}"
    except Exception as e:  # report, the test decides
        out["error"] = f"{type(e).__name__}: {e}"
    json.dump(out, sys.stdout)


main()
