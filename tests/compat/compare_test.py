#!/usr/bin/env python3
"""Tests of compare.py (ctest compat.compare): identical captures pass, the
allowed differences pass, and every other difference is found and named by
its JSON path. Runs compare.py as a program, on synthetic events and on the
Debezium reference outputs in debezium-reference/."""

import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
COMPARE = os.path.join(HERE, "compare.py")
REFERENCE = os.path.join(HERE, "debezium-reference")


def source(lsn, txid, snapshot="false", ts=1700000000123, seq=None):
    return {"version": "3.6.1.Final", "connector": "postgresql", "name": "compat", "ts_ms": ts,
            "snapshot": snapshot, "db": "compat_plain",
            "sequence": seq if seq is not None else json.dumps([None, str(lsn)], separators=(",", ":")),
            "ts_us": ts * 1000, "ts_ns": ts * 1000000, "schema": "public", "table": "t", "txId": txid,
            "lsn": lsn, "xmin": None, "origin": None, "origin_lsn": None}


def change(op, before, after, src, tx=None, ts=1700000000999):
    return {"before": before, "after": after, "source": src, "transaction": tx, "op": op,
            "ts_ms": ts, "ts_us": ts * 1000, "ts_ns": ts * 1000000}


CONTEXT = [["__debezium.context.connectorLogicalName", "compat"], ["__debezium.context.taskId", "0"],
           ["__debezium.context.connectorName", "postgresql"], ["__debezium.context.runId", "run-1"]]


def sample():
    """A small capture in the runner's format: snapshot, a transaction with an
    insert, a key change, a delete and its tombstone, a truncate, heartbeats."""
    tx = lambda lsn, n: {"id": f"750:{lsn}", "total_order": n, "data_collection_order": n}
    row = {"id": 1, "tenant_id": "a", "n": 1.5, "flag": True, "big": "__debezium_unavailable_value",
           "arr": [1, None, 3]}
    return [
        {"topic": "compat.public.t", "key": {"id": 1},
         "value": change("r", None, row, source(100, 700, "first")), "headers": CONTEXT},
        {"topic": "compat.public.t", "key": {"id": 2},
         "value": change("r", None, dict(row, id=2), source(100, 700, "last")), "headers": CONTEXT},
        {"topic": "__debezium-heartbeat.compat", "key": {"serverName": "compat"}, "value": {"ts_ms": 1}},
        {"topic": "compat.transaction", "key": {"id": "750:200"},
         "value": {"status": "BEGIN", "id": "750:200", "event_count": None, "data_collections": None,
                   "ts_ms": 1700000000123}},
        {"topic": "compat.public.t", "key": {"id": 3},
         "value": change("c", None, dict(row, id=3), source(200, 750), tx(200, 1)), "headers": CONTEXT},
        {"topic": "compat.public.t", "key": {"id": 1},
         "value": change("d", dict(row, n=None), None, source(300, 750), tx(300, 2)),
         "headers": [["__debezium.newkey", '{"id":9}']] + CONTEXT},
        {"topic": "compat.public.t", "key": {"id": 1}, "value": None,
         "headers": [["__debezium.newkey", '{"id":9}']] + CONTEXT},
        {"topic": "compat.public.t", "key": {"id": 9},
         "value": change("c", None, dict(row, id=9), source(300, 750), tx(300, 3)),
         "headers": [["__debezium.oldkey", '{"id":1}']] + CONTEXT},
        {"topic": "compat.public.t", "key": None,
         "value": change("t", None, None, source(400, 750), tx(400, 4)), "headers": CONTEXT},
        {"topic": "compat.transaction", "key": {"id": "750:500"},
         "value": {"status": "END", "id": "750:500", "event_count": 4,
                   "data_collections": [{"data_collection": "public.t", "event_count": 4}],
                   "ts_ms": 1700000000123}},
        {"topic": "__debezium-heartbeat.compat", "key": {"serverName": "compat"}, "value": {"ts_ms": 2}},
    ]


def with_schemas(events):
    """The same events as JsonConverter writes them with schemas.enable=true
    (a schema that is only good enough to be compared)."""
    out = []
    for e in events:
        e = copy.deepcopy(e)
        if e["key"] is not None:
            e["key"] = {"schema": {"type": "struct", "optional": False, "name": e["topic"] + ".Key"},
                        "payload": e["key"]}
        if e["value"] is not None:
            e["value"] = {"schema": {"type": "struct", "optional": False, "name": e["topic"] + ".Envelope",
                                     "version": 2}, "payload": e["value"]}
        out.append(e)
    return out


