"""bert.compile: the model really goes through Dynamo and Inductor (graphs captured and compiled, counted), the
compiled model answers what the eager one does, and a training objective whose row count moves is not compiled anew
for every value."""

import torch
import torch._inductor.compile_fx
from torch._dynamo.utils import counters

from bert import BertConfig, BertModel
from bert.compile import compile_for_inference, compile_for_training
from bert.heads import BertForPreTraining
from bert.pretraining.loss import IGNORE_INDEX, PretrainingObjective


def count_inductor_compilations(monkeypatch) -> list[int]:
    """Record every graph handed to Inductor (the default backend imports compile_fx when it is called): a list
    that grows by one per compiled graph."""
    compiled: list[int] = []
    compile_fx = torch._inductor.compile_fx.compile_fx

    def recording_compile_fx(graph, *args, **kwargs):
        compiled.append(len(list(graph.graph.nodes)))
        return compile_fx(graph, *args, **kwargs)

    monkeypatch.setattr(torch._inductor.compile_fx, "compile_fx", recording_compile_fx)
    return compiled


def test_compiled_model_is_compiled_by_inductor_and_matches_eager_on_padded_and_dense_batches(monkeypatch):
    torch._dynamo.reset()
    counters.clear()
    compiled_graphs = count_inductor_compilations(monkeypatch)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=32)
    eager = BertModel(config).eval()
    twin = BertModel(config)
    twin.load_state_dict(eager.state_dict())
    compiled = compile_for_inference(twin)
    input_ids = torch.randint(5, 100, (3, 12))
    mask = torch.ones_like(input_ids)
    mask[1, 7:] = 0
    with torch.inference_mode():
        for batch in ({"input_ids": input_ids}, {"input_ids": input_ids, "attention_mask": mask}):
            graphs_before = len(compiled_graphs)
            expected, actual = eager(**batch), compiled(**batch)
            assert len(compiled_graphs) > graphs_before  # this input shape was compiled, not run eagerly
            torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(actual.pooler_output, expected.pooler_output, atol=1e-5, rtol=1e-5)
    assert counters["frames"]["ok"] >= 2 and counters["stats"]["unique_graphs"] == len(compiled_graphs)
    assert max(compiled_graphs) > 50  # whole layers in a graph, not a few stray operations


def test_training_compile_compiles_once_more_then_never_as_the_masking_cap_falls(monkeypatch):
    """``--compile`` with a falling masking rate: the MLM head's row count (an int attribute of the objective) moves
    every few steps, 64 → 32 a sequence over a 50% → 25% run. One recompile makes it symbolic; a constant would
    compile again for each value (and print a warning at Dynamo's limit of 8). (2 masked a
    sequence, so that the padding rows are never 0 or 1, sizes Dynamo specialises on.)"""
    torch._dynamo.reset()
    counters.clear()
    compiled_graphs = count_inductor_compilations(monkeypatch)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    objective = PretrainingObjective(BertForPreTraining(config), None, predictions_per_example=12)
    compiled = compile_for_training(objective)
    input_ids = torch.randint(5, 100, (2, 16))
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, :2] = input_ids[:, :2]  # 2 masked a sequence: fewer than every cap below
    batch = {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids),
             "attention_mask": torch.ones_like(input_ids), "labels": labels,
             "next_sentence_label": torch.zeros(2, dtype=torch.long)}
    after = []
    for cap in range(12, 7, -1):
        objective.predictions_per_example = cap
        eager = PretrainingObjective.forward(objective, **batch)
        sums = compiled(**batch)
        torch.testing.assert_close(sums.loss, eager.loss, atol=1e-5, rtol=1e-5)
        after.append(counters["frames"]["total"])  # frames Dynamo has translated (compiled or compiled again)
    assert compiled_graphs  # compiled by Inductor, not run eagerly
    assert after[-1] == after[1], f"frames compiled after each new cap: {after}"
