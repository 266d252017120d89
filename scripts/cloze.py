"""Forty everyday cloze sentences: does a masked-LM model have the answer among its top 5 guesses?

    python scripts/cloze.py [MODEL ...]        (default: the bundled demo model)

A quick, human-readable check of what fill-mask answers, used in the demo model's card (scripts/export_demo_model.py)
to compare models. Every sentence has one [MASK] and a small set of acceptable single-word answers.
"""

from __future__ import annotations

import argparse

CLOZE: list[tuple[str, set[str]]] = [
    ("The capital of France is [MASK].", {"paris"}),
    ("The sun rises in the [MASK].", {"east", "morning"}),
    ("I drink a cup of [MASK] every morning.", {"coffee", "tea"}),
    ("She opened the [MASK] and walked into the room.", {"door"}),
    ("Birds can [MASK] in the sky.", {"fly"}),
    ("He wrote a letter with a [MASK].", {"pen", "pencil"}),
    ("Monday, Tuesday, [MASK], Thursday.", {"wednesday"}),
    ("The grass is [MASK] in spring.", {"green"}),
    ("Ice is frozen [MASK].", {"water"}),
    ("We borrow books from the [MASK].", {"library"}),
    ("She is my mother's sister, so she is my [MASK].", {"aunt"}),
    ("The opposite of hot is [MASK].", {"cold"}),
    ("A week has seven [MASK].", {"days"}),
    ("He drove his [MASK] to work.", {"car", "truck"}),
    ("The doctor works in a [MASK].", {"hospital", "clinic"}),
    ("Children go to [MASK] to learn.", {"school"}),
    ("It was raining, so I took my [MASK].", {"umbrella", "coat"}),
    ("The sky is [MASK] on a clear day.", {"blue"}),
    ("Cows give us [MASK].", {"milk"}),
    ("I brush my [MASK] twice a day.", {"teeth", "hair"}),
    ("The train arrived at the [MASK] on time.", {"station"}),
    ("Two plus two equals [MASK].", {"four", "4"}),
    ("He plays the [MASK] in a rock band.", {"guitar", "drums", "bass", "piano", "keyboard"}),
    ("The moon shines at [MASK].", {"night"}),
    ("She cut the bread with a [MASK].", {"knife"}),
    ("Paris is a city in [MASK].", {"france"}),
    ("London is the capital of [MASK].", {"england", "britain"}),
    ("Winter is the coldest [MASK] of the year.", {"season", "time", "month", "part"}),
    ("The baby was [MASK] because it was hungry.", {"crying"}),
    ("We eat [MASK] at noon.", {"lunch"}),
    ("The Pacific is the largest [MASK] on Earth.", {"ocean"}),
    ("A dog is a kind of [MASK].", {"animal", "pet", "mammal"}),
    ("The plane landed at the [MASK].", {"airport"}),
    ("She bought some bread at the [MASK].", {"bakery", "store", "shop", "market", "supermarket"}),
    ("My father's father is my [MASK].", {"grandfather"}),
    ("The water was so cold that it turned to [MASK].", {"ice"}),
    ("He is a [MASK] who teaches mathematics at the university.", {"professor", "teacher", "lecturer"}),
    ("The [MASK] barked at the stranger.", {"dog", "dogs"}),
    ("It is dark in here, please turn on the [MASK].", {"light", "lights", "lamp"}),
    ("The river flows into the [MASK].", {"sea", "ocean", "lake"}),
]


def cloze_hits(model_name_or_path: str | None = None, top_k: int = 5) -> tuple[int, list[tuple[str, list[str]]]]:
    """How many of :data:`CLOZE` have an acceptable answer in the top ``top_k``, and every sentence's guesses."""
    from bert import BertForMaskedLM
    from bert.inference.pipelines import fill_mask, load

    model, tokenizer = load(BertForMaskedLM, model_name_or_path)
    hits, answers = 0, []
    for sentence, accepted in CLOZE:
        guesses = [c["token_str"] for c in fill_mask(model, tokenizer, sentence, top_k=top_k)[0]]
        hits += bool(accepted & set(guesses))
        answers.append((sentence, guesses))
    return hits, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=[None], help="checkpoint folders or names (default: demo model)")
    args = parser.parse_args()
    for name in args.models:
        hits, answers = cloze_hits(name)
        for sentence, guesses in answers:
            print(f"{sentence:60s} {' '.join(guesses)}")
        print(f"{name or 'default model'}: {hits}/{len(CLOZE)} with an accepted answer in the top 5")


if __name__ == "__main__":
    main()
