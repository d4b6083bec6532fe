#!/usr/bin/env python3
"""Compares two captures of the same database, event by event, field by field.

    compare.py [options] EXPECTED ACTUAL

EXPECTED is normally the Debezium runner's JSONL ({"topic", "key", "value",
"headers": [[name, value], ...]} with key and value as JSON), ACTUAL timevault's
topics dumped with `kcat -C -e -J` ({"topic", "partition", "offset", "key":
STRING, "payload": STRING, "headers": [name, value, ...]}). Either file may be
in either format; a line's format is recognised by its fields.

Events are grouped per topic; heartbeat topics (__debezium-heartbeat.*) are
left out. Within a topic, events are paired in order when both sides hold the
topic in one partition (the runner's file always does; the sequences are first
aligned on key and op, so a missing or extra event is reported as one), otherwise
by key, in order within a key (all Kafka guarantees across partitions). Every pair is
compared: the key, the value, and the Debezium headers that carry meaning
(__debezium.oldkey and __debezium.newkey on primary-key changes;
--all-headers adds the others but __debezium.context.runId).

Allowed to differ (processing times and identity of the capturing program):
  change events:  ts_ms, ts_us, ts_ns of the envelope; source.version, source.name
  transaction topic: ts_ms
  snapshot ('r') events, which each capture reads in its own snapshot
  transaction right after creating its own slot: source.ts_ms/ts_us/ts_ns, and
  source.lsn and source.txId, which must instead be the same for all of one
  side's snapshot events (source.sequence is compared with that side's
  snapshot LSN written as "<snapshot lsn>").
With schemas.enable=true the value is {"schema", "payload"}: the same rules
apply under "payload"; the schema is compared in full.

Prints each mismatch (topic, event index, JSON path, both values), a per-topic
count table, and as its last line `compat mismatches=<N> events=<M>` (M: the
EXPECTED side's events, heartbeats aside). Exits 1 if N > 0 (a topic whose
event counts differ is a mismatch) or M == 0, 2 on unreadable input.
"""

import argparse
import difflib
import json
import math
import sys
from collections import OrderedDict, defaultdict

HEARTBEAT_PREFIX = "__debezium-heartbeat."
MEANINGFUL_HEADERS = ("__debezium.oldkey", "__debezium.newkey")
NEVER_COMPARED_HEADERS = ("__debezium.context.runId",)
ABSENT = "<absent>"


class InputError(Exception):
    pass


class Event:
    __slots__ = ("topic", "partition", "offset", "key", "value", "headers", "line")

    def __init__(self, topic, partition, offset, key, value, headers, line):
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
        self.line = line


def _parse_json_text(text, what, path, lineno):
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as e:
        raise InputError(f"{path}:{lineno}: {what} is not JSON ({e}): {text[:200]!r}")


def load(path):
    """Events of one file, in file order."""
    events = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e}")
    with f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                o = json.loads(line)
            except ValueError as e:
                raise InputError(f"{path}:{lineno}: not a JSON line ({e}): {line[:200]!r}")
            if not isinstance(o, dict) or "topic" not in o:
                raise InputError(f"{path}:{lineno}: no 'topic' field: {line[:200]!r}")
            headers = []
            if "payload" in o:  # kcat -J: key and payload are strings
                key = _parse_json_text(o.get("key"), "key", path, lineno)
                value = _parse_json_text(o.get("payload"), "payload", path, lineno)
                raw = o.get("headers") or []
                for i in range(0, len(raw) - 1, 2):
                    headers.append((raw[i], raw[i + 1]))
                partition, offset = o.get("partition", 0), o.get("offset")
            else:  # the runner's lines: key and value are JSON already
                key, value = o.get("key"), o.get("value")
                for h in o.get("headers") or []:
                    headers.append((h[0], h[1]))
                partition, offset = 0, None
            events.append(Event(o["topic"], partition, offset, key, value, headers, lineno))
    return events


def by_topic(events):
    topics = OrderedDict()
    for e in events:
        if e.topic.startswith(HEARTBEAT_PREFIX):
            continue
        topics.setdefault(e.topic, []).append(e)
    return topics


