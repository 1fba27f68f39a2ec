"""The latency calculator: times one exported model and prints its model metrics.

Run by ``proxytask latency-worker --protocol vertex`` with the trial's ``saved_model`` dir as
its last argument (under the Vertex tools, ``CloudGpuMetricsEvaluator.evaluate_saved_model``
does this for each running trial's saved model).
"""

import json
import logging
import sys

import cloud_nas_utils
import tiny_mlp


def main(argv):
    saved_model_path = argv[-1]
    latency = tiny_mlp.time_inference(saved_model_path)
    model_metrics = {"latency_in_milliseconds": latency, "device_type": "CPU", "model_memory": 0}
    logging.info("Model metrics are %s", model_metrics)
    print(json.dumps(model_metrics))
    return 0


if __name__ == "__main__":
    cloud_nas_utils.setup_logging()
    sys.exit(main(sys.argv))
