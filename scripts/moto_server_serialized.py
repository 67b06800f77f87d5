"""Runs the moto AWS emulator with one request at a time.

moto's backends check conditions and then write without a lock, so under
concurrent requests a conditional write (DynamoDB ConditionExpression, an
atomic ADD, a transaction) can interleave with another and break the
atomicity the real services guarantee. The adapters' conformance suites race
writers on purpose, so the emulator must serialize requests to be a faithful
stand-in. Connections stay concurrent (keep-alive works); only the handling
of requests is serialized.

Usage: python moto_server_serialized.py HOST PORT
"""

import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def serialized(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
            # Consume the whole response inside the lock: moto builds it lazily.
            return list(app(environ, start_response))

    return handle


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