def canon(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def show(v, limit=160):
    s = ABSENT if v is ABSENT else json.dumps(v, ensure_ascii=False)
    return s if len(s) <= limit else s[: limit - 20] + f"...({len(s)} chars)"


class Comparison:
    def __init__(self, label_a, label_b, prefix, max_print, all_headers):
        self.label_a = label_a
        self.label_b = label_b
        self.prefix = prefix
        self.max_print = max_print
        self.all_headers = all_headers
        self.mismatches = 0
        self.printed = 0

    def report(self, topic, index, path, a, b, note=""):
        self.mismatches += 1
        if self.printed < self.max_print:
            self.printed += 1
            print(f"MISMATCH topic={topic} event={index} path={path}{(' (' + note + ')') if note else ''}\n"
                  f"    {self.label_a}: {show(a)}\n    {self.label_b}: {show(b)}")

    # -- values ---------------------------------------------------------------

    def compare_json(self, topic, index, path, a, b, allowed):
        if path in allowed:
            return
        if a is ABSENT or b is ABSENT:
            self.report(topic, index, path, a, b)
            return
        # JSON types must agree: 1 is not 1.0, true is not 1.
        if type(a) is not type(b):
            self.report(topic, index, path, a, b, f"type {type(a).__name__} vs {type(b).__name__}")
            return
        if isinstance(a, dict):
            for k in list(a.keys()) + [k for k in b.keys() if k not in a]:
                self.compare_json(topic, index, f"{path}.{k}", a.get(k, ABSENT), b.get(k, ABSENT), allowed)
        elif isinstance(a, list):
            if len(a) != len(b):
                self.report(topic, index, path, a, b, f"length {len(a)} vs {len(b)}")
                return
            for i, (x, y) in enumerate(zip(a, b)):
                self.compare_json(topic, index, f"{path}[{i}]", x, y, allowed)
        elif isinstance(a, float):
            if not (a == b or (math.isnan(a) and math.isnan(b))):
                self.report(topic, index, path, a, b)
        elif a != b:
            self.report(topic, index, path, a, b)

    # -- events ---------------------------------------------------------------

    @staticmethod
    def envelope(value):
        """(path prefix, envelope dict) of a value, schemas.enable or not."""
        if isinstance(value, dict) and set(value.keys()) == {"schema", "payload"}:
            return "value.payload", value["payload"]
        return "value", value

    def snapshot_view(self, env, side_lsns):
        """The envelope of a snapshot event with the snapshot's own LSN and txId
        written as placeholders; records them for the one-snapshot check."""
        env = dict(env)
        src = dict(env.get("source") or {})
        lsn, txid = src.get("lsn", ABSENT), src.get("txId", ABSENT)
        side_lsns.add((canon(lsn), canon(txid)))
        if "lsn" in src:
            src["lsn"] = "<snapshot lsn>" if isinstance(lsn, int) else lsn
        if "txId" in src:
            src["txId"] = "<snapshot txId>" if isinstance(txid, int) else txid
        seq = src.get("sequence")
        if isinstance(seq, str) and isinstance(lsn, int):
            src["sequence"] = seq.replace(f'"{lsn}"', '"<snapshot lsn>"')
        env["source"] = src
        return env

    def compare_event(self, topic, index, a, b, snap_a, snap_b):
        self.compare_json(topic, index, "key", a.key, b.key, ())
        is_tx = topic == f"{self.prefix}.transaction"
        pa, ea = self.envelope(a.value)
        pb, eb = self.envelope(b.value)
        if pa != pb:
            self.report(topic, index, "value", a.value, b.value, "one side has schemas, the other not")
            return
        va, vb = a.value, b.value
        if is_tx:
            allowed = {f"{pa}.ts_ms"}
        else:
            allowed = {f"{pa}.{f}" for f in ("ts_ms", "ts_us", "ts_ns", "source.version", "source.name")}
            if (isinstance(ea, dict) and isinstance(eb, dict) and ea.get("op") == "r" and eb.get("op") == "r"):
                allowed |= {f"{pa}.source.{f}" for f in ("ts_ms", "ts_us", "ts_ns")}
                for f in ("ts_ms", "ts_us", "ts_ns"):
                    x, y = (ea.get("source") or {}).get(f, ABSENT), (eb.get("source") or {}).get(f, ABSENT)
                    if type(x) is not type(y):
                        self.report(topic, index, f"{pa}.source.{f}", x, y, "snapshot time: types differ")
                ea, eb = self.snapshot_view(ea, snap_a), self.snapshot_view(eb, snap_b)
                if pa == "value.payload":
                    va, vb = dict(va, payload=ea), dict(vb, payload=eb)
                else:
                    va, vb = ea, eb
        self.compare_json(topic, index, "value", va, vb, allowed)
        self.compare_headers(topic, index, a.headers, b.headers)

    def compare_headers(self, topic, index, ha, hb):
        def pick(hs):
            out = defaultdict(list)
            for k, v in hs:
                if k in NEVER_COMPARED_HEADERS:
                    continue
                if self.all_headers or k in MEANINGFUL_HEADERS:
                    out[k].append(v)
            return out

        da, db = pick(ha), pick(hb)
        for k in list(da.keys()) + [k for k in db.keys() if k not in da]:
            xa, xb = da.get(k, ABSENT), db.get(k, ABSENT)
            if xa is ABSENT or xb is ABSENT or len(xa) != len(xb):
                self.report(topic, index, f"headers[{k}]", xa, xb)
                continue
            for x, y in zip(xa, xb):
                # Header values are text (Connect's SimpleHeaderConverter); compare
                # them as JSON when both parse, so spacing does not matter.
                try:
                    jx, jy = json.loads(x), json.loads(y)
                except (TypeError, ValueError):
                    if x != y:
                        self.report(topic, index, f"headers[{k}]", x, y)
                    continue
                self.compare_json(topic, index, f"headers[{k}]", jx, jy, ())

    @staticmethod
    def signature(e):
        _, env = Comparison.envelope(e.value)
        if env is None:
            kind = "tombstone"
        elif isinstance(env, dict):
            kind = str(env.get("op", env.get("status")))
        else:
            kind = "?"
        return canon(e.key) + "|" + kind

    def pair_in_order(self, topic, evs_a, evs_b, snap_a, snap_b):
        """Pairs the two sequences in order. They are aligned on (key, op) first,
        so one missing or extra event is reported as such instead of shifting
        every later pair; stretches that do not align are paired in order."""
        sm = difflib.SequenceMatcher(None, [self.signature(e) for e in evs_a],
                                     [self.signature(e) for e in evs_b], autojunk=False)
        for tag, i1, i2, j1, j2 in sm.get_opcodes():
            n = min(i2 - i1, j2 - j1)
            for k in range(n):
                self.compare_event(topic, i1 + k, evs_a[i1 + k], evs_b[j1 + k], snap_a, snap_b)
            for i in range(i1 + n, i2):
                self.report(topic, i, "<event>", {"key": evs_a[i].key, "value": evs_a[i].value}, ABSENT,
                            f"missing on {self.label_b}'s side")
            for j in range(j1 + n, j2):
                self.report(topic, f"{self.label_b}#{j}", "<event>", ABSENT,
                            {"key": evs_b[j].key, "value": evs_b[j].value}, f"extra on {self.label_b}'s side")

    def compare_topic(self, topic, evs_a, evs_b, snap_a, snap_b):
        one_partition = all(e.partition == 0 for e in evs_a) and all(e.partition == 0 for e in evs_b)
        if len(evs_a) != len(evs_b):
            self.report(topic, "-", "<event count>", len(evs_a), len(evs_b))
        if one_partition:
            self.pair_in_order(topic, evs_a, evs_b, snap_a, snap_b)
            return
        # Several partitions: the order holds per key only.
        groups_a, groups_b = OrderedDict(), OrderedDict()
        for i, e in enumerate(evs_a):
            groups_a.setdefault(canon(e.key), []).append((i, e))
        for i, e in enumerate(evs_b):
            groups_b.setdefault(canon(e.key), []).append((i, e))
        for k in list(groups_a.keys()) + [k for k in groups_b.keys() if k not in groups_a]:
            ga, gb = groups_a.get(k, []), groups_b.get(k, [])
            for (i, a), (_, b) in zip(ga, gb):
                self.compare_event(topic, i, a, b, snap_a, snap_b)
            for i, e in ga[len(gb):]:
                self.report(topic, i, "<event>", {"key": e.key, "value": e.value}, ABSENT, "missing (by key)")
            for j, e in gb[len(ga):]:
                self.report(topic, f"{self.label_b}#{j}", "<event>", ABSENT, {"key": e.key, "value": e.value},
                            "extra (by key)")


def coverage(path, prefix):
    """Checks that the workload caused every kind of event it is meant to: a
    workload that stopped exercising something would let its encoding break
    unnoticed."""
    try:
        events = load(path)
    except InputError as e:
        print(f"compare.py: {e}", file=sys.stderr)
        return 2
    seen = set()
    for e in events:
        if e.topic.startswith(HEARTBEAT_PREFIX):
            seen.add("heartbeat")
            continue
        _, env = Comparison.envelope(e.value)
        if e.topic == f"{prefix}.transaction":
            if isinstance(env, dict):
                seen.add("transaction " + str(env.get("status")))
                if len(env.get("data_collections") or []) > 1:
                    seen.add("multi-table transaction")
            continue
        if env is None:
            seen.add("tombstone")
            continue
        seen.add("op " + str(env.get("op")))
        if env.get("op") == "r" and (env.get("source") or {}).get("snapshot") == "last":
            seen.add("snapshot last")
        if "__debezium_unavailable_value" in json.dumps(env.get("after")):
            seen.add("unchanged TOAST placeholder")
        if env.get("before") is not None and env.get("op") == "u":
            seen.add("update with old row (REPLICA IDENTITY FULL)")
        for k, _ in e.headers:
            if k in MEANINGFUL_HEADERS:
                seen.add("header " + k)
    want = ["op r", "snapshot last", "op c", "op u", "op d", "op t", "op m", "tombstone", "transaction BEGIN",
            "transaction END", "multi-table transaction", "unchanged TOAST placeholder",
            "update with old row (REPLICA IDENTITY FULL)", "header __debezium.oldkey",
            "header __debezium.newkey", "heartbeat"]
    missing = [w for w in want if w not in seen]
    for w in missing:
        print(f"coverage: {path} has no '{w}' event")
    print(f"coverage: {len(want) - len(missing)}/{len(want)} kinds of event present")
    return 1 if missing else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("expected", nargs="?", help="Debezium's events (the reference)")
    ap.add_argument("actual", nargs="?", help="the events to check (timevault's)")
    ap.add_argument("--coverage", metavar="FILE",
                    help="instead of comparing: check that FILE (Debezium's output of the workload) holds "
                         "every kind of event the workload is meant to cause")
    ap.add_argument("--label-a", default="debezium")
    ap.add_argument("--label-b", default="timevault")
    ap.add_argument("--prefix", default="compat", help="topic prefix (names the transaction topic)")
    ap.add_argument("--max-print", type=int, default=200, help="print at most this many mismatches")
    ap.add_argument("--all-headers", action="store_true",
                    help="compare every header (but __debezium.context.runId), not only oldkey/newkey")
    args = ap.parse_args(argv)
    if args.coverage:
        return coverage(args.coverage, args.prefix)
    if not args.expected or not args.actual:
        ap.error("EXPECTED and ACTUAL are required")

    try:
        ta = by_topic(load(args.expected))
        tb = by_topic(load(args.actual))
    except InputError as e:
        print(f"compare.py: {e}", file=sys.stderr)
        print("compat mismatches=1 events=0")
        return 2

    c = Comparison(args.label_a, args.label_b, args.prefix, args.max_print, args.all_headers)
    snap_a, snap_b = set(), set()
    events = sum(len(v) for v in ta.values())
    topics = list(ta.keys()) + [t for t in tb.keys() if t not in ta]
    for t in topics:
        c.compare_topic(t, ta.get(t, []), tb.get(t, []), snap_a, snap_b)
    # Each side read its snapshot in one transaction at one LSN.
    for label, snaps in ((args.label_a, snap_a), (args.label_b, snap_b)):
        if len(snaps) > 1:
            c.report("*", "-", "<snapshot source.lsn/txId>", sorted(snaps), ABSENT,
                     f"{label}'s snapshot events do not share one LSN and txId")
    if c.mismatches > c.printed:
        print(f"... {c.mismatches - c.printed} more mismatches not printed")

    width = max([len(t) for t in topics] + [5])
    print(f"{'topic':<{width}}  {args.label_a:>9}  {args.label_b:>9}")
    for t in topics:
        na, nb = len(ta.get(t, [])), len(tb.get(t, []))
        print(f"{t:<{width}}  {na:>9}  {nb:>9}{'' if na == nb else '  <-- differs'}")
    print(f"compat mismatches={c.mismatches} events={events}")
    return 1 if c.mismatches or events == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
