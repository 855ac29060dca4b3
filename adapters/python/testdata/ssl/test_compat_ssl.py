"""ssl and hashlib of python.wasm on the vkernel, over OpenSSL cross-built
for wasm32 (images/openssl): the _hashlib digests, KDFs and HMAC agree with
CPython's own implementations, ssl.create_default_context() works, random
bytes come from the host, and TLS handshakes over loopback TCP succeed
against a certificate made by the host's openssl command (the Go test puts
it beside this file as compat_ssl_cert.pem and compat_ssl_key.pem), both
in one process with non-blocking sockets and with the server in a child
python.wasm."""
import hashlib
import hmac
import os
import socket
import ssl
import subprocess
import sys
import unittest

import _hashlib
import _sha256

HERE = os.path.dirname(os.path.abspath(__file__))
CERT = os.path.join(HERE, "compat_ssl_cert.pem")
KEY = os.path.join(HERE, "compat_ssl_key.pem")

# A server for test_child_server: one TLS connection on 127.0.0.1, the port
# written to stdout; it answers each line with the line reversed.
SERVER = r"""
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
with socket.socket() as srv:
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    print(srv.getsockname()[1], flush=True)
    conn, _ = srv.accept()
    with ctx.wrap_socket(conn, server_side=True) as tls:
        f = tls.makefile("rb")
        for line in f:
            tls.sendall(line.rstrip(b"\n")[::-1] + b"\n")
"""


def client_context():
    ctx = ssl.create_default_context(cafile=CERT)
    return ctx


class HashlibTests(unittest.TestCase):
    def test_sha256_is_openssl(self):
        self.assertEqual(hashlib.sha256.__name__, "openssl_sha256")
        for data in (b"", b"x", bytes(range(256)) * 1000):
            self.assertEqual(hashlib.sha256(data).hexdigest(),
                             _sha256.sha256(data).hexdigest())
        self.assertEqual(hashlib.sha256(b"x").hexdigest(),
                         "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")

    def test_openssl_algorithms(self):
        names = hashlib.algorithms_available
        for name in ("md5", "sha1", "sha224", "sha384", "sha512", "sha3_256",
                     "blake2b", "sha512_256"):
            self.assertIn(name, names)
        self.assertEqual(_hashlib.new("sha512_256", b"abc").hexdigest(),
                         "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23")

    def test_kdfs_and_hmac(self):
        self.assertEqual(
            hashlib.pbkdf2_hmac("sha256", b"password", b"salt", 1, 32).hex(),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
        self.assertEqual(
            hashlib.scrypt(b"", salt=b"", n=16, r=1, p=1, dklen=16).hex(),
            "77d6576238657b203b19ca42c18a0497")
        self.assertEqual(
            hmac.digest(b"key", b"The quick brown fox jumps over the lazy dog", "sha256").hex(),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")


class ContextTests(unittest.TestCase):
    def test_version(self):
        self.assertTrue(ssl.OPENSSL_VERSION.startswith("OpenSSL 3.0."), ssl.OPENSSL_VERSION)
        self.assertTrue(ssl.HAS_TLSv1_3)

    def test_default_context(self):
        ctx = ssl.create_default_context()
        self.assertEqual(ctx.verify_mode, ssl.CERT_REQUIRED)
        self.assertTrue(ctx.check_hostname)
        self.assertGreaterEqual(ctx.minimum_version, ssl.TLSVersion.TLSv1_2)

    def test_random(self):
        a, b = ssl.RAND_bytes(32), ssl.RAND_bytes(32)
        self.assertEqual(len(a), 32)
        self.assertNotEqual(a, b)
        self.assertTrue(ssl.RAND_status())


class HandshakeTests(unittest.TestCase):
    def test_in_process(self):
        """Client and server in this process: non-blocking sockets, the
        handshake driven by SSLWantRead/SSLWantWrite."""
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(CERT, KEY)
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            c = socket.create_connection(srv.getsockname(), timeout=60)
            s, _ = srv.accept()
            c.setblocking(False)
            s.setblocking(False)
            client = client_context().wrap_socket(c, server_hostname="localhost",
                                                  do_handshake_on_connect=False)
            server = sctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False)
            with client, server:
                pending = {client, server}
                for _ in range(10000):
                    for side in list(pending):
                        try:
                            side.do_handshake()
                            pending.discard(side)
                        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                            pass
                    if not pending:
                        break
                self.assertFalse(pending, "handshake did not finish")
                self.assertEqual(client.version(), "TLSv1.3")
                self.assertEqual(dict(x[0] for x in client.getpeercert()["subject"])["commonName"],
                                 "localhost")
                client.setblocking(True)
                server.setblocking(True)
                client.sendall(b"hello over TLS")
                self.assertEqual(server.recv(64), b"hello over TLS")
                server.sendall(b"and back")
                self.assertEqual(client.recv(64), b"and back")

    def test_child_server(self):
        """The server is a child python.wasm (TLS 1.2 at most); this
        process is a blocking client that verifies its certificate."""
        p = subprocess.Popen([sys.executable, "-c", SERVER, CERT, KEY],
                             stdout=subprocess.PIPE)
        try:
            port = int(p.stdout.readline())
            with socket.create_connection(("127.0.0.1", port), timeout=60) as c:
                with client_context().wrap_socket(c, server_hostname="localhost") as tls:
                    self.assertEqual(tls.version(), "TLSv1.2")
                    # Closed before the socket: an open makefile keeps the
                    # connection open, and the server would wait on.
                    with tls.makefile("rb") as f:
                        for word in (b"ping", b"wasm32"):
                            tls.sendall(word + b"\n")
                            self.assertEqual(f.readline(), word[::-1] + b"\n")
            self.assertEqual(p.wait(timeout=60), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()

    def test_wrong_name_refused(self):
        """Verification is real: the certificate does not name example.org."""
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(CERT, KEY)
        with socket.socket() as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen()
            c = socket.create_connection(srv.getsockname(), timeout=60)
            s, _ = srv.accept()
            c.setblocking(False)
            s.setblocking(False)
            client = client_context().wrap_socket(c, server_hostname="example.org",
                                                  do_handshake_on_connect=False)
            server = sctx.wrap_socket(s, server_side=True, do_handshake_on_connect=False)
            with client, server:
                with self.assertRaises(ssl.SSLCertVerificationError):
                    for _ in range(10000):
                        for side in (client, server):
                            try:
                                side.do_handshake()
                            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                                pass
                            except ssl.SSLError:
                                if side is client:
                                    raise


if __name__ == "__main__":
    unittest.main()
