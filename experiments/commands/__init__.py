"""The ``planlab`` sub-commands, one module each: ``add_parser(subparsers)`` and ``run(args) -> int``.

Every invocation of ``planlab`` (even ``--help``) imports every command module to build
its parser, so a module imports at its top only what its parser needs (argparse,
:mod:`planning.errors`, :mod:`planning.profiles`, :mod:`executor.settings`, its sibling
commands' argument helpers); the engines, the cost model, the statistics and the
plotting a command uses are imported inside its ``run()``.  ``tests/test_cli_startup.py``
keeps the parsers free of numpy, pandas, scipy, matplotlib, simpy and redis.
"""
