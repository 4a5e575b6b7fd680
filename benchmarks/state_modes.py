"""How far are stateless and primed outputs from the original's warmed-up stateful outputs?

Uses the bilm-tf fixture model and sentences (`../shared/fixtures`). The reference is the original
stateful protocol over all 10 batches (3 rows each). Batches 0-4 serve as warm-up text for
`prime_states`; batches 5-9 are evaluated, so the primed state never saw the evaluated sentences.

    python benchmarks/state_modes.py [--fixtures ../shared/fixtures]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from modeling_elmo import ElmoTokenizer
from modeling_elmo.conversion.original import load_original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
    parser.add_argument("--fixtures", type=Path, default=default)
    args = parser.parse_args()
    model_dir = args.fixtures / "bilm-tf" / "model"
    sentences = json.loads((model_dir / "lm_embeddings_sentences.json").read_text())
    tokenizer = ElmoTokenizer()
    batches = [
        tokenizer(
            [sentences[k][i].split() for k in range(3)], is_split_into_words=True, padding=True, return_tensors="pt"
        )
        for i in range(10)
    ]
    model = load_original(model_dir / "options.json", model_dir / "lm_weights.hdf5")

    def layers(batch):
        with torch.no_grad():
            return model(**batch, output_hidden_states=True).hidden_states[1:]

    model.config.state_mode = "stateful"
    stateful = [layers(batch) for batch in batches]
    model.config.state_mode = "stateless"
    stateless = [layers(batch) for batch in batches[5:]]
    model.prime_states(batches[:5])
    model.config.state_mode = "primed"
    primed = [layers(batch) for batch in batches[5:]]

    print("| layer | mode | mean abs diff | max abs diff |")
    print("|---|---|---|---|")
    for layer in range(len(stateful[0])):
        for name, outputs in (("stateless", stateless), ("primed", primed)):
            diffs = []
            for index, output in enumerate(outputs, start=5):
                mask = batches[index]["attention_mask"].bool()
                diffs.append((output[layer] - stateful[index][layer])[mask].abs())
            values = torch.cat([d.reshape(-1) for d in diffs])
            print(f"| {layer + 1} | {name} | {values.mean():.4f} | {values.max():.4f} |")


if __name__ == "__main__":
    main()
