"""The load benchmark's figures, as lines of text, and its verdicts."""

from __future__ import annotations

from collections import Counter

from bench.load.harness import SUCCESS_KINDS, Result, memory_verdict, percentile

CLASSES = ("2xx", "3xx", "4xx", "5xx")


def verdicts(result: Result) -> list[tuple[str, bool]]:
    recorder = result.recorder
    errors = sum(recorder.client_errors.values())
    flat = [memory_verdict(samples)[1] for samples in result.memory.values() if len(samples) >= 3]
    return [
        (f"zero 5xx answers ({recorder.count('5xx')})", recorder.count("5xx") == 0),
        (f"zero requests without an answer ({errors})", errors == 0),
        (f"no lost, duplicated or wrongly answered photos, I1 I3 I4 I5 hold ({len(result.problems)} problems)",
         not result.problems),
        (f"job queue and index drained within {result.options.drain_seconds:.0f} s "
         f"({result.drain_seconds:.1f} s)", result.drained),
        (f"memory flat in every process ({sum(flat)} of {len(flat)})", bool(flat) and all(flat)),
    ]


def lines(result: Result) -> list[str]:
    return [*_requests(result), "", *_uploads(result), "", *_throughput(result), "", *_memory(result), "",
            *_anchor(result), "", *_findings(result), "", *_verdict_lines(result)]


def _ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1000:8.0f}" if values else f"{'-':>8}"


def _requests(result: Result) -> list[str]:
    recorder = result.recorder
    kinds = sorted({kind for kind, _cls in recorder.statuses} | set(recorder.seconds)
                   | {kind for kind, _error in recorder.client_errors})
    out = [f"{'request kind':34}{'count':>7}" + "".join(f"{c:>6}" for c in CLASSES)
           + f"{'no ans.':>8}{'p50 ms':>8}{'p95 ms':>8}{'p99 ms':>8}{'max ms':>8}"]
    for kind in kinds:
        counts = [recorder.statuses[(kind, c)] for c in CLASSES]
        errors = sum(n for (k, _e), n in recorder.client_errors.items() if k == kind)
        seconds = recorder.seconds.get(kind, [])
        out.append(f"{kind:34}{len(seconds) or sum(counts):7}" + "".join(f"{n:6}" for n in counts)
                   + f"{errors:8}{_ms(seconds, 0.5)}{_ms(seconds, 0.95)}{_ms(seconds, 0.99)}"
                   + (f"{max(seconds) * 1000:8.0f}" if seconds else f"{'-':>8}"))
    totals = [recorder.count(c) for c in CLASSES]
    out.append(f"{'all requests':34}{sum(totals):7}" + "".join(f"{n:6}" for n in totals)
               + f"{sum(recorder.client_errors.values()):8}")
    out += [f"  5xx: {text}" for text in recorder.server_errors[:10]]
    out += [f"  no answer: {kind}: {error} × {n}" for (kind, error), n in recorder.client_errors.items()]
    return out


def _uploads(result: Result) -> list[str]:
    records = result.records
    kinds = Counter(r.kind for r in records)
    outcomes = Counter((r.kind if r.kind in SUCCESS_KINDS else "invalid", r.outcome or str(r.status))
                       for r in records)
    refused = Counter(f"{r.kind} {r.status}" for r in records if r.kind not in SUCCESS_KINDS)
    archived = sum(1 for r in records if r.outcome == "archived")
    megabytes = sum(r.size for r in records) / 1e6
    edits = Counter(e.status for e in result.edits)
    return [
        f"uploads sent: {len(records)} ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))}), "
        f"{megabytes:.0f} MB",
        "answers: " + ", ".join(f"{kind} → {outcome}: {n}" for (kind, outcome), n in sorted(outcomes.items())),
        "invalid files refused with: " + ", ".join(f"{k}: {n}" for k, n in sorted(refused.items())),
        f"new photos archived: {archived}; photos in the database by status: "
        + ", ".join(f"{status} {n}" for status, n in sorted(result.database.items())),
        f"caption edits: {edits[302]} saved, {edits[409]} refused with 409 (changed meanwhile: two edits of the "
        f"same version), {sum(n for s, n in edits.items() if s not in (302, 409))} other answers",
    ]


def _throughput(result: Result) -> list[str]:
    recorder, seconds = result.recorder, result.load_seconds
    load_kinds = [k for k in recorder.seconds if k not in ("search api, idle", "seed upload")]
    requests = sum(len(recorder.seconds[k]) for k in load_kinds)
    searches = sum(len(recorder.seconds[k]) for k in load_kinds if k.startswith("search"))
    archived = sum(1 for r in result.records if r.outcome == "archived")
    megabytes = sum(r.size for r in result.records if r.status is not None) / 1e6
    edits = sum(1 for e in result.edits if e.status == 302)
    return [
        f"throughput over {seconds:.1f} s: {requests / seconds:.1f} requests/s, {searches / seconds:.1f} searches/s, "
        f"{len(result.records) / seconds:.2f} uploads/s ({archived / seconds:.2f} new photos/s, "
        f"{megabytes / seconds:.1f} MB/s), {edits / seconds:.2f} caption edits/s",
        f"after the load: job queue and index drained in {result.drain_seconds:.1f} s "
        f"({'yes' if result.drained else 'NO'})",
    ]


def _memory(result: Result) -> list[str]:
    out = [f"{'resident memory (MB), every 2 s':34}{'samples':>8}{'first':>8}{'last':>8}{'max':>8}{'growth':>8}"]
    for name, samples in sorted(result.memory.items()):
        if not samples:
            continue
        growth, flat = memory_verdict(samples)
        out.append(f"{name:34}{len(samples):8}{samples[0]:8.0f}{samples[-1]:8.0f}{max(samples):8.0f}"
                   f"{growth:+8.0%}  {'flat' if flat else 'GROWING'}")
    return out


def _anchor(result: Result) -> list[str]:
    idle, after = result.idle_search, result.after_search
    loaded = result.recorder.seconds.get("search api", [])
    if not idle or not loaded:
        return ["anchor: no idle or loaded search measured"]
    ratio = percentile(loaded, 0.95) / percentile(idle, 0.95)
    return [
        f"anchor: search api p95 on the idle archive {percentile(idle, 0.95) * 1000:.1f} ms ({len(idle)} requests, "
        f"one at a time), after the drain {percentile(after, 0.95) * 1000:.1f} ms",
        f"ratio search_api_p95 under load / idle: {ratio:.1f}",
    ]


def _findings(result: Result) -> list[str]:
    out = [f"server log lines about errors: {len(result.log_findings)}"]
    out += [f"  {line}" for line in result.log_findings[:10]]
    out.append(f"accounting and consistency problems: {len(result.problems)}")
    out += [f"  {problem}" for problem in result.problems[:20]]
    if result.recorder.unexpected_4xx:
        out.append("unexpected 4xx answers (first few):")
        out += [f"  {text}" for text in result.recorder.unexpected_4xx[:10]]
    return out


def _verdict_lines(result: Result) -> list[str]:
    return [f"target {'met    ' if met else 'NOT MET'}  {text}" for text, met in verdicts(result)]
