"""tests/coursework/json_facts.py — parses what ./course writes, with
python3's json and csv modules, checks its shape and prints one fact a line
for the shell tests to compare.

  check-json FILE        ./course check --format json: "ID<TAB>STATUS<TAB>MESSAGE"
  check-csv FILE         ./course check --format csv: the same lines
  grades FILE            grades.csv: "SUBMISSION<TAB>EXERCISE<TAB>STATUS<TAB>POINTS/MAX<TAB>MESSAGE"
  gradescope FILE        results.json in Gradescope's format: "total SCORE/MAX", then
                         "NUMBER<TAB>STATUS<TAB>SCORE/MAX" per test, after checking
                         every field Gradescope reads
"""
import csv
import json
import sys


def die(message):
    print("json_facts: " + message, file=sys.stderr)
    sys.exit(1)


def number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        die(f"{what} is not a number: {value!r}")
    return value


def fmt(x):
    return ("%g" % x)


def check_records(records):
    if not isinstance(records, list):
        die("not a list of records")
    for r in records:
        if set(r) < {"id", "status", "message", "seconds"}:
            die(f"a record lacks a field: {r}")
        if r["status"] not in ("done", "not yet", "does not build", "timed out", "crashed"):
            die(f"unknown status {r['status']!r}")
        if r["seconds"] is not None:
            number(r["seconds"], "seconds")
        print(f"{r['id']}\t{r['status']}\t{r['message']}")


def main():
    verb, path = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        if verb == "check-json":
            check_records(json.load(f))
        elif verb == "check-csv":
            rows = list(csv.DictReader(f))
            for r in rows:
                r["seconds"] = float(r["seconds"]) if r["seconds"] else None
            check_records(rows)
        elif verb == "grades":
            reader = csv.DictReader(f)
            want = ["submission", "exercise", "status", "points", "max_points", "message", "seconds"]
            if reader.fieldnames != want:
                die(f"grades.csv has columns {reader.fieldnames}, not {want}")
            for r in reader:
                p, m = float(r["points"]), float(r["max_points"])
                if not (p == 0 or (p == m and r["status"] == "done")):
                    die(f"points {p} of {m} for status {r['status']}")
                if r["seconds"]:
                    float(r["seconds"])
                print(f"{r['submission']}\t{r['exercise']}\t{r['status']}\t{fmt(p)}/{fmt(m)}\t{r['message']}")
        elif verb == "gradescope":
            d = json.load(f)
            score = number(d["score"], "score")
            max_score = number(d["max_score"], "max_score") if "max_score" in d else None
            if not isinstance(d.get("output", ""), str):
                die("output is not a string")
            for key in ("visibility", "stdout_visibility"):
                if d.get(key, "visible") not in ("hidden", "after_due_date", "after_published", "visible"):
                    die(f"{key} is {d[key]!r}")
            tests = d["tests"]
            total = 0
            print(f"total {fmt(score)}/{'-' if max_score is None else fmt(max_score)}")
            for t in tests:
                for key in ("name", "score", "max_score", "status", "output", "visibility"):
                    if key not in t:
                        die(f"a test lacks {key}: {t}")
                if not isinstance(t["name"], str) or not isinstance(t["output"], str):
                    die(f"name and output must be strings: {t}")
                s, m = number(t["score"], "score"), number(t["max_score"], "max_score")
                if t["status"] not in ("passed", "failed"):
                    die(f"status {t['status']!r}")
                if (t["status"] == "passed") != (s == m and m > 0):
                    die(f"status {t['status']} with score {s} of {m}")
                if t["visibility"] not in ("hidden", "after_due_date", "after_published", "visible"):
                    die(f"visibility {t['visibility']!r}")
                total += s
                print(f"{t.get('number', t['name'])}\t{t['status']}\t{fmt(s)}/{fmt(m)}")
            if abs(total - score) > 1e-9:
                die(f"score {score} is not the sum of the tests' scores {total}")
        else:
            die("unknown verb " + verb)


main()
