"""The live view: a browser page showing a run as it goes, whose numbers are the client's.

``reader`` polls the coordination server, ``state`` folds the polls into task states and
progress (and takes the client's Trace at the end), ``projection`` estimates the finish,
``runplan`` and ``layout`` are a run's
static part, ``hub`` holds the runs and the 1 Hz poller, ``server`` serves the page
(``static/``), ``session`` and ``engines`` hook it into ``planlab execute/run --live``,
``saved`` into ``planlab view``.
"""
