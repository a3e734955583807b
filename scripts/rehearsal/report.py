"""Figures, goals, the HTML page (plotly) and the text summary of a rehearsal."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rehearsal.alarms import percentile
from rehearsal.scenario import Outcome

HIT_RATE_GOAL = 0.9


def failed(sample: Any) -> bool:
    return sample.status != 200


def in_window(outcome: Outcome, sample: Any) -> bool:
    """A request to new while a deliberate fault was on and not yet detected: the gate's 5xx
    window, or the failback's (from the fault until every client resolved to old)."""
    windows = [outcome.five_xx_window, outcome.failback.get("window")]
    return sample.tier == "new" and any(
        window is not None and window[0] <= sample.started <= window[1] for window in windows
    )


def phase_of(outcome: Outcome, moment: float) -> str:
    for name, start, end in outcome.timeline.phases:
        if start <= moment <= end:
            return name
    return ""


def steps(outcome: Outcome) -> list[dict[str, Any]]:
    """p50/p99 of the requests sent while the observed weight of new stayed the same."""
    weights = outcome.timeline.weights
    segments: list[tuple[float, float, int]] = []
    for index, (moment, weight) in enumerate(weights):
        end = weights[index + 1][0] if index + 1 < len(weights) else float("inf")
        if segments and segments[-1][2] == weight:
            segments[-1] = (segments[-1][0], end, weight)
        else:
            segments.append((moment, end, weight))
    rows = []
    for start, end, weight in segments:
        latencies = [s.latency for s in outcome.samples if start <= s.started < end]
        if not latencies:
            continue
        rows.append(
            {
                "phase": phase_of(outcome, start),
                "new_weight": weight,
                "from_s": round(start, 1),
                "to_s": round(min(end, outcome.timeline.now()), 1),
                "requests": len(latencies),
                "p50_ms": round(1000 * (percentile(latencies, 0.5) or 0), 1),
                "p99_ms": round(1000 * (percentile(latencies, 0.99) or 0), 1),
            }
        )
    return rows


def hit_rate_after(outcome: Outcome) -> float | None:
    soak = next((p for p in outcome.timeline.phases if p[0] == "soak on new"), None)
    if soak is None:
        return None
    answered = [
        s
        for s in outcome.samples
        if s.tier == "new" and soak[1] <= s.started <= soak[2] and s.status == 200
    ]
    if not answered:
        return None
    return sum(s.cache == "HIT" for s in answered) / len(answered)


def summarize(outcome: Outcome, html: Path) -> dict[str, Any]:
    samples = outcome.samples
    failures = [s for s in samples if failed(s) and not in_window(outcome, s)]
    comparison = outcome.comparison
    hit_rate = hit_rate_after(outcome)
    missed: list[str] = []
    if not samples:
        missed.append("no request was sent")
    if failures:
        missed.append(f"{len(failures)} requests failed outside the deliberate 5xx window")
    if comparison is None:
        missed.append("the two Redis were not compared")
    elif comparison.differing:
        missed.append(f"{comparison.differing} keys lost or stale after the drain")
    if hit_rate is None or hit_rate <= HIT_RATE_GOAL:
        missed.append(f"new tier's hit rate after the cutover {hit_rate} is not above 90%")
    failback = outcome.failback
    if not failback.get("new_weight_unchanged") or not failback.get("served_by_old"):
        missed.append(f"production's failure was not routed to old by its health check: {failback}")
    if outcome.plan.faults and not outcome.rolled_back_on_5xx:
        missed.append("the gate did not walk traffic back while the new tier answered 5xx")
    for name, code in outcome.timeline.follow_exits.items():
        if code != 0:
            missed.append(f"{name} exited with {code} after its drain; follow-stop would fail")
    for goal, reason in outcome.timeline.not_exercised.items():
        missed.append(f"not exercised: {goal} ({reason})")
    return {
        "ok": not missed,
        "requests": len(samples),
        "failed": len(failures),
        "failed_in_5xx_window": sum(1 for s in samples if failed(s) and in_window(outcome, s)),
        "keys_differing": comparison.differing if comparison else None,
        "keys_compared": comparison.compared if comparison else 0,
        "key_examples": list(comparison.examples) if comparison else [],
        "hit_rate_after": None if hit_rate is None else round(hit_rate, 4),
        "rolled_back_on_5xx": outcome.rolled_back_on_5xx,
        "failback": {key: value for key, value in failback.items() if key != "window"},
        "failure_examples": [
            f"{s.started:.1f} s {s.tier} {s.status or 'no answer'} {phase_of(outcome, s.started)}"
            for s in failures[:10]
        ],
        "faults": [{"at_s": round(t, 1), "fault": label} for t, label in outcome.timeline.faults],
        "phases": [
            {"phase": name, "seconds": round(end - start, 1)}
            for name, start, end in outcome.timeline.phases
        ],
        "steps": steps(outcome),
        "not_exercised": outcome.timeline.not_exercised,
        "follow_exits": outcome.timeline.follow_exits,
        "missed": missed,
        "notes": outcome.timeline.notes,
        "report": str(html),
    }


