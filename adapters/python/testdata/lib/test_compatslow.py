"""Outlives any reasonable per-module timeout."""
import time
import unittest


class Slow(unittest.TestCase):
    def test_a_fast(self):
        pass

    def test_b_sleeps(self):
        time.sleep(60)


if __name__ == "__main__":
    unittest.main()
