"""The search space, defined with PyGlove as the Vertex AI NAS search-space modules do.

``get_search_space(name)`` is what the trainer's ``main()`` calls; proxytask samples the
same space through ``--search-space tests.vertex_trainer.search_spaces:tiny_mlp_search_space``.
"""

import pyglove as pg


@pg.symbolize
class MlpSpec:
    """What the model builder reads: the sampled architecture."""

    def __init__(self, hidden_units, num_layers, activation, learning_rate):
        self.hidden_units = hidden_units
        self.num_layers = num_layers
        self.activation = activation
        self.learning_rate = learning_rate


@pg.functor
def build_mlp_spec(hidden_units, num_layers, activation, learning_rate):
    return MlpSpec(hidden_units, num_layers, activation, learning_rate)


def tiny_mlp_search_space():
    """A functor with PyGlove choices, as ``tunable_spinenet.build_tunable_block_specs``."""
    return build_mlp_spec(
        hidden_units=pg.oneof([4, 8, 16, 32, 64, 128]),
        num_layers=pg.oneof([1, 2]),
        activation=pg.oneof(["relu", "tanh"]),
        learning_rate=pg.oneof([0.02, 0.05, 0.2]),
    )


def get_search_space(search_space):
    """The search space by name, as the reference trainers' ``search_spaces`` module."""
    if search_space == "tiny_mlp":
        return tiny_mlp_search_space()
    raise ValueError(f"Unknown search space: {search_space}")
