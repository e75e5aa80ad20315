"""The ImageAttributionBench leaderboard: a Gradio Space over a folder or dataset repo of
results files whose numbers it verifies from their samples, fed by a submission queue.

``intake`` reads one file at bounded cost, ``data`` loads a board (entries by folder, the
ranked dataset), ``reference`` and ``verify`` recompute every number, ``tables`` and ``charts``
present them, ``source`` fetches and refreshes, ``ui``/``ui_submit``/``app`` are the page;
``submissions`` is the requests repo, ``backend`` the evaluator, ``space`` builds the Space."""