def as_kcat(events, partition_of=lambda e: 0):
    """kcat -C -J lines, as timevault's topics are dumped."""
    lines, offsets = [], {}
    for e in events:
        p = partition_of(e)
        off = offsets.get((e["topic"], p), 0)
        offsets[(e["topic"], p)] = off + 1
        o = {"topic": e["topic"], "partition": p, "offset": off, "tstype": "create", "ts": 1, "broker": 1}
        if e.get("headers"):
            o["headers"] = [x for h in e["headers"] for x in h]
        o["key"] = None if e["key"] is None else json.dumps(e["key"], separators=(",", ":"))
        o["payload"] = None if e["value"] is None else json.dumps(e["value"], separators=(",", ":"))
        lines.append(json.dumps(o))
    return "\n".join(lines) + "\n"


def as_runner(events):
    return "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events)


class CompareTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_compare(self, a_text, b_text, *extra):
        a = self.write("a.jsonl", a_text)
        b = self.write("b.jsonl", b_text)
        p = subprocess.run([sys.executable, COMPARE, *extra, a, b], capture_output=True, text=True)
        last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        return p.returncode, p.stdout, last

    def assert_same(self, a_events, b_text, *extra):
        rc, out, last = self.run_compare(as_runner(a_events), b_text, *extra)
        self.assertEqual(rc, 0, out)
        self.assertRegex(last, r"^compat mismatches=0 events=[1-9][0-9]*$")

    def assert_differs(self, a_events, b_events, path, count=1, kcat=True, *extra):
        b_text = as_kcat(b_events) if kcat else as_runner(b_events)
        rc, out, last = self.run_compare(as_runner(a_events), b_text, *extra)
        self.assertEqual(rc, 1, out)
        self.assertIn(f"path={path}", out)
        self.assertRegex(last, rf"^compat mismatches={count} events=\d+$", out)
        return out

    # -- passing ------------------------------------------------------------------

    def test_identical_runner_and_kcat_formats(self):
        ev = sample()
        self.assert_same(ev, as_runner(ev))
        self.assert_same(ev, as_kcat(ev))
        rc, out, last = self.run_compare(as_runner(ev), as_kcat(ev))
        self.assertIn("compat.public.t", out)
        self.assertEqual(last, "compat mismatches=0 events=9")

    def test_allowed_differences(self):
        a = sample()
        b = copy.deepcopy(a)
        for e in b:
            v = e["value"]
            if e["topic"] == "compat.transaction":
                v["ts_ms"] += 5
            elif e["topic"].startswith("__debezium-heartbeat"):
                v["ts_ms"] += 5
                v["extra"] = "timevault adds fields to heartbeats"
            elif v is not None:
                v["ts_ms"] += 7
                v["ts_us"] += 7000
                v["ts_ns"] += 7000000
                v["source"]["version"] = "timevault-0.1"
                v["source"]["name"] = "other"
                if v["op"] == "r":  # another snapshot: its own time, LSN and txId
                    v["source"].update(ts_ms=1, ts_us=1000, ts_ns=1000000, lsn=123, txId=9,
                                       sequence='[null,"123"]')
            e["headers"] = [h if h[0] != "__debezium.context.runId" else [h[0], "run-2"]
                            for h in e.get("headers", [])]
        b.append({"topic": "__debezium-heartbeat.compat", "key": {"serverName": "compat"}, "value": {"ts_ms": 3}})
        self.assert_same(a, as_kcat(b))
        self.assert_same(with_schemas(a), as_kcat(with_schemas(b)))

    def test_several_partitions_pair_by_key(self):
        a = sample()
        b = copy.deepcopy(a)
        # Keys 1 and 9 in partition 1, the rest in 0: the order holds per key only.
        part = lambda e: 1 if e["key"] in ({"id": 1}, {"id": 9}) else 0
        b_text = as_kcat(sorted(b, key=part), partition_of=part)
        self.assert_same(a, b_text)

    # -- failing ------------------------------------------------------------------

    def mutate(self, fn, events=None):
        a = events if events is not None else sample()
        b = copy.deepcopy(a)
        fn(b)
        return a, b

    def test_field_value(self):
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(tenant_id="b"))
        out = self.assert_differs(a, b, "value.after.tenant_id")
        self.assertIn('debezium: "a"', out)
        self.assertIn('timevault: "b"', out)
        self.assertIn("topic=compat.public.t event=2 ", out)

    def test_json_types_must_agree(self):
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(id=3.0))
        self.assert_differs(a, b, "value.after.id")  # 3 vs 3.0: int vs float
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(flag=1))
        self.assert_differs(a, b, "value.after.flag")
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(n="1.5"))
        self.assert_differs(a, b, "value.after.n")

    def test_float_precision(self):
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(n=1.5000001))
        self.assert_differs(a, b, "value.after.n")

    def test_missing_and_extra_fields(self):
        a, b = self.mutate(lambda b: b[4]["value"]["after"].pop("big"))
        self.assert_differs(a, b, "value.after.big")
        a, b = self.mutate(lambda b: b[4]["value"]["source"].update(extra=1))
        self.assert_differs(a, b, "value.source.extra")

    def test_array(self):
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(arr=[1, None]))
        self.assert_differs(a, b, "value.after.arr")
        a, b = self.mutate(lambda b: b[4]["value"]["after"].update(arr=[1, 0, 3]))
        self.assert_differs(a, b, "value.after.arr[1]")

    def test_streaming_source_times_lsn_and_transaction_are_compared(self):
        for field in ("ts_ms", "ts_us", "ts_ns", "lsn", "txId", "sequence", "snapshot", "db", "xmin"):
            a, b = self.mutate(lambda b: b[4]["value"]["source"].update({field: 42}))
            self.assert_differs(a, b, f"value.source.{field}")
        a, b = self.mutate(lambda b: b[4]["value"]["transaction"].update(id="750:201"))
        self.assert_differs(a, b, "value.transaction.id")
        a, b = self.mutate(lambda b: b[4]["value"].update(op="u"))
        self.assert_differs(a, b, "value.op")

    def test_transaction_topic(self):
        a, b = self.mutate(lambda b: b[9]["value"]["data_collections"][0].update(event_count=3))
        self.assert_differs(a, b, "value.data_collections[0].event_count")
        a, b = self.mutate(lambda b: b[3].update(key={"id": "750:201"}))
        self.assert_differs(a, b, "key.id")

    def test_key(self):
        a, b = self.mutate(lambda b: b[4]["key"].update(id=4))
        self.assert_differs(a, b, "key.id")
        a, b = self.mutate(lambda b: b[8].update(key={}))  # truncate: null key
        self.assert_differs(a, b, "key")

    def test_missing_tombstone(self):
        a, b = self.mutate(lambda b: b.pop(6))
        out = self.assert_differs(a, b, "<event count>", count=2)
        self.assertIn("topic=compat.public.t event=4 path=<event> (missing on timevault's side)", out)
        self.assertIn("differs", out)
        a, b = self.mutate(lambda b: b.insert(6, copy.deepcopy(b[6])))
        out = self.assert_differs(a, b, "<event>", count=2)
        self.assertIn("extra on timevault's side", out)

    def test_missing_topic(self):
        a, b = self.mutate(lambda b: [b.pop(i) for i in (9, 3)])
        self.assert_differs(a, b, "<event count>", count=3)

    def test_order(self):
        def swap(b):
            b[4], b[5] = b[5], b[4]
        a, b = self.mutate(swap)  # the delete of key 1 before the insert of key 3
        rc, out, last = self.run_compare(as_runner(a), as_kcat(b))
        self.assertEqual(rc, 1, out)
        self.assertIn("missing on timevault's side", out)
        self.assertIn("extra on timevault's side", out)

    def test_key_change_headers(self):
        a, b = self.mutate(lambda b: b[7]["headers"].__setitem__(0, ["__debezium.oldkey", '{"id":2}']))
        self.assert_differs(a, b, "headers[__debezium.oldkey].id")
        a, b = self.mutate(lambda b: b[5]["headers"].pop(0))
        self.assert_differs(a, b, "headers[__debezium.newkey]")
        # Spacing inside a header's JSON does not matter.
        a, b = self.mutate(lambda b: b[7]["headers"].__setitem__(0, ["__debezium.oldkey", '{ "id": 1 }']))
        self.assert_same(a, as_kcat(b))
        # Context headers only with --all-headers.
        a, b = self.mutate(lambda b: b[4]["headers"].pop(0))
        self.assert_same(a, as_kcat(b))
        rc, out, last = self.run_compare(as_runner(a), as_kcat(b), "--all-headers")
        self.assertEqual(rc, 1)
        self.assertIn("headers[__debezium.context.connectorLogicalName]", out)

    def test_snapshot_relaxation_is_narrow(self):
        # The snapshot's own LSN and txId may differ, but not between its events.
        def two_lsns(b):
            b[0]["value"]["source"].update(lsn=111, sequence='[null,"111"]')
            b[1]["value"]["source"].update(lsn=112, sequence='[null,"112"]')
        a, b = self.mutate(two_lsns)
        self.assert_differs(a, b, "<snapshot source.lsn/txId>")
        # Its sequence must still name that LSN.
        a, b = self.mutate(lambda b: [e["value"]["source"].update(lsn=111, sequence='[null,"100"]') for e in b[:2]])
        self.assert_differs(a, b, "value.source.sequence", count=2)
        # Everything else of a snapshot event is compared.
        a, b = self.mutate(lambda b: b[0]["value"]["source"].update(snapshot="true"))
        self.assert_differs(a, b, "value.source.snapshot")
        a, b = self.mutate(lambda b: b[1]["value"]["after"].update(n=2.5))
        self.assert_differs(a, b, "value.after.n")

    def test_schemas(self):
        def opt(b):
            b[4]["value"]["schema"]["optional"] = True
        a, b = self.mutate(opt, with_schemas(sample()))
        self.assert_differs(a, b, "value.schema.optional")
        a, b = self.mutate(lambda b: b[4]["value"]["payload"]["after"].update(id=5), with_schemas(sample()))
        self.assert_differs(a, b, "value.payload.after.id")
        a, b = self.mutate(lambda b: b[4]["value"]["payload"].update(ts_ms=5), with_schemas(sample()))
        self.assert_same(a, as_kcat(b))
        # One side with schemas, the other without.
        rc, out, last = self.run_compare(as_runner(with_schemas(sample())), as_kcat(sample()))
        self.assertEqual(rc, 1)

    def test_no_events_fails(self):
        rc, out, last = self.run_compare("", "")
        self.assertEqual(rc, 1)
        self.assertEqual(last, "compat mismatches=0 events=0")

    def test_bad_input(self):
        rc, out, last = self.run_compare("not json\n", as_kcat(sample()))
        self.assertEqual(rc, 2)


