"""Fails the first time it runs in a directory, passes after: a flaky test.
COMPAT_FLAKY_DIR names the directory that remembers the first run."""
import os
import unittest


class Flaky(unittest.TestCase):
    def test_flaky(self):
        marker = os.path.join(os.environ["COMPAT_FLAKY_DIR"], "ran-once")
        if not os.path.exists(marker):
            open(marker, "w").close()
            self.fail("first run fails")

    def test_always_fails(self):
        self.assertEqual("wasm", "native")

    def test_passes(self):
        pass


if __name__ == "__main__":
    unittest.main()
