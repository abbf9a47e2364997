"""A webhook receiver that checks every delivery with the reference Standard Webhooks library
(PyPI `standardwebhooks`), as an integration would. Not kb's code: the independent check of
kb's signatures in tests/api/webhooks.rs.

Usage: receiver.py SECRET_FILE LOG_FILE. Prints the port it listens on (127.0.0.1), then, for
each POST, verifies it with the secret currently in SECRET_FILE, appends
{"id", "type", "verified", "error"} to LOG_FILE as a JSON line, and answers 204 when the
signature verified, 401 when it did not.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

SECRET_FILE, LOG_FILE = sys.argv[1], sys.argv[2]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(SECRET_FILE) as f:
            secret = f.read().strip()
        entry = {"id": self.headers.get("webhook-id"), "verified": False, "error": None}
        try:
            event = Webhook(secret).verify(body, dict(self.headers))
            entry["verified"] = True
            entry["type"] = event.get("type")
        except Exception as e:  # the library's verification error, or a malformed body
            entry["error"] = f"{type(e).__name__}: {e}"
        with open(LOG_FILE, "a") as f:
            f.write(json.dumps(entry) + "\n")
        self.send_response(204 if entry["verified"] else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
