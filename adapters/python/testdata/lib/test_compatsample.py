"""A regrtest module with every outcome, to record regrtest's JUnit XML."""
import sys
import unittest


class Outcomes(unittest.TestCase):
    def test_pass(self):
        pass

    def test_fail(self):
        print("stdout before failure red")
        self.assertEqual(1, 2, "one is not two")

    def test_error(self):
        raise OSError(58, "Not supported")

    @unittest.skip("not on this platform")
    def test_skip(self):
        pass

    @unittest.expectedFailure
    def test_expected_failure(self):
        self.fail("known")

    @unittest.expectedFailure
    def test_unexpected_success(self):
        pass

    def test_subtests(self):
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1)


class BrokenSetup(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("setUpClass broke")

    def test_never(self):
        pass


if __name__ == "__main__":
    unittest.main()
