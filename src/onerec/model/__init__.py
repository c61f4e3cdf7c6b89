"""OneRec generator: encoder over semantic-ID histories, decoder with a sparse-MoE FFN."""

from onerec.model.config import NAMED_SIZES, GeneratorConfig
from onerec.model.generator import DecodingState, GeneratorOutput, OneRecGenerator, token_logprobs
from onerec.model.loss import GeneratorLoss, generator_loss, next_token_loss
from onerec.model.moe import (
    DenseFeedForward,
    GroupedExperts,
    MoEFeedForward,
    MoEStats,
    TopKRouter,
    switch_aux_loss,
)
from onerec.model.sizes import ParameterCounts, parameter_counts, print_size_table, size_table
from onerec.model.targets import IGNORE_INDEX, session_decoder_sequences

__all__ = [
    "IGNORE_INDEX",
    "NAMED_SIZES",
    "DecodingState",
    "DenseFeedForward",
    "GeneratorConfig",
    "GeneratorLoss",
    "GeneratorOutput",
    "GroupedExperts",
    "MoEFeedForward",
    "MoEStats",
    "OneRecGenerator",
    "ParameterCounts",
    "TopKRouter",
    "generator_loss",
    "next_token_loss",
    "parameter_counts",
    "print_size_table",
    "session_decoder_sequences",
    "size_table",
    "switch_aux_loss",
    "token_logprobs",
]
