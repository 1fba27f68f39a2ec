"""A second, small trainer written only from docs/guide.md (not from the digits example).

It proves that a user can integrate their own trainer from the guide alone:

- ``trainer.py``: a framework-free (numpy) MLP on scikit-learn's bundled breast-cancer data,
  with the three trainer calls, the continuation flags and a full-state checkpoint;
- ``space.py``: its search space, from weak models (2 input features, 2 units, a tiny learning
  rate) to strong ones;
- ``proxies.py``: its proxy-task config generator (less training data, a narrower model);
- ``workflow.yaml``: the ``proxytask run`` config of the whole workflow, run from the repository
  root (``.venv/bin/proxytask run tests/guide_trainer/workflow.yaml``).

``tests/e2e/test_guide_trainer.py`` runs the whole workflow on it.
"""
