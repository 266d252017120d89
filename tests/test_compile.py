"""bert.compile.compile_for_inference: the compiled model answers what the eager one does."""

import torch

from bert import BertConfig, BertModel
from bert.compile import compile_for_inference


def test_compiled_model_matches_eager_outputs_on_padded_and_dense_batches():
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
            expected, actual = eager(**batch), compiled(**batch)
            torch.testing.assert_close(actual.last_hidden_state, expected.last_hidden_state, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(actual.pooler_output, expected.pooler_output, atol=1e-5, rtol=1e-5)
