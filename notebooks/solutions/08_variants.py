"""Lesson 8, exercise: ALBERT's factorised embeddings: V·E + E·H instead of V·H."""

from bert.variants.auto import auto_class, released_config


def embedding_saving(vocab: int, embedding: int, hidden: int) -> tuple[int, int]:
    """(parameters of a V × H table, of a V × E table plus an E × H projection), weights only."""
    return vocab * hidden, vocab * embedding + embedding * hidden


if __name__ == "__main__":
    config = released_config("albert-base-v2")
    V, E, H = config.vocab_size, config.embedding_size, config.hidden_size
    full, factorised = embedding_saving(V, E, H)
    print(f"V = {V}, E = {E}, H = {H}: V·H = {full:,}, V·E + E·H = {factorised:,}, saving {full - factorised:,}")
    model = auto_class(config, "base")(config)
    word_table = model.embeddings.word_embeddings.weight
    projection = [p for name, p in model.named_parameters() if "embedding_hidden_mapping_in.weight" in name]
    assert word_table.numel() + projection[0].numel() == factorised
    assert full / factorised > 5