def per_second(samples: list[Any], key: Any) -> dict[int, list[Any]]:
    buckets: dict[int, list[Any]] = defaultdict(list)
    for sample in samples:
        buckets[int(sample.started)].append(key(sample))
    return dict(sorted(buckets.items()))


def figure(outcome: Outcome) -> go.Figure:
    fig = make_subplots(
        rows=6,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        subplot_titles=(
            "Route53 weight of new (%)", "Requests/s per tier", "Latency (ms)",
            "Failed requests/s", "Follow lag (keys)", "Cache hit rate per tier",
        ),
    )  # fmt: skip
    weights = outcome.timeline.weights
    fig.add_trace(
        go.Scatter(x=[t for t, _ in weights], y=[w for _, w in weights], name="new weight",
                   line_shape="hv"), row=1, col=1,
    )  # fmt: skip
    for tier in ("old", "new"):
        tier_samples = [s for s in outcome.samples if s.tier == tier]
        counts = per_second(tier_samples, lambda s: 1)
        fig.add_trace(go.Scatter(x=list(counts), y=[len(v) for v in counts.values()],
                                 name=f"{tier} req/s"), row=2, col=1)  # fmt: skip
        errors = per_second([s for s in tier_samples if failed(s)], lambda s: 1)
        fig.add_trace(go.Bar(x=list(errors), y=[len(v) for v in errors.values()],
                             name=f"{tier} failed/s"), row=4, col=1)  # fmt: skip
        hits = per_second([s for s in tier_samples if s.status == 200], lambda s: s.cache == "HIT")
        fig.add_trace(go.Scatter(x=list(hits), y=[sum(v) / len(v) for v in hits.values()],
                                 name=f"{tier} hit rate"), row=6, col=1)  # fmt: skip
    latencies = per_second(outcome.samples, lambda s: 1000 * s.latency)
    for name, fraction in (("p50", 0.5), ("p99", 0.99)):
        fig.add_trace(go.Scatter(x=list(latencies),
                                 y=[percentile(v, fraction) for v in latencies.values()],
                                 name=name), row=3, col=1)  # fmt: skip
    lag = [
        (t - outcome.timeline.origin, status.get("lag_keys"))
        for t, status in outcome.follow_status
        if "lag_keys" in status
    ]
    fig.add_trace(go.Scatter(x=[t for t, _ in lag], y=[v for _, v in lag], name="follow lag",
                             mode="lines+markers"), row=5, col=1)  # fmt: skip
    fig.update_xaxes(title_text="seconds since start", row=6, col=1)
    fig.update_layout(
        height=1500,
        title="ProStudio cutover rehearsal",
        hovermode="x unified",
        shapes=markings(outcome),
        annotations=[*fig.layout.annotations, *marking_labels(outcome)],
    )
    return fig