class ReferenceTest(unittest.TestCase):
    """On the real Debezium outputs in debezium-reference/."""

    def files(self):
        names = sorted(n for n in os.listdir(REFERENCE) if n.endswith(".jsonl")) if os.path.isdir(REFERENCE) else []
        if not names:
            self.skipTest("no reference outputs")
        return [os.path.join(REFERENCE, n) for n in names]

    def run_compare(self, a, b, *extra):
        p = subprocess.run([sys.executable, COMPARE, *extra, a, b], capture_output=True, text=True)
        return p.returncode, p.stdout, p.stdout.strip().splitlines()[-1]

    def test_reference_against_itself_and_altered(self):
        for path in self.files():
            with self.subTest(path=path):
                rc, out, last = self.run_compare(path, path)
                self.assertEqual(rc, 0, out)
                self.assertRegex(last, r"^compat mismatches=0 events=[1-9]\d*$")
                with open(path, encoding="utf-8") as f:
                    events = [json.loads(l) for l in f if l.strip()]
                # Alter one field of the first update, and drop the first tombstone.
                altered = copy.deepcopy(events)
                payload = lambda v: v["payload"] if "payload" in v else v
                i = next(i for i, e in enumerate(altered)
                         if e["value"] and payload(e["value"]).get("op") == "u")
                after = payload(altered[i]["value"])["after"]
                field = next(k for k, v in after.items() if isinstance(v, str))
                after[field] += "!"
                j = next(j for j, e in enumerate(altered) if e["value"] is None)
                del altered[j]
                with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
                    f.write(as_kcat(altered))
                try:
                    rc, out, last = self.run_compare(path, f.name)
                finally:
                    os.unlink(f.name)
                self.assertEqual(rc, 1)
                self.assertIn(f".after.{field}", out)
                self.assertIn("path=<event count>", out)
                self.assertNotRegex(last, r"mismatches=0 ")

    def test_coverage(self):
        for path in self.files():
            p = subprocess.run([sys.executable, COMPARE, "--coverage", path], capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=1)
