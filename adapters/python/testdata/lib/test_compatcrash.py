"""Dies half-way, as a trap in a WebAssembly build would."""
import os
import unittest


class Crash(unittest.TestCase):
    def test_a_passes(self):
        pass

    def test_b_skips(self):
        self.skipTest("not here")

    def test_c_aborts(self):
        os.abort()

    def test_d_never_runs(self):
        pass


if __name__ == "__main__":
    unittest.main()
