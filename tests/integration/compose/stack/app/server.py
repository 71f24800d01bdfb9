"""Answers /health with the release baked into the image; release `unhealthy` answers 503."""
import http.server
import json
import os

RELEASE = open("/srv/release").read().strip()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        ok = RELEASE != "unhealthy"
        body = json.dumps({"status": "healthy" if ok else "unhealthy", "release": RELEASE,
                           "service": open("/srv/service").read().strip(),
                           "greeting": os.environ.get("STACKTEST_GREETING")}).encode()
        self.send_response(200 if ok else 503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
