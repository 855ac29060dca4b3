"""Processes, pipes and signals of python.wasm on the vkernel.

Copied into a copy of the build's Lib/test by TestProcessesOnTheVkernel
(adapters/python) and run there by regrtest like an upstream module.
"""
import errno
import os
import signal
import subprocess
import sys
import time
import unittest


def _double_into(conn, x):
    # A multiprocessing target: module level, so the spawned child can
    # import it by name.
    conn.send(x * 2)
    conn.close()


def _exit_with(code):
    sys.exit(code)


class ProcessTests(unittest.TestCase):
    def test_executable_is_the_guest_file(self):
        self.assertEqual(sys.executable, "/usr/bin/python3.11")
        self.assertTrue(os.path.isfile(sys.executable))

    def test_child_args_exit_and_pipes(self):
        r = subprocess.run(
            [sys.executable, "-c",
             "import sys; data = sys.stdin.read(); "
             "sys.stdout.write(data.upper() + sys.argv[1]); "
             "sys.stderr.write('err'); sys.exit(3)", "!"],
            input=b"hello", capture_output=True)
        self.assertEqual((r.returncode, r.stdout, r.stderr), (3, b"HELLO!", b"err"))

    def test_child_env_and_cwd(self):
        d = os.path.realpath(os.environ.get("TMPDIR", "/tmp"))
        out = subprocess.check_output(
            [sys.executable, "-c", "import os; print(os.environ['COMPAT_X'], os.getcwd())"],
            env={"COMPAT_X": "42"}, cwd=d)
        self.assertEqual(out.split(), [b"42", os.fsencode(d)])

    def test_devnull(self):
        with open(os.devnull, "rb") as f:
            self.assertEqual(f.read(), b"")
        r = subprocess.run([sys.executable, "-c", "print('discarded')"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0)

    def test_argv_bytes(self):
        # Not UTF-8: the child's argv is the bytes given.
        out = subprocess.check_output(
            [sys.executable, "-c",
             "import os, sys; sys.stdout.buffer.write(os.fsencode(sys.argv[1]))",
             b"a\xffb"])
        self.assertEqual(out, b"a\xffb")

    def test_spawnv(self):
        code = os.spawnv(os.P_WAIT, sys.executable,
                         [sys.executable, "-c", "import sys; sys.exit(5)"])
        self.assertEqual(code, 5)

    def test_grandchild_signals_its_parent(self):
        code = (
            "import os, signal, subprocess, sys, time\n"
            "got = []\n"
            "signal.signal(signal.SIGUSR1, lambda *a: got.append(1))\n"
            "subprocess.run([sys.executable, '-c', "
            "'import os, signal; os.kill(os.getppid(), signal.SIGUSR1)'], check=True)\n"
            "for _ in range(100):\n"
            "    if got: break\n"
            "    time.sleep(0.05)\n"
            "sys.exit(0 if got else 1)\n")
        self.assertEqual(subprocess.run([sys.executable, "-c", code]).returncode, 0)

    def test_pids(self):
        out = subprocess.check_output(
            [sys.executable, "-c", "import os; print(os.getpid(), os.getppid())"])
        pid, ppid = map(int, out.split())
        self.assertEqual(ppid, os.getpid())
        self.assertNotEqual(pid, os.getpid())

    def test_exec_errors_as_natively(self):
        with self.assertRaises(FileNotFoundError) as c:
            subprocess.run(["/nonexistent/program"])
        self.assertEqual(c.exception.filename, "/nonexistent/program")
        with self.assertRaises(FileNotFoundError) as c:
            subprocess.run([sys.executable, "-c", "pass"], cwd="/nonexistent/dir")
        self.assertEqual(c.exception.filename, "/nonexistent/dir")

    def _file(self, name, text, mode=0o755):
        path = os.path.join(os.environ.get("TMPDIR", "/tmp"), name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        self.addCleanup(os.unlink, path)
        return path

    def test_unlisted_file_is_denied(self):
        # A file the guest wrote is not in the signed megabinary: the
        # vkernel refuses to run it.
        path = self._file("compat-not-listed", "not a program\n")
        with self.assertRaises(PermissionError) as c:
            subprocess.run([path, "-c", "pass"])
        self.assertEqual(c.exception.errno, errno.EACCES)

    def test_script_runs_its_listed_interpreter(self):
        # As natively: argv is [interpreter, script, args...], and Python
        # makes the script's path sys.argv[0].
        path = self._file("compat-script", "#!" + sys.executable + " -S\n"
                          "import sys; print(sys.argv, sys.flags.no_site)\n")
        out = subprocess.check_output([path, "x y"])
        self.assertEqual(out.decode(), "%r 1\n" % [path, "x y"])

    def test_script_interpreter_must_be_listed(self):
        interp = self._file("compat-not-listed-interp", "not a program\n")
        path = self._file("compat-script-unlisted", "#!" + interp + "\n")
        with self.assertRaises(PermissionError) as c:
            subprocess.run([path])
        self.assertEqual(c.exception.errno, errno.EACCES)
        # No shell is built for wasm: a /bin/sh script finds no /bin/sh.
        path = self._file("compat-script-sh", "#!/bin/sh\necho natively this runs\n")
        with self.assertRaises(FileNotFoundError):
            subprocess.run([path])

    def test_dup_and_dup2(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        d = os.dup(w)
        self.assertFalse(os.get_inheritable(d))
        os.write(d, b"a")
        os.close(d)
        d2 = os.dup2(w, 60)
        self.assertEqual(d2, 60)
        self.assertTrue(os.get_inheritable(60))
        os.dup2(w, 60, inheritable=False)
        self.assertFalse(os.get_inheritable(60))
        os.write(60, b"b")
        os.close(60)
        self.assertEqual(os.read(r, 10), b"ab")

    def test_posix_spawn_setsigmask(self):
        code = "import signal; signal.raise_signal(signal.SIGUSR1)"
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ,
                             setsigmask=[signal.SIGUSR1])
        self.assertEqual(os.waitpid(pid, 0)[1], 0)
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], os.environ)
        self.assertEqual(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), -signal.SIGUSR1)

    def test_no_terminal(self):
        # As without a controlling terminal: /dev/tty cannot be opened.
        with self.assertRaises(OSError):
            open("/dev/tty", "a")

    def test_kill_and_wait_status(self):
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        p.kill()
        self.assertEqual(p.wait(), -signal.SIGKILL)
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        p.terminate()
        self.assertEqual(p.wait(), -signal.SIGTERM)

    def test_child_signal_handler(self):
        p = subprocess.Popen(
            [sys.executable, "-c",
             "import signal, sys, time\n"
             "signal.signal(signal.SIGUSR1, lambda *a: sys.exit(7))\n"
             "print('ready', flush=True)\n"
             "time.sleep(60)\n"],
            stdout=subprocess.PIPE)
        self.assertEqual(p.stdout.readline(), b"ready\n")
        p.send_signal(signal.SIGUSR1)
        self.assertEqual(p.wait(), 7)
        p.stdout.close()

    def test_pass_fds_and_inheritable(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.assertFalse(os.get_inheritable(w))
        code = "import os, sys; os.write(int(sys.argv[1]), b'via fd')"
        subprocess.run([sys.executable, "-c", code, str(w)], pass_fds=[w], check=True)
        os.set_inheritable(w, True)
        self.assertTrue(os.get_inheritable(w))
        subprocess.run([sys.executable, "-c", code, str(w)], close_fds=False, check=True)
        os.close(w)
        self.assertEqual(os.read(r, 100), b"via fdvia fd")
        # A closed fd's number does not keep its flag.
        r2, w2 = os.pipe()
        self.addCleanup(os.close, r2)
        self.addCleanup(os.close, w2)
        self.assertFalse(os.get_inheritable(r2) or os.get_inheritable(w2))


class SignalTests(unittest.TestCase):
    def setUp(self):
        self.got = []

    def handler(self, signum, frame):
        self.got.append(signum)

    def test_kill_self_runs_handler(self):
        old = signal.signal(signal.SIGUSR1, self.handler)
        self.addCleanup(signal.signal, signal.SIGUSR1, old)
        os.kill(os.getpid(), signal.SIGUSR1)
        for _ in range(100):
            if self.got:
                break
            time.sleep(0.01)
        self.assertEqual(self.got, [signal.SIGUSR1])

    def test_alarm_interrupts_sleep(self):
        old = signal.signal(signal.SIGALRM, self.handler)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        t0 = time.monotonic()
        time.sleep(0.5)  # PEP 475: the handler runs, the sleep goes on
        self.assertEqual(self.got, [signal.SIGALRM])
        self.assertGreaterEqual(time.monotonic() - t0, 0.45)

    def test_handler_exception_interrupts_read(self):
        def boom(signum, frame):
            raise InterruptedError("alarm")
        old = signal.signal(signal.SIGALRM, boom)
        self.addCleanup(signal.signal, signal.SIGALRM, old)
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with self.assertRaises(InterruptedError):
            os.read(r, 1)


class MultiprocessingTests(unittest.TestCase):
    """multiprocessing's "spawn" start method, which needs no threads:
    the child is sys.executable started with a pipe (and the resource
    tracker's), preparation data pickled through it."""

    def setUp(self):
        import multiprocessing
        self.ctx = multiprocessing.get_context("spawn")

    def test_process_and_pipe(self):
        r, w = self.ctx.Pipe(duplex=False)
        p = self.ctx.Process(target=_double_into, args=(w, 21))
        p.start()
        w.close()
        self.assertEqual(r.recv(), 42)
        p.join(60)
        self.assertEqual(p.exitcode, 0)
        r.close()

    def test_exitcode_and_terminate(self):
        p = self.ctx.Process(target=_exit_with, args=(7,))
        p.start()
        p.join(60)
        self.assertEqual(p.exitcode, 7)
        p = self.ctx.Process(target=time.sleep, args=(60,))
        p.start()
        p.terminate()
        p.join(60)
        self.assertEqual(p.exitcode, -signal.SIGTERM)


if __name__ == "__main__":
    unittest.main()
