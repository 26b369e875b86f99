"""A small workflow written with the @task DSL: inspect it with

    planlab inspect examples/dsl_pipeline.py:pipeline
"""

from planning import task


@task(runtime_s=0.01, output_bytes=800)
def load(shard: int) -> list[int]:
    return list(range(shard * 100, shard * 100 + 100))


@task(runtime_s=0.02, output_bytes=8)
def summarize(groups: dict, scale: float = 1.0) -> float:
    return scale * sum(sum(sum(part) for part in parts) for parts in groups.values())


def pipeline():
    """Four loads, grouped in a nested dict of lists, reduced by one task."""
    shards = [load(i) for i in range(4)]
    return summarize({"left": [shards[:2]], "right": [shards[2:]]}, scale=0.5)
