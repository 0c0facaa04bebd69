"""moto's server with one DynamoDB request at a time.

moto serves each request on its own thread, and its DynamoDB model is not
safe under that: an UpdateItem ADD is a read-modify-write on a shared dict,
and a TransactWriteItems that fails a condition rolls the whole table back
to a copy taken when it began, dropping writes other threads made meanwhile.
Real DynamoDB is linearizable per item and its transactions are atomic;
serializing DynamoDB requests gives the tests that contract. SQS and SSM
keep moto's threads (an SQS long poll must not hold everything else up).

Usage: python moto_serial.py -H 127.0.0.1 -p PORT
"""

import argparse
import os
import signal
import sys
import threading

from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)


class SerialDynamoDB:
    """WSGI middleware: DynamoDB requests run one at a time, whole."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # The body is produced under the lock too: the response is the
            # state the request saw.
            return list(self.app(environ, start_response))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    # moto builds some URLs (SQS queue URLs) from it, as its own main does.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        SerialDynamoDB(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
