# Host-side unit test (plain CPython, no sandbox):
#   PYTHONPATH=../../../guest-sdk/python python3 -m unittest test_app   (needs python-dateutil)
import os
import unittest

import app
import weft.testing as wt

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


class DqCheckTest(unittest.TestCase):
    def test_passes(self):
        out = wt.run(app.run, {"path": f"{FIX}/orders.csv", "checks": {"min_rows": 1, "columns": ["order_id", "amount"], "max_null_ratio": {"amount": 0.0}, "unique": ["order_id"]}})
        self.assertEqual(out["rows"], 4)
        self.assertEqual(out["schema"]["amount"], "number")
        self.assertEqual(out["schema"]["created_at"], "timestamp")

    def test_fails(self):
        e = wt.run_error(app.run, {"path": f"{FIX}/orders_bad.csv", "checks": {"max_null_ratio": {"amount": 0.0}, "unique": ["order_id"]}})
        self.assertEqual(e.error, "DataQuality.Failed")
        self.assertIn("null_ratio:amount 2 of 4 null", e.cause)
        self.assertIn("unique:order_id 1 duplicate", e.cause)

    def test_json(self):
        out = wt.run(app.run, {"path": f"{FIX}/events.json"})
        self.assertEqual(out["null_ratio"]["value"], round(1 / 3, 6))
        self.assertEqual(out["schema"]["at"], "date")


if __name__ == "__main__":
    unittest.main()
