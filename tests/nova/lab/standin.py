"""Loopback stand-in for Glance and Neutron (the lab has neither).

Nova only reads from them here: one image record and its schema from Glance,
empty lists (ports, networks, extensions, ...) from Neutron, since the lab's
servers boot with "networks": "none". Anything else is answered 404 and
logged, so an unexpected call shows up in the lab's logs.

    python3 standin.py GLANCE_PORT NEUTRON_PORT IMAGE_UUID
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GLANCE_PORT, NEUTRON_PORT, IMAGE = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

IMAGE_RECORD = {
    "id": IMAGE, "name": "umm-lab", "status": "active", "visibility": "public",
    "disk_format": "raw", "container_format": "bare", "min_disk": 0, "min_ram": 0,
    "size": 1024, "virtual_size": 1024, "checksum": "0" * 32, "os_hash_algo": "sha512",
    "os_hash_value": "0" * 128, "owner": "admin", "protected": False, "os_hidden": False,
    "tags": [], "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
    "file": f"/v2/images/{IMAGE}/file", "self": f"/v2/images/{IMAGE}", "schema": "/v2/schemas/image",
}
IMAGE_SCHEMA = {
    "name": "image",
    "properties": {k: {} for k in IMAGE_RECORD},
    "additionalProperties": {"type": "string"},
    "links": [],
}


def handler(kind, port):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            sys.stderr.write(f"[{kind}] {self.command} {self.path} -> {fmt % args}\n")

        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            path = self.path.split("?", 1)[0].rstrip("/")
            base = f"http://127.0.0.1:{port}"
            if kind == "glance":
                if path in ("", "/versions"):
                    return self.reply(200, {"versions": [{"id": "v2.16", "status": "CURRENT",
                                                          "links": [{"rel": "self", "href": base + "/v2/"}]}]})
                if path == "/v2/schemas/image":
                    return self.reply(200, IMAGE_SCHEMA)
                if path == f"/v2/images/{IMAGE}":
                    return self.reply(200, IMAGE_RECORD)
                if path == "/v2/images":
                    return self.reply(200, {"images": [IMAGE_RECORD]})
            else:
                if path == "":
                    return self.reply(200, {"versions": [{"id": "v2.0", "status": "CURRENT",
                                                          "links": [{"rel": "self", "href": base + "/v2.0/"}]}]})
                if path.startswith("/v2.0/"):
                    coll = path[len("/v2.0/"):].split("/")[0].removesuffix(".json").replace("-", "_")
                    if "/" not in path[len("/v2.0/"):]:
                        return self.reply(200, {coll: []})
            return self.reply(404, {"error": f"the lab's {kind} stand-in has no {path}"})

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.reply(404, {"error": f"the lab's {kind} stand-in accepts no {self.command}"})

        do_PUT = do_DELETE = do_POST

    return H


servers = [ThreadingHTTPServer(("127.0.0.1", p), handler(k, p))
           for k, p in (("glance", GLANCE_PORT), ("neutron", NEUTRON_PORT))]
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
