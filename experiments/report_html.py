"""The report's HTML page: sections in a fixed order, each holding the figures and tables that belong to it.

Blocks are plain HTML fragments tagged with their section, so a failing figure's note
lands exactly where the figure would have been.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from experiments.results import Results

#: (section id, heading, lead paragraph) in page order.
SECTIONS = (
    ("sla", "SLA met", "Whether each planner kept its promise on the real runs."),
    ("figures", "Figures", ""),
    ("time", "Where the time went", "The critical path of each run, cut into phases."),
    ("errors", "Errors by phase and kind, and the cost model's fit", ""),
    ("resources", "Confidence intervals, GB-seconds, price and host load", ""),
)
STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
         "table.summary{border-collapse:collapse;font-size:13px}table.summary td,table.summary th"
         "{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}img{max-width:100%}"
         "dt{font-weight:bold}pre{background:#f6f6f6;padding:1em;overflow:auto}"
         ".warning{color:#a00;font-weight:bold}.failed{background:#fee;border:1px solid #c00;padding:.5em 1em}"
         ".findings li{margin:.3em 0}")


@dataclass(frozen=True)
class Block:
    """One figure, table or note of a section."""

    section: str
    name: str
    html: str


def figure_block(section: str, name: str, title: str, caption: str) -> Block:
    return Block(section, name, f"<h3 id='{name}'>{html.escape(title)}</h3><p>{html.escape(caption)}</p>"
                                f"<a href='figures/{name}.svg'><img src='figures/{name}.png' alt='{html.escape(title)}'"
                                " class='figure'></a>")


def table_block(section: str, name: str, title: str, caption: str, frame: pd.DataFrame) -> Block:
    table = frame.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="-", border=0, classes="summary")
    lead = f"<p>{html.escape(caption)}</p>" if caption else ""
    return Block(section, name, f"<h3 id='{name}'>{html.escape(title)}</h3>{lead}{table}")


def text_block(section: str, name: str, title: str, text: str) -> Block:
    return Block(section, name, f"<h3 id='{name}'>{html.escape(title)}</h3><p>{html.escape(text)}</p>")


def note_block(section: str, name: str, text: str) -> Block:
    """A visible note where a figure or table failed (section "": a table several sections read)."""
    return Block(section, name, f"<p class='failed' data-failed='{html.escape(name)}'>{html.escape(text)}</p>")


def render_page(results: Results, summary: pd.DataFrame, findings: Sequence, blocks: Sequence[Block],
                skipped: dict[str, str], failed: dict[str, str]) -> str:
    """The whole page: findings first, then the summary, the sections, the profile phase and the provenance."""
    name = results.provenance.get("config_name", results.root.name)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>planlab report: {html.escape(str(name))}"
             f"</title><style>{STYLE}</style></head><body>", f"<h1>planlab report: {html.escape(str(name))}</h1>",
             "<p>Every figure and table below was drawn from the Parquet tables in this directory alone.</p>"]
    if failed:
        parts.append("<section id='report-problems'><h2>Not drawn because of an error</h2><ul>"
                     + "".join(f"<li class='failed'>{html.escape(k)}: {html.escape(v)}</li>" for k, v in failed.items())
                     + "</ul></section>")
    parts.append("<section id='what-to-look-at'><h2>What to look at</h2><ul class='findings'>")
    parts += [f"<li class='{'warning' if f.warning else 'finding'}'>{'WARNING: ' if f.warning else ''}"
              f"{html.escape(f.text)}</li>" for f in findings]
    parts.append("</ul></section>")
    parts.append("<section id='summary'><h2>Summary</h2>" + summary.to_html(
        index=False, float_format=lambda v: f"{v:.4g}", na_rep="-", border=0, classes="summary") + "</section>")
    for section, heading, lead in SECTIONS:
        inside = [b.html for b in blocks if b.section == section]
        if inside:
            parts.append(f"<section id='{section}'><h2>{html.escape(heading)}</h2>"
                         + (f"<p>{html.escape(lead)}</p>" if lead else "") + "".join(inside) + "</section>")
    notes = [b.html for b in blocks if not b.section]
    if notes:
        parts.append("<section id='failed-notes'>" + "".join(notes) + "</section>")
    if skipped:
        parts.append("<p>Not drawn: " + html.escape("; ".join(f"{k} ({v})" for k, v in skipped.items())) + ".</p>")
    parts += _profile(results) + _provenance(results)
    parts.append("</body></html>")
    return "\n".join(parts)


def _profile(results: Results) -> list[str]:
    runs = results.profile_runs
    if not len(runs):
        return []
    cols = [c for c in ("workflow", "profile", "repetition", "tasks", "planned_makespan_s", "real_makespan_s",
                        "real_cost") if c in runs]
    return ["<section id='profile'><h2>Profile phase</h2><p>Each workflow run for real on every profile of the "
            "catalog; the cost model the plans used was fitted on these runs' history.</p>",
            runs[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0, classes="summary"),
            "</section>"]


def _provenance(results: Results) -> list[str]:
    p = results.provenance
    git = p.get("git") or {}
    machine = p.get("machine") or {}
    name = p.get("config_name", results.root.name)
    facts = [("config", f"{name} (hash {str(p.get('config_hash', ''))[:12]})"),
             ("git revision", f"{git.get('revision')}{' (local changes)' if git.get('dirty') else ''}"),
             ("machine", f"{machine.get('platform')}, {machine.get('cpus')} CPUs, {machine.get('memory_gb')} GB, "
                         f"Python {machine.get('python')}"),
             ("limits the OS permits", p.get("limit_support")),
             ("limits enforced in runs", "; ".join(p.get("limits_enforced") or []) or "none recorded"),
             ("sessions", "; ".join(f"{x.get('started_utc')} - {x.get('finished_utc', '?')}: {x.get('cells_run')} cells"
                                    for x in p.get("sessions", []))),
             ("packages", ", ".join(f"{k} {v}" for k, v in (p.get("packages") or {}).items() if v)),
             ("notes", "; ".join(p.get("notes") or []) or "none")]
    out = ["<section id='provenance'><h2>Provenance</h2><dl>"]
    out += [f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>" for k, v in facts]
    out.append("</dl><h2>Config</h2><pre>" + html.escape(results.config_text) + "</pre></section>")
    return out
