"""The reference (Vertex AI NAS) tools' trainer-side names, backed by proxytask.

A trainer written for the reference tools moves over by changing its import lines only::

    # before
    from proxy_task import proxy_task_utils
    import cloud_nas_utils
    # after
    from proxytask.vertex import proxy_task_utils, cloud_nas_utils

The most used functions are also available here directly.
"""

from __future__ import annotations

from proxytask.vertex import cloud_nas_utils, proxy_task_utils
from proxytask.vertex.cloud_nas_utils import (
    compute_reward,
    get_finetune_nas_params_str,
    get_retrain_search_job_model_dir,
    str_2_bool,
)
from proxytask.vertex.proxy_task_utils import (
    get_stop_training,
    update_trial_training_accuracy_metric,
    update_trial_training_latency_metric,
)

__all__ = [
    "cloud_nas_utils",
    "compute_reward",
    "get_finetune_nas_params_str",
    "get_retrain_search_job_model_dir",
    "get_stop_training",
    "proxy_task_utils",
    "str_2_bool",
    "update_trial_training_accuracy_metric",
    "update_trial_training_latency_metric",
]
