"""File modes, directory fds, sendfile and time zones of python.wasm on the
vkernel.

Copied into a copy of the build's Lib/test by TestFilesOnTheVkernel
(adapters/python) and run there by regrtest like an upstream module.
"""
import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from datetime import datetime, timedelta


class FileTests(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)

    def test_umask_masks_and_reaches_children(self):
        old = os.umask(0o027)
        self.addCleanup(os.umask, old)
        os.mkdir(os.path.join(self.dir, "d"), 0o777)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.dir, "d")).st_mode), 0o750)
        show = [sys.executable, "-c", "import os; print(oct(os.umask(0)))"]
        # Inherited, as across fork and exec.
        self.assertEqual(subprocess.check_output(show).strip(), b"0o27")
        # subprocess's umask= for the child alone.
        self.assertEqual(subprocess.check_output(show, umask=0o077).strip(), b"0o77")
        self.assertEqual(os.umask(0o027), 0o027)
        # The carrier variable is not the child's to see.
        out = subprocess.check_output([sys.executable, "-c", "import os; print('VKPOSIX_UMASK' in os.environ)"])
        self.assertEqual(out.strip(), b"False")

    def test_chown_as_the_owner(self):
        path = os.path.join(self.dir, "f")
        open(path, "wb").close()
        os.chown(path, -1, -1)
        os.chown(path, os.getuid(), os.getgid())
        # test.support.os_helper.can_chmod() asks for os.chown and modes
        # that change.
        os.chmod(path, 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_sendfile(self):
        src, dst = os.path.join(self.dir, "src"), os.path.join(self.dir, "dst")
        with open(src, "wb") as f:
            f.write(b"0123456789")
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            self.assertEqual(os.sendfile(fout.fileno(), fin.fileno(), 2, 5), 5)
            self.assertEqual(fin.tell(), 0)
            self.assertEqual(os.sendfile(fout.fileno(), fin.fileno(), 10, 5), 0)
        with open(dst, "rb") as f:
            self.assertEqual(f.read(), b"23456")
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        with open(dst, "wb") as fout:
            # A pipe: no offset to read at (Linux checks that first).
            with self.assertRaises(OSError) as cm:
                os.sendfile(fout.fileno(), r, 0, 1)
            self.assertEqual(cm.exception.errno, errno.ESPIPE)

    def test_copy_file_range_and_splice(self):
        src, dst = os.path.join(self.dir, "src"), os.path.join(self.dir, "dst")
        with open(src, "wb") as f:
            f.write(b"0123456789")
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        with open(src, "rb") as fin, open(dst, "w+b") as fout:
            self.assertEqual(os.copy_file_range(fin.fileno(), fout.fileno(), 4, 3, 0), 4)
            self.assertEqual(os.splice(fin.fileno(), w, 2, offset_src=8), 2)
            self.assertEqual(os.read(r, 10), b"89")
            with self.assertRaises(OSError) as cm:
                os.splice(fin.fileno(), fout.fileno(), 1)
            self.assertEqual(cm.exception.errno, errno.EINVAL)
        with open(dst, "rb") as f:
            self.assertEqual(f.read(), b"3456")

    def test_fwalk_and_fd_listing(self):
        os.makedirs(os.path.join(self.dir, "a", "b"))
        open(os.path.join(self.dir, "a", "f"), "wb").close()
        seen = {os.path.relpath(top, self.dir): (sorted(dirs), sorted(files))
                for top, dirs, files, fd in os.fwalk(self.dir)}
        self.assertEqual(seen, {".": (["a"], []), "a": (["b"], ["f"]), os.path.join("a", "b"): ([], [])})
        fd = os.open(self.dir, os.O_RDONLY)
        self.addCleanup(os.close, fd)
        self.assertEqual(os.listdir(fd), ["a"])
        self.assertEqual([e.name for e in os.scandir(fd)], ["a"])
        # shutil.rmtree takes its fd-based path, as on Linux.
        self.assertTrue(shutil._use_fd_functions)
        shutil.rmtree(os.path.join(self.dir, "a"))
        self.assertEqual(os.listdir(self.dir), [])

    def test_closed_fd_is_ebadf(self):
        fd = os.open(os.path.join(self.dir, "g"), os.O_WRONLY | os.O_CREAT)
        os.close(fd)
        with self.assertRaises(OSError) as cm:
            os.fstat(fd)
        self.assertEqual(cm.exception.errno, errno.EBADF)

    def test_zoneinfo_from_the_host(self):
        import zoneinfo
        tz = zoneinfo.ZoneInfo("America/New_York")
        self.assertEqual(datetime(2020, 1, 15, tzinfo=tz).utcoffset(), timedelta(hours=-5))
        self.assertEqual(datetime(2020, 7, 15, tzinfo=tz).utcoffset(), timedelta(hours=-4))


if __name__ == "__main__":
    unittest.main()