def markings(outcome: Outcome) -> list[dict[str, Any]]:
    """The phases shaded on the weight plot, each fault a red dashed line, the 5xx window.

    Given to the layout at once: plotly's add_vrect and add_vline revalidate the figure for
    every subplot on each call, seconds for one run. The subplots share one x axis, so a
    marking on "x" as high as the page crosses all six."""
    shapes: list[dict[str, Any]] = [
        {"type": "rect", "xref": "x", "yref": "y domain", "x0": start, "x1": end, "y0": 0,
         "y1": 1, "fillcolor": "grey" if index % 2 else "lightblue", "opacity": 0.12,
         "line": {"width": 0}}
        for index, (_, start, end) in enumerate(outcome.timeline.phases)
    ]  # fmt: skip
    shapes += [
        {"type": "line", "xref": "x", "yref": "paper", "x0": moment, "x1": moment, "y0": 0,
         "y1": 1, "line": {"dash": "dash", "color": "red"}}
        for moment, _ in outcome.timeline.faults
    ]  # fmt: skip
    if outcome.five_xx_window:
        start, end = outcome.five_xx_window
        shapes.append(
            {"type": "rect", "xref": "x", "yref": "paper", "x0": start, "x1": end, "y0": 0,
             "y1": 1, "fillcolor": "red", "opacity": 0.08, "line": {"width": 0}}
        )  # fmt: skip
    return shapes


def marking_labels(outcome: Outcome) -> list[dict[str, Any]]:
    """Each phase's name at the top left of its shading, each fault's beside its line."""
    labels: list[dict[str, Any]] = [
        {"xref": "x", "yref": "y domain", "x": start, "y": 1, "xanchor": "left",
         "yanchor": "top", "text": name, "showarrow": False}
        for name, start, _ in outcome.timeline.phases
    ]  # fmt: skip
    labels += [
        {"xref": "x", "yref": "paper", "x": moment, "y": 1.0, "text": label, "showarrow": False,
         "textangle": -90, "font": {"color": "red", "size": 10}}
        for moment, label in outcome.timeline.faults
    ]  # fmt: skip
    return labels


def text_summary(result: dict[str, Any]) -> str:
    lines = [
        f"rehearsal {'PASSED' if result['ok'] else 'FAILED'}",
        f"  requests {result['requests']}, failed {result['failed']} outside the 5xx window "
        f"({result['failed_in_5xx_window']} inside it)",
        f"  keys lost or stale after the drain: {result['keys_differing']} "
        f"of {result['keys_compared']} compared",
        f"  new tier's hit rate after the cutover: {result['hit_rate_after']}",
        f"  traffic walked back on 5xx: {result['rolled_back_on_5xx']}",
        "  follows' exit status after the drain (follow-stop needs 0): "
        + ", ".join(f"{k} {v}" for k, v in result["follow_exits"].items()),
        "  phases: " + ", ".join(f"{p['phase']} {p['seconds']} s" for p in result["phases"]),
        "  p99 per step: "
        + ", ".join(f"new={s['new_weight']}% {s['p99_ms']} ms" for s in result["steps"]),
    ]
    lines += [f"  fault at {f['at_s']} s: {f['fault']}" for f in result["faults"]]
    lines += [f"  MISSED: {m}" for m in result["missed"]]
    return "\n".join(lines)


def write_report(outcome: Outcome, directory: Path) -> dict[str, Any]:
    html = directory / "report.html"
    result = summarize(outcome, html)
    summary = text_summary(result)
    page = figure(outcome).to_html(include_plotlyjs=True, full_html=True)
    table = "".join(
        f"<tr><td>{s['phase']}</td><td>{s['new_weight']}</td><td>{s['requests']}</td>"
        f"<td>{s['p50_ms']}</td><td>{s['p99_ms']}</td></tr>"
        for s in result["steps"]
    )
    extra = (
        f"<pre>{summary}</pre><table border=1><tr><th>phase</th><th>new %</th>"
        f"<th>requests</th><th>p50 ms</th><th>p99 ms</th></tr>{table}</table>"
    )
    html.write_text(page.replace("<body>", "<body>" + extra, 1))
    (directory / "report.txt").write_text(summary + "\n")
    with (directory / "requests.jsonl").open("w") as output:
        for sample in outcome.samples:
            output.write(json.dumps(dataclasses.asdict(sample)) + "\n")
    (directory / "report.json").write_text(json.dumps(result, indent=2) + "\n")
    return result
