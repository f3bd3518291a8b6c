"""A token delivery end to end with Python's smtplib (PROTOCOL.md §3-§6), printing JSON.

usage: token_flow.py (implicit|starttls) HOST SUBMISSION_PORT SUBMISSIONS_PORT USER PASSWORD
"""
import base64
import json
import smtplib
import ssl
import sys

mode, host, port_sub, port_subs, user, password = sys.argv[1:7]
port_sub, port_subs = int(port_sub), int(port_subs)
ctx = ssl._create_unverified_context()
REMOTE = "remote.user@remote.example"
MYSTOKEN = "M" * 40
out = {}


class LMTP_SSL(smtplib.SMTP_SSL):
    """LMTP over implicit TLS: smtplib's LMTP class has no TLS variant."""
    ehlo_msg = "lhlo"


def user_session(login=True):
    if mode == "implicit":
        s = smtplib.SMTP_SSL(host, port_subs, context=ctx)
    else:
        s = smtplib.SMTP(host, port_sub)
        s.starttls(context=ctx)
    s.ehlo("client.example")
    if login:
        s.login(user, password)
    return s


def token_session():
    if mode == "implicit":
        s = LMTP_SSL(host, port_subs, context=ctx)
    else:
        s = smtplib.LMTP(host, port_sub)
        s.ehlo("remote.example")
        s.starttls(context=ctx)
    s.ehlo("remote.example")
    return s


def stoken_auth(s, token):
    raw = (user + "\0" + token).encode()
    return s.docmd("AUTH", "STOKEN " + base64.b64encode(raw).decode())


def deliver(token, subject):
    s = token_session()
    r = {"stoken_listed": s.has_extn("stoken"), "auth": stoken_auth(s, token)[0]}
    code, _ = s.mail(REMOTE)
    r["mail"] = code
    code, msg = s.rcpt(user, options=["STOKEN=" + token, "MYSTOKEN=" + MYSTOKEN])
    r["rcpt"] = [code, msg.decode()]
    if code == 250:
        code, msg = s.data(f"Subject: {subject}\r\n\r\nhello by token\r\n")
        r["data"] = [code, msg.decode()]
    s.quit()
    return r


s = user_session()
code, msg = s.docmd("GENSTOKEN", "TEMP " + REMOTE)
out["gen"] = [code, msg.decode()]
temp = msg.decode().split()[1]
s.quit()

out["first"] = deliver(temp, "first by token")
perm = out["first"]["data"][1].split()[2]
out["second"] = deliver(perm, "second by token")

s = user_session()
code, msg = s.docmd("REVSTOKEN", REMOTE)
out["revoke"] = [code, msg.decode()]
s.quit()
out["after_revoke_temp"] = deliver(temp, "never")
out["after_revoke_perm"] = deliver(perm, "never")

# Capabilities: LHLO before TLS, EHLO after TLS, AUTH STOKEN in an EHLO session.
if mode == "starttls":
    p = smtplib.LMTP(host, port_sub)
    p.ehlo("remote.example")
    out["lhlo_plain_stoken"] = p.has_extn("stoken")
    p.quit()
e = user_session(login=False)
out["ehlo_stoken"] = e.has_extn("stoken")
out["ehlo_auth_stoken"] = stoken_auth(e, perm)[0]
e.quit()
print(json.dumps(out))
