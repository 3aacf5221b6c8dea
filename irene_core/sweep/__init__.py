"""``irene sweep``: a grid of trees measured on a Ray cluster, one measuring actor per (node, meter scope).

- :mod:`.plan` the plan (CLI flags or a JSON/YAML file) and its tasks;
- :mod:`.cluster` connecting to Ray with safe defaults, and which nodes can run the plan;
- :mod:`.actors` the long-lived measuring actor (node side);
- :mod:`.driver` the one writer: dispatch, retries, resume, progress and the summary.

Ray is imported only inside functions, so ``irene --help`` and ``import irene_core`` stay fast.
"""
