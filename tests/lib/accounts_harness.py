"""Receivers for compd's ticket hooks, for tests: a webhook listener and a hook program.

WebhookListener   a local HTTP server (thread) that keeps every JSON document POSTed to it;
                  it can be told to fail (fail_next, fail_accounts) to exercise retries
HookProgram       writes a small Python program that stores its stdin (plus its arguments
                  and COMPD_* environment) as one file per run; `command` is the hook_command

Python 3 standard library only.
"""

import http.server
import json
import os
import sys
import threading

import compd_harness as h

_PROGRAM = r'''
import json, os, sys, time
out = sys.argv[1]
doc = {"stdin": sys.stdin.read(), "argv": sys.argv[2:],
       "env": {k: v for k, v in os.environ.items()}}
name = os.path.join(out, "%d-%d.json" % (time.time_ns(), os.getpid()))
with open(name + ".tmp", "w") as f:
    json.dump(doc, f)
os.rename(name + ".tmp", name)
'''


# The milter macros Postfix must send for compd-milter to see the SASL login at MAIL.
SASL_MACROS = {
    "mail": "i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} {mail_mailer}",
}


def lock_args(lock_text, program, quiet="1h"):
    """compd-milter flags for lock_on_hit (550 5.7.1 lock_text) and a ticket program with
    a quick retry schedule."""
    return ["--lock-on-hit", "yes", "--lock-reply", "550", "--lock-text", lock_text,
            "--hook-command", program.command, "--hook-quiet-period", quiet,
            "--hook-retry-min", "200ms", "--hook-retry-max", "1s"]


class HookProgram:
    """hook_command target: every run leaves <dir>/<time>-<pid>.json."""

    def __init__(self, dir=None):
        self.dir = dir or h.temp_dir("hookprog")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out, exist_ok=True)
        self.script = os.path.join(self.dir, "ticket.py")
        with open(self.script, "w") as f:
            f.write(_PROGRAM)

    @property
    def command(self):
        return "%s %s %s {account} {state}" % (sys.executable, self.script, self.out)

    def runs(self):
        """Every run so far, oldest first: dicts with stdin (text), argv, env, doc (parsed)."""
        out = []
        for name in sorted(os.listdir(self.out)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(self.out, name)) as f:
                run = json.load(f)
            run["doc"] = json.loads(run["stdin"])
            out.append(run)
        return out

    def docs_for(self, account):
        return [r["doc"] for r in self.runs() if r["doc"].get("account") == account]


class WebhookListener:
    """HTTP server on 127.0.0.1 keeping each JSON document it accepted (200).

    fail_next: answer that many requests with 500 first; fail_accounts: answer 503 for
    documents of these accounts. requests counts every POST."""

    def __init__(self):
        self.lock = threading.Lock()
        self.docs = []
        self.headers = []
        self.requests = 0
        self.fail_next = 0
        self.fail_accounts = set()
        listener = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                with listener.lock:
                    listener.requests += 1
                    if listener.fail_next > 0:
                        listener.fail_next -= 1
                        status = 500
                    elif doc is None:
                        status = 400
                    elif doc.get("account") in listener.fail_accounts:
                        status = 503
                    else:
                        listener.docs.append(doc)
                        listener.headers.append(dict(self.headers))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"no")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((h.LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return "http://%s:%d/ticket" % (h.LOOPBACK, self.port)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def docs_for(self, account):
        with self.lock:
            return [d for d in self.docs if d.get("account") == account]

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
