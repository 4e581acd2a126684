"""Serves an OpenStack WSGI application on 127.0.0.1 (threaded wsgiref).

    python3 wsgi.py PORT [MODULE:FACTORY [single]]

FACTORY() returns the application; the default is Placement's
(placement.wsgi:init_application). Keystone: keystone.server.wsgi:initialize_public_application;
Masakari: masakari.cmd.api:initialize_application (it parses sys.argv: it gets none).
`single`: one request at a time, for the services on sqlite (Keystone, Masakari): threaded,
Keystone's second write failed with sqlite's "database is locked" after 5 s.
"""
import importlib
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *a):
        pass


port = int(sys.argv[1])
module, _, factory = (sys.argv[2] if len(sys.argv) > 2 else "placement.wsgi:init_application").partition(":")
single = sys.argv[3:4] == ["single"]
sys.argv[1:] = []
app = getattr(importlib.import_module(module), factory)()
make_server("127.0.0.1", port, app, server_class=WSGIServer if single else Server,
            handler_class=Quiet).serve_forever()
