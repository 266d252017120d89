"""bert.compile.compile_for_inference: the model really goes through Dynamo and Inductor (graphs captured and
compiled, counted), and the compiled model answers what the eager one does."""

import torch
import torch._inductor.compile_fx
from torch._dynamo.utils import counters

from bert import BertConfig, BertModel
from bert.compile import compile_for_inference


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
