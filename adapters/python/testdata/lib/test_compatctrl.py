"""Prints a control character in a failing test. regrtest 3.11 then fails to
build its own JUnit XML (ElementTree rejects the character) and exits 1
without writing the file: the adapter must recover from the -v output."""
import unittest


class Control(unittest.TestCase):
    def test_ok(self):
        pass

    def test_prints_control_char(self):
        print("before \x01\x1b[31mred\x1b[0m")
        self.fail("with a control character in its output")


if __name__ == "__main__":
    unittest.main()
