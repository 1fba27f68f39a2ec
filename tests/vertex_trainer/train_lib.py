"""Training functions, call for call as the Vertex AI NAS ``tf_vision/train_lib.py``."""

import json
import logging
import os
import time

import cloud_nas_utils
import tiny_mlp
from proxy_task import proxy_task_utils

ACCURACY_KEY = "accuracy"


def run_train_and_eval_in_loop(params, controller, model_dir="", accuracy_key=""):
    """Runs train and eval in for loop and returns the list of all the metrics."""
    metrics_list = []
    train_steps = params["train_steps"]
    eval_interval = params["validation_interval"]
    current_step = int(controller.global_step)
    logging.info("Start run_train_and_eval_in_loop from step: %d", current_step)
    while current_step < train_steps:
        if proxy_task_utils.get_stop_training(
            model_dir,
            end_training_cycle_step=current_step - 1,
            total_training_steps=train_steps,
        ):
            break
        interval = min(train_steps - current_step, eval_interval)
        next_step = current_step + interval
        tic = time.time()
        controller._train_n_steps(interval)
        toc = time.time()
        metrics = controller.evaluate()
        if not metrics:
            raise ValueError("Evaluation metrics are unavailable.")
        metrics_list.append(metrics)
        proxy_task_utils.update_trial_training_accuracy_metric(
            model_dir=model_dir,
            accuracy=float(metrics[accuracy_key]),
            begin_training_cycle_step=current_step,
            end_training_cycle_step=next_step - 1,
            training_cycle_time_in_secs=toc - tic,
            total_training_steps=train_steps,
        )
        current_step = int(controller.global_step)
        controller._maybe_save_checkpoint(check_interval=False)
    return metrics_list


def get_model_latency(controller, model_dir):
    """Exports the model and waits for the latency calculator, as ``latency_utils``."""
    saved_model_path = cloud_nas_utils.get_saved_model_dir(trial_job_dir=model_dir)
    controller.export_saved_model(saved_model_path)
    logging.info("Exported SavedModel at %s.", saved_model_path)
    logging.info("Waiting for latency computation.")
    model_stats = cloud_nas_utils.wait_and_retrieve_latency(saved_model_path)
    return model_stats["latency_in_milliseconds"], model_stats["model_memory"]


def run_training(
    params,
    session,
    spec,
    model_dir,
    target_latency_ms=0.0,
    target_memory=0,
    multiple_eval_during_search=True,
    retrain_search_job_trials=None,
):
    """Runs model training and reports the reward, as ``tf_vision``'s ``run_training``."""
    controller = tiny_mlp.Controller(
        spec, params["training_data_path"], model_dir, params.get("init_checkpoint")
    )
    accuracy_key = ACCURACY_KEY
    model_analysis = {}
    if multiple_eval_during_search or retrain_search_job_trials:
        metrics_list = run_train_and_eval_in_loop(
            params=params, controller=controller, model_dir=model_dir, accuracy_key=accuracy_key
        )
        logging.info("Metrics list is: %s.", metrics_list)
        metrics = max(metrics_list, key=lambda x: x[accuracy_key])
    else:
        controller._train_n_steps(params["train_steps"] - controller.global_step)
        metrics = controller.evaluate()
    model_analysis[accuracy_key + "_without_latency"] = float(metrics[accuracy_key])
    model_flops = float(sum(w.size for w in controller.model.weights)) / 1e9
    model_memory = 0

    if target_latency_ms > 0:
        latency_millisec, model_memory = get_model_latency(controller, model_dir)
        model_analysis["latency_milli_seconds"] = latency_millisec
        model_analysis["model_memory"] = model_memory
        proxy_task_utils.update_trial_training_latency_metric(
            model_dir=model_dir, latency=latency_millisec
        )
        original_accuracy = float(metrics[accuracy_key])
        metrics[accuracy_key] = cloud_nas_utils.compute_reward(
            accuracy=original_accuracy,
            target_latency_or_flops=target_latency_ms,
            measured_latency_or_flops=latency_millisec,
            target_memory=target_memory,
            measured_memory=model_memory,
        )

    class Measurement:
        def __init__(self, step, metrics):
            self.step = step
            self.metrics = metrics

    measurement = Measurement(
        step=int(controller.global_step), metrics={k: float(v) for k, v in metrics.items()}
    )
    if retrain_search_job_trials:
        model_analysis["nas_trial_id"] = cloud_nas_utils.get_search_trial_id_to_finetune(
            retrain_search_job_trials
        )
    session.report(measurement, model_flops=model_flops, other_metrics=model_analysis)
    with open(os.path.join(model_dir, "model_analysis.json"), "w") as fp:
        json.dump(model_analysis, fp, indent=2, sort_keys=True)
