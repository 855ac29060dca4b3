"""Sockets of python.wasm on the vkernel, as the python entry allows them:
loopback only (127.0.0.0/8 and ::1), the wildcard address refused, unix
sockets in the writable root, the host's service names, gethostname."""
import errno
import os
import socket
import tempfile
import unittest


class LoopbackTests(unittest.TestCase):
    def echo(self, family, host):
        with socket.socket(family, socket.SOCK_STREAM) as srv:
            srv.bind((host, 0))
            srv.listen()
            port = srv.getsockname()[1]
            self.assertNotEqual(port, 0)
            with socket.create_connection((host, port), timeout=10) as c:
                conn, peer = srv.accept()
                with conn:
                    self.assertEqual(peer[0], host)
                    c.sendall(b"ping")
                    self.assertEqual(conn.recv(4), b"ping")
                    conn.sendall(b"pong")
                    self.assertEqual(c.recv(4), b"pong")

    def test_tcp_ipv4(self):
        self.echo(socket.AF_INET, "127.0.0.1")

    def test_tcp_ipv6(self):
        self.assertTrue(socket.has_ipv6)
        self.echo(socket.AF_INET6, "::1")

    def test_udp_ipv6(self):
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as a, \
                socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as b:
            a.bind(("::1", 0))
            b.sendto(b"datagram", a.getsockname())
            a.settimeout(10)
            data, _ = a.recvfrom(64)
            self.assertEqual(data, b"datagram")

    def test_socketpair_is_unix(self):
        a, b = socket.socketpair()
        with a, b:
            self.assertEqual(a.family, socket.AF_UNIX)
            a.sendall(b"x")
            self.assertEqual(b.recv(1), b"x")

    def test_unix_socket_in_tmp(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "s")
            with socket.socket(socket.AF_UNIX) as srv:
                srv.bind(path)
                srv.listen()
                with socket.socket(socket.AF_UNIX) as c:
                    c.connect(path)
                    conn, _ = srv.accept()
                    with conn:
                        c.sendall(b"unix")
                        self.assertEqual(conn.recv(4), b"unix")

    def test_names(self):
        self.assertEqual(socket.gethostname(), "localhost")
        self.assertEqual(socket.getservbyname("http", "tcp"), 80)
        infos = socket.getaddrinfo("localhost", "http", type=socket.SOCK_STREAM)
        self.assertIn(("127.0.0.1", 80), [i[4][:2] for i in infos])


class PolicyTests(unittest.TestCase):
    def test_wildcard_bind_refused(self):
        with socket.socket() as s:
            with self.assertRaises(PermissionError):
                s.bind(("0.0.0.0", 0))

    def test_far_connect_refused(self):
        with socket.socket() as s:
            s.settimeout(10)
            with self.assertRaises(OSError) as cm:
                s.connect(("192.0.2.1", 80))
            self.assertEqual(cm.exception.errno, errno.EACCES)


if __name__ == "__main__":
    unittest.main()
