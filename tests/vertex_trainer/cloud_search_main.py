"""Main function to launch Neural Architecture Search (NAS), as Vertex ``tf_vision``'s.

Written for the Vertex AI NAS tools. Migrating it changes only its import lines:
``import cloud_nas_utils`` and ``from proxy_task import proxy_task_utils`` (in each module here)
become imports from ``proxytask.vertex``; ``tests/e2e/test_vertex_migration.py`` does exactly
that and checks nothing else differs.
"""

import argparse
import logging
import os
import sys

import cloud_nas_utils
import pyglove as pg
import search_spaces
import train_lib


def create_arg_parser():
    """Creates arg parser."""
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--training_data_path", type=str, required=True)
    parser.add_argument("--nas_params_str", type=str, help="Nas params str passed by NAS.")
    parser.add_argument(
        "--params_override", type=str, default="", help="train_steps=600,validation_interval=60"
    )
    parser.add_argument("--job-dir", type=str, help="Job output directory.")
    parser.add_argument("--retrain_search_job_dir", type=str)
    parser.add_argument("--retrain_search_job_trials", type=str)
    parser.add_argument(
        "--retrain_use_search_job_checkpoint", type=cloud_nas_utils.str_2_bool, default=False
    )
    parser.add_argument("--target_device_latency_ms", type=float, default=0.0)
    parser.add_argument("--target_memory_mb", type=int, default=0)
    parser.add_argument(
        "--multiple_eval_during_search", type=cloud_nas_utils.str_2_bool, default=False
    )
    parser.add_argument("--skip_nan_error", type=cloud_nas_utils.str_2_bool, default=False)
    parser.add_argument("--search_space", type=str, default="tiny_mlp")
    return parser


def create_params(flags):
    """The training config: defaults overridden by ``--params_override``."""
    params = {"train_steps": 600, "validation_interval": 60}
    for item in filter(None, flags.params_override.split(",")):
        key, value = item.split("=", 1)
        params[key.strip()] = int(value)
    params["training_data_path"] = flags.training_data_path
    return params


def main(FLAGS):
    FLAGS.job_dir = cloud_nas_utils.get_job_dir_from_environment_if_exist(
        current_job_dir=FLAGS.job_dir
    )
    trial_id = cloud_nas_utils.get_trial_id_from_environment()
    hp_metric_tag = os.environ.get("CLOUD_ML_HP_METRIC_TAG", "")
    logging.info("Starting trial %s for hypertuning metric %s", trial_id, hp_metric_tag)

    if not FLAGS.nas_params_str:
        raise RuntimeError("FLAG nas_params_str cannot be empty.")
    if FLAGS.retrain_search_job_trials:
        FLAGS.nas_params_str = cloud_nas_utils.get_finetune_nas_params_str(
            retrain_search_job_trials=FLAGS.retrain_search_job_trials,
            retrain_search_job_dir=FLAGS.retrain_search_job_dir,
        )
    logging.info("nas_params_str is %s", FLAGS.nas_params_str)
    if not os.path.exists(FLAGS.job_dir):
        os.makedirs(FLAGS.job_dir)

    tunable_functor = cloud_nas_utils.parse_and_save_nas_params_str(
        search_spaces.get_search_space(FLAGS.search_space), FLAGS.nas_params_str, FLAGS.job_dir
    )
    tunable_object = tunable_functor()
    serialized_tunable_object = pg.to_json_str(
        tunable_object, json_indent=2, hide_default_values=False
    )
    serialized_tunable_object_file = os.path.join(
        FLAGS.job_dir, f"{FLAGS.search_space}_serialized_tunable_object.json"
    )
    if not os.path.exists(serialized_tunable_object_file):
        with open(serialized_tunable_object_file, "w") as f:
            f.write(serialized_tunable_object)

    params = create_params(FLAGS)
    if FLAGS.retrain_use_search_job_checkpoint:
        prev_checkpoint_dir = cloud_nas_utils.get_retrain_search_job_model_dir(
            retrain_search_job_trials=FLAGS.retrain_search_job_trials,
            retrain_search_job_dir=FLAGS.retrain_search_job_dir,
        )
        logging.info("Setting checkpoint to %s.", prev_checkpoint_dir)
        params["init_checkpoint"] = prev_checkpoint_dir

    session = cloud_nas_utils.CloudSession(model_dir=FLAGS.job_dir)
    try:
        train_lib.run_training(
            params=params,
            session=session,
            spec=tunable_object,
            model_dir=FLAGS.job_dir,
            target_latency_ms=FLAGS.target_device_latency_ms,
            target_memory=FLAGS.target_memory_mb,
            multiple_eval_during_search=FLAGS.multiple_eval_during_search,
            retrain_search_job_trials=FLAGS.retrain_search_job_trials,
        )
        cloud_nas_utils.write_job_status(FLAGS.job_dir, cloud_nas_utils.JOB_STATUS_SUCCESS)
    except Exception as e:  # pylint: disable=broad-except
        if "NaN" in str(e):
            cloud_nas_utils.write_job_status(
                FLAGS.job_dir, cloud_nas_utils.JOB_STATUS_FAILED_WITH_NAN_ERROR
            )
            if not FLAGS.skip_nan_error:
                raise
        else:
            cloud_nas_utils.write_job_status(FLAGS.job_dir, cloud_nas_utils.JOB_STATUS_FAILED)
            raise


if __name__ == "__main__":
    cloud_nas_utils.setup_logging()
    flags = create_arg_parser().parse_args()
    sys.exit(main(flags))
