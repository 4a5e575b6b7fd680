"""The `elmo` command line: `elmo convert` (more subcommands come with later features)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _convert(args: argparse.Namespace) -> None:
    from modeling_elmo.conversion.original import convert_original

    output_dir = convert_original(
        args.options, args.weights, args.output_dir, overwrite=args.overwrite, word_splitter=args.word_splitter
    )
    print(f"wrote {output_dir}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="elmo", description="ELMo as a Hugging Face transformers model.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    convert = commands.add_parser(
        "convert",
        help="convert an original bilm-tf ELMo (options.json + weights.hdf5) into a Hugging Face folder",
        description="Convert an original bilm-tf ELMo into a folder that AutoModel/AutoTokenizer load "
        "(also with trust_remote_code=True where this package is not installed).",
    )
    convert.add_argument("--options", required=True, help="the model's options.json")
    convert.add_argument("--weights", required=True, help="the model's weights.hdf5")
    convert.add_argument("--output-dir", required=True, help="folder to write (must be empty or absent)")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    convert.add_argument(
        "--word-splitter",
        choices=("moses", "whitespace"),
        default="moses",
        help="how the tokenizer splits raw text into words (default: moses, as the published models' data)",
    )
    convert.set_defaults(handler=_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `elmo` command; returns the exit status (2 for bad input, with a message on stderr)."""
    from modeling_elmo.conversion.original import ConversionError

    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except ConversionError as error:
        print(f"elmo {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
