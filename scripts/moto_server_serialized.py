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

import io
import json
import sys
import time
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def sqs_long_poll(environ):
    """The request body and wait of an SQS ReceiveMessage long poll, or None.

    A long poll waits up to 20 s for a message; holding the lock meanwhile
    would keep out the very SendMessage that ends it."""
    if environ.get("HTTP_X_AMZ_TARGET", "") != "AmazonSQS.ReceiveMessage":
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return None
    wait = int(body.get("WaitTimeSeconds") or 0)
    return (body, wait) if wait > 0 else None


def serialized(app):
    lock = threading.Lock()

    def call(environ, start_response):
        with lock:
            # Consume the whole response inside the lock: moto builds it lazily.
            return list(app(environ, start_response))

    def long_poll(environ, start_response, body, wait):
        # Poll without waiting, each poll under the lock like any request,
        # and wait between polls outside it.
        body = dict(body, WaitTimeSeconds=0)
        raw = json.dumps(body).encode()
        deadline = time.monotonic() + wait
        while True:
            attempt = dict(environ, CONTENT_LENGTH=str(len(raw)))
            attempt["wsgi.input"] = io.BytesIO(raw)
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["status"], captured["headers"] = status, headers
                return lambda _data: None

            chunks = call(attempt, capture)
            done = not captured["status"].startswith("200") or time.monotonic() >= deadline
            if not done:
                try:
                    done = bool(json.loads(b"".join(chunks) or b"{}").get("Messages"))
                except ValueError:
                    done = True
            if done:
                start_response(captured["status"], captured["headers"])
                return chunks
            time.sleep(0.05)

    def handle(environ, start_response):
        poll = sqs_long_poll(environ)
        if poll is not None:
            return long_poll(environ, start_response, *poll)
        return call(environ, start_response)

    return handle


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
