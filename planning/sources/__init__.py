"""Workflow sources: every way a :class:`~planning.workflow.Workflow` comes into planlab.

* :mod:`planning.sources.loading`: one entry point from a command-line string to a workflow;
* :mod:`planning.sources.dsl`: the ``@task`` Python DSL;
* :mod:`planning.sources.generators` (``gen:NAME:k=v``) with the real code of
  :mod:`planning.sources.kernels`, and :mod:`planning.sources.wfcommons_recipes`
  (``gen:wfcommons:RECIPE``);
* :mod:`planning.sources.wfformat` / :mod:`planning.sources.wfformat_export`: WfFormat
  instances read and written (the official schema in ``data/``);
* :mod:`planning.sources.synthetic`: synthetic histories with a known truth, for the cost model.
"""
