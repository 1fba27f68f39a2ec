"""The proxy-task configs to try, written as the Vertex AI NAS proxy-task search spaces are.

Each config takes the baseline trainer arguments and trains on fewer data shards, as the
reference's MNasNet generator rewrites ``training_data_path``.
"""

import copy
import logging
import re

from proxy_task import proxy_task_utils

TRAINING_DATA_PCT_LIST = [20, 50]
_TRAINING_DATA_PATH_REGEX = r".*/train-\*-of-00100$"


def update_proxy_training_data(baseline_docker_args_map, training_data_pct):
    """The baseline arguments, training on ``training_data_pct`` % of the 100 shards."""
    proxy_task_docker_args_map = copy.deepcopy(baseline_docker_args_map)
    if not re.match(_TRAINING_DATA_PATH_REGEX, baseline_docker_args_map["training_data_path"]):
        path = baseline_docker_args_map["training_data_path"]
        raise ValueError(f"Training data path {path} does not match the desired pattern.")
    root_path, _ = baseline_docker_args_map["training_data_path"].rsplit("/", 1)
    if training_data_pct == 20:
        pattern = "train-000[0-1]?-of-00100"
    elif training_data_pct == 50:
        pattern = "train-000[0-4]?-of-00100"
    else:
        logging.warning("training_data_pct %d is not supported.", training_data_pct)
        return None
    proxy_task_docker_args_map["training_data_path"] = root_path + "/" + pattern
    return proxy_task_docker_args_map


def tiny_mlp_proxy_task_config_generator(baseline_docker_args_map):
    """Returns a list of proxy-task configs to be evaluated."""
    proxy_task_config_list = []
    for training_data_pct in TRAINING_DATA_PCT_LIST:
        proxy_task_docker_args_map = update_proxy_training_data(
            baseline_docker_args_map=baseline_docker_args_map,
            training_data_pct=training_data_pct,
        )
        if not proxy_task_docker_args_map:
            continue
        proxy_task_name = f"tiny_mlp_proxy_training_data_pct_{training_data_pct}"
        proxy_task_config_list.append(
            proxy_task_utils.ProxyTaskConfig(
                name=proxy_task_name, docker_args_map=proxy_task_docker_args_map
            )
        )
    return proxy_task_config_list


def wrong_type_generator(baseline_docker_args_map):
    """A broken generator: returns the arguments, not ProxyTaskConfig items."""
    return [baseline_docker_args_map]
