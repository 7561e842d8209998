"""Checks a Sluice step trace (Chrome trace-event JSON) as Perfetto would read it.

usage: check_trace.py TRACE.json [--tasks N]

The file must pass the trace-event JSON schema (trace_event_schema.json, with jsonschema from
PyPI). With --tasks N it must hold a distributed step: N processes named /job:.../task:K,
complete events on each, flows whose two ends sit inside complete events of different
processes, receives that carry their wait and transfer, and the cost model's estimate on
the nodes it placed. Prints "check_trace: all passed" when every check holds.
"""

import json
import pathlib
import sys

import jsonschema

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def main():
    path = pathlib.Path(sys.argv[1])
    tasks = int(sys.argv[sys.argv.index("--tasks") + 1]) if "--tasks" in sys.argv else 0
    trace = json.loads(path.read_text())
    schema = json.loads((pathlib.Path(__file__).parent / "trace_event_schema.json").read_text())
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(trace))
    check(not errors, f"the trace passes the trace-event schema ({[e.message for e in errors[:3]]})")
    if errors:
        return
    events = trace.get("traceEvents", [])
    slices = [e for e in events if e.get("ph") == "X"]
    check(len(slices) > 0, f"complete events ({len(slices)})")
    processes = {e["pid"]: e["args"]["name"] for e in events
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
    threads = {(e["pid"], e["tid"]) for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    check(all((e["pid"], e["tid"]) in threads for e in slices),
          "every complete event is on a named thread")
    if not tasks:
        return
    names = sorted(processes.values())
    check(len(names) == tasks and all("/task:" in n for n in names),
          f"{tasks} task processes ({names})")
    busy = {e["pid"] for e in slices if e.get("cat") != "transfer.part"}
    check(busy == set(processes), f"kernels on every task ({sorted(busy)} of {sorted(processes)})")

    def inside(end):
        return [s for s in slices if s["pid"] == end["pid"] and s["tid"] == end["tid"]
                and s["ts"] <= end["ts"] <= s["ts"] + s["dur"] and s.get("cat") != "transfer.part"]

    starts = {e["id"]: e for e in events if e.get("ph") == "s"}
    ends = {e["id"]: e for e in events if e.get("ph") == "f"}
    pairs = [(starts[i], ends[i]) for i in starts if i in ends]
    check(len(pairs) > 0 and len(pairs) == len(starts) == len(ends), f"flows with both ends ({len(pairs)})")
    check(all(s["pid"] != f["pid"] for s, f in pairs), "every flow goes from one task to another")
    check(all(f.get("bp") == "e" for _, f in pairs), "flow ends bind to their enclosing slice")
    bound = [(inside(s), inside(f)) for s, f in pairs]
    check(all(a and b for a, b in bound), "both ends of every flow sit inside a kernel's slice")
    check(all(any(x["name"].startswith("_send/") for x in a) and any(x["name"].startswith("_recv/") for x in b)
              for a, b in bound), "flows go from a send to a receive")
    directions = {(processes[s["pid"]], processes[f["pid"]]) for s, f in pairs}
    check(len(directions) == 2, f"tensors cross both ways, forward and back ({sorted(directions)})")
    receives = [e for e in slices if e["name"].startswith("_recv/")]
    check(receives and all({"wait_us", "transfer_us", "wire_bytes"} <= set(e["args"]) for e in receives),
          f"receives carry their wait, transfer and bytes ({len(receives)})")
    check(all(e["args"]["wait_us"] + e["args"]["transfer_us"] <= e["dur"] * 1.01 + 1 for e in receives),
          "a receive's wait and transfer fit in its time")
    estimated = [e for e in slices if "estimate_us" in e.get("args", {})]
    check(any(e["args"].get("op") == "MatMul" for e in estimated),
          f"the cost model's estimates beside the measured times ({len(estimated)} nodes)")


main()
print("check_trace: all passed" if not failures else f"check_trace: {len(failures)} failed")
sys.exit(1 if failures else 0)
