"""WfFormat import/export, checked against the raw JSON of the shipped instances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planning.errors import WorkflowError
from planning.sources import generators as gens
from planning.sources.wfformat import read_wfformat
from planning.sources.wfformat_write import write_wfformat
from planning.tasks import Task
from planning.workflow import Workflow

DATA = Path(__file__).resolve().parent.parent / "experiments" / "data"
FILES = sorted(DATA.glob("*.json"))


def test_shipped_instances_are_present():
    assert len(FILES) >= 16 and (DATA / "LICENSE").is_file()


def _raw(path: Path) -> dict:
    return json.loads(path.read_text())


def _signature(wf: Workflow):
    return ({t.id: (t.kind, t.runtime_s, t.cores, t.output_bytes, t.memory_mb, dict(t.meta)) for t in wf.tasks},
            sorted(wf.edges()))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_import_matches_the_raw_json(path):
    raw = _raw(path)
    spec, execution = raw["workflow"]["specification"], raw["workflow"]["execution"]
    wf = read_wfformat(path)
    # counts computed independently from the raw file
    edges = {(p, t["id"]) for t in spec["tasks"] for p in t["parents"]}
    assert len(wf) == len(spec["tasks"])
    assert wf.graph.number_of_edges() == len(edges)
    assert {(u, v) for u, v, _ in wf.edges()} == edges
    assert wf.metadata["recorded_makespan_s"] == pytest.approx(execution["makespanInSeconds"])
    assert wf.metadata["wfformat_schema"] == raw["schemaVersion"]
    assert wf.metadata["workflow_system"] == raw["runtimeSystem"]["name"]
    assert wf.metadata["source_file"] == str(path)
    assert set(wf.metadata["machines"]) == {m["nodeName"] for m in execution["machines"]}
    # per-task hints
    sizes = {f["id"]: f["sizeInBytes"] for f in spec["files"]}
    measured = {t["id"]: t for t in execution["tasks"]}
    for t in spec["tasks"]:
        task = wf.task(t["id"])
        m = measured[t["id"]]
        assert task.func is None
        assert task.runtime_s == pytest.approx(m["runtimeInSeconds"])
        assert task.output_bytes == sum(sizes[f] for f in t["outputFiles"])
        if "memoryInBytes" in m:
            assert task.memory_mb == pytest.approx(m["memoryInBytes"] / 2 ** 20)
        if "coreCount" in m:
            assert task.cores == m["coreCount"]
        if "machines" in m:
            assert task.meta["machines"] == m["machines"]
        for p in t["parents"]:
            parent_out = set(next(x for x in spec["tasks"] if x["id"] == p)["outputFiles"])
            shared = parent_out & set(t["inputFiles"])
            assert wf.edge_bytes(p, t["id"]) == sum(sizes[f] for f in shared)


def test_known_instance_facts():
    wf = read_wfformat(DATA / "helloworld-chain-5-chameleon.json")
    assert len(wf) == 5 and wf.depth == 5 and wf.metadata["recorded_makespan_s"] == 661.0
    assert {t.kind for t in wf.tasks} == {"cpuhog"}
    assert wf.metadata["machines"]["ubuntu"] == {"cores": 64, "speed_mhz": 1200, "memory_bytes": 196483612}
    blast = read_wfformat(DATA / "blast-chameleon-small-001.json")
    assert {t.kind for t in blast.tasks} == {"split_fasta", "blastall", "cat_blast", "cat"}
    assert blast.metadata["workflow_system"] == "Makeflow"
    bacass = read_wfformat(DATA / "bacass-dirt02-001.json")
    assert "NFCORE_BACASS.BACASS.FASTQC" in {t.kind for t in bacass.tasks}  # script command: kind from name
    assert bacass.metadata["workflow_system"] == "Nextflow"
    epi = read_wfformat(DATA / "epigenomics-chameleon-hep-1seq-100k-001.json")
    assert len({t.kind for t in epi.tasks}) == 8  # program names, not the per-task names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_export_import_round_trip(path, tmp_path):
    wf = read_wfformat(path)
    out = write_wfformat(wf, tmp_path / "out.json")
    assert _raw(out)["schemaVersion"] == "1.5"
    back = read_wfformat(out)
    assert _signature(back) == _signature(wf)
    assert back.name == wf.name
    strip = lambda md: {k: v for k, v in md.items() if k != "source_file"}  # noqa: E731
    assert strip(back.metadata) == strip(wf.metadata)


@pytest.mark.parametrize("name", ["chain", "gemm", "random_layered", "five_branches", "fork_join"])
def test_generated_workflows_round_trip(name, tmp_path):
    wf = gens.generate(name)
    back = read_wfformat(write_wfformat(wf, tmp_path / "g.json"))
    assert _signature(back) == _signature(wf)
    assert back.metadata["recorded_makespan_s"] is None  # the estimate written is not a recording
    assert back.metadata["params"] == wf.metadata["params"]


def test_edges_smaller_than_the_output_round_trip(tmp_path):
    tasks = [Task("p", "k", output_bytes=100), Task("a", "k"), Task("b", "k"), Task("c", "k"),
             Task("q", "k"), Task("r", "k", runtime_s=1.0)]
    wf = Workflow.from_tasks(tasks, {"a": ["p"], "b": ["p"], "c": ["p", "q"], "r": ["q"]},
                             {("p", "a"): 30, ("p", "b"): 0, ("p", "c"): 100, ("q", "c"): 5, ("q", "r"): 5})
    back = read_wfformat(write_wfformat(wf, tmp_path / "w.json"))
    assert sorted(back.edges()) == sorted(wf.edges())
    assert back.task("p").output_bytes == 100
    assert back.task("q").output_bytes == 5  # unknown output: the largest edge
    assert back.task("a").output_bytes is None
    assert back.task("a").runtime_s is None and back.task("r").runtime_s == 1.0


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_property_round_trip_of_random_dags(tmp_path_factory, data):
    n = data.draw(st.integers(1, 15))
    outs = data.draw(st.lists(st.one_of(st.none(), st.integers(0, 10 ** 6)), min_size=n, max_size=n))
    tasks = [Task(f"t{i}", data.draw(st.sampled_from(["a", "b"])), output_bytes=o,
                  runtime_s=data.draw(st.one_of(st.none(), st.floats(0, 100)))) for i, o in enumerate(outs)]
    parents, sizes = {f"t{i}": [] for i in range(n)}, {}
    for j in range(n):
        for i in range(j):
            if data.draw(st.booleans()):
                parents[f"t{j}"].append(f"t{i}")
                sizes[(f"t{i}", f"t{j}")] = data.draw(st.integers(0, outs[i] or 0))
    wf = Workflow.from_tasks(tasks, parents, sizes)
    path = tmp_path_factory.mktemp("rt") / "w.json"
    back = read_wfformat(write_wfformat(wf, path))
    got, want = _signature(back), _signature(wf)
    assert got[1] == want[1]
    for tid, (kind, rt, cores, out, mem, meta) in want[0].items():
        expected_out = out if out is not None or not wf.children(tid) or not any(
            wf.edge_bytes(tid, c) for c in wf.children(tid)) else max(wf.edge_bytes(tid, c) for c in wf.children(tid))
        assert got[0][tid] == (kind, rt, cores, expected_out, mem, meta)


# ---------------------------------------------------------------- schema 1.4 shape
V14 = {
    "name": "tiny-1.4",
    "schemaVersion": "1.4",
    "wms": {"name": "Pegasus", "version": "4.9"},
    "workflow": {
        "makespanInSeconds": 42.5,
        "executedAt": "20200101T000000+0000",
        "machines": [{"nodeName": "n1", "cpu": {"count": 8, "speed": 2400}, "memoryInBytes": 1000}],
        "tasks": [
            {"name": "split_ID01", "id": "ID01", "category": "split", "type": "compute", "parents": [],
             "runtimeInSeconds": 2.0, "cores": 1, "memoryInBytes": 2 ** 21, "machine": "n1",
             "files": [{"name": "in.txt", "sizeInBytes": 10, "link": "input"},
                       {"name": "a.txt", "sizeInBytes": 100, "link": "output"},
                       {"name": "b.txt", "sizeInBytes": 200, "link": "output"}]},
            {"name": "work_ID02", "id": "ID02", "parents": ["split_ID01"], "runtime": 5.0,
             "command": {"program": "work", "arguments": []},
             "files": [{"name": "a.txt", "size": 100, "link": "input"},
                       {"name": "c.txt", "size": 7, "link": "output"}]},
            {"name": "merge_ID03", "id": "ID03", "parents": ["ID02", "split_ID01"], "runtimeInSeconds": 1.0,
             "files": [{"name": "b.txt", "sizeInBytes": 200, "link": "input"},
                       {"name": "c.txt", "sizeInBytes": 7, "link": "input"}]},
        ],
    },
}


def test_reads_the_1_4_shape(tmp_path):
    path = tmp_path / "v14.json"
    path.write_text(json.dumps(V14))
    wf = read_wfformat(path)
    assert sorted(wf.task_ids) == ["merge_ID03", "split_ID01", "work_ID02"]
    assert sorted(wf.edges()) == [("split_ID01", "merge_ID03", 200), ("split_ID01", "work_ID02", 100),
                                  ("work_ID02", "merge_ID03", 7)]
    split, work, merge = wf.task("split_ID01"), wf.task("work_ID02"), wf.task("merge_ID03")
    assert (split.kind, split.runtime_s, split.cores, split.memory_mb, split.output_bytes) == ("split", 2.0, 1, 2.0, 300)
    assert split.meta["machines"] == ["n1"]
    assert (work.kind, work.runtime_s, work.output_bytes) == ("work", 5.0, 7)
    assert merge.kind == "merge" and merge.output_bytes == 0
    assert wf.metadata["recorded_makespan_s"] == 42.5 and wf.metadata["wfformat_schema"] == "1.4"
    assert wf.metadata["workflow_system"] == "Pegasus"
    assert wf.metadata["machines"] == {"n1": {"cores": 8, "speed_mhz": 2400, "memory_bytes": 1000}}
    # exported as 1.5, read back the same
    back = read_wfformat(write_wfformat(wf, tmp_path / "v15.json"))
    assert _signature(back) == _signature(wf)


# ---------------------------------------------------------------- malformed files
def _write(tmp_path, doc, name="bad.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def _v15(tasks, files=()):
    return {"name": "x", "schemaVersion": "1.5",
            "workflow": {"specification": {"tasks": tasks, "files": list(files)},
                         "execution": {"makespanInSeconds": 1, "executedAt": "now",
                                       "tasks": [{"id": t["id"], "runtimeInSeconds": 1} for t in tasks if "id" in t]}}}


def _task(tid, parents=(), children=()):
    return {"name": tid, "id": tid, "parents": list(parents), "children": list(children),
            "inputFiles": [], "outputFiles": []}


@pytest.mark.parametrize("doc,message", [
    ("{oops", "malformed JSON"),
    ([1, 2], "not a JSON object"),
    ({"name": "x"}, "missing key 'workflow'"),
    ({"workflow": {}}, "missing key 'workflow.specification'"),
    ({"workflow": {"specification": {}}}, "workflow.specification.tasks"),
    (_v15([{"name": "a"}]), r"tasks\[0\] has no key 'id'"),
    (_v15([_task("a", parents=["ghost"])]), "unknown parent 'ghost'"),
    (_v15([_task("a", children=["ghost"])]), "unknown child 'ghost'"),
    (_v15([_task("a", parents=["b"]), _task("b", parents=["a"])]), "cycle"),
    (_v15([_task("a"), _task("a")]), "duplicate task id 'a'"),
    (_v15([_task("a")], files=[{"id": "f"}]), "sizeInBytes"),
    (_v15([_task("a")], files=[{"id": "f", "sizeInBytes": -3}]), "size must be"),
])
def test_malformed_files_name_the_file_and_the_problem(tmp_path, doc, message):
    path = _write(tmp_path, doc)
    with pytest.raises(WorkflowError, match=message) as err:
        read_wfformat(path)
    assert str(path) in str(err.value)


def test_bad_runtime_and_missing_file(tmp_path):
    doc = _v15([_task("a")])
    doc["workflow"]["execution"]["tasks"][0]["runtimeInSeconds"] = "slow"
    with pytest.raises(WorkflowError, match="runtimeInSeconds must be a number"):
        read_wfformat(_write(tmp_path, doc))
    doc["workflow"]["execution"]["tasks"][0]["runtimeInSeconds"] = -1
    with pytest.raises(WorkflowError, match="runtime_s must be"):
        read_wfformat(_write(tmp_path, doc))
    with pytest.raises(WorkflowError, match="cannot read WfFormat file"):
        read_wfformat(tmp_path / "missing.json")


def test_specification_without_execution(tmp_path):
    doc = _v15([_task("a"), _task("b", parents=["a"])])
    del doc["workflow"]["execution"]
    wf = read_wfformat(_write(tmp_path, doc))
    assert len(wf) == 2 and wf.task("a").runtime_s is None and wf.metadata["recorded_makespan_s"] is None
