"""Comma-separated options parse the same way in every pipeline subcommand, defaults included."""

import pytest

from sla.cli import build_parser
from sla_pipeline.cli_args import comma_list


def test_comma_list_drops_blanks_and_spaces():
    assert comma_list(" gsm, mbpp,,") == ("gsm", "mbpp")
    assert comma_list("") == ()


@pytest.mark.parametrize("argv, field, given", [
    (["eval", "--out", "o", "--sets"], "sets", ("gsm", "mbpp-validation")),
    (["train", "--bank", "b", "--out", "o", "--domains"], "domains", ("gsm", "mbpp")),
    (["calibrate", "h", "--bank", "b", "--domains"], "domains", ("gsm", "ifeval")),
    (["bank", "grow", "--jobs"], "jobs", ("train-samples", "train-forks")),
    (["data", "--out", "o", "--stages"], "stages", ("pairs",)),
    (["judge-check", "--out", "o", "--methods"], "methods", ("pairwise",)),
])
def test_each_command_gets_a_tuple_given_or_default(argv, field, given):
    parser = build_parser()
    default = getattr(parser.parse_args(argv[:-1]), field)
    assert isinstance(default, tuple) and default and all(name == name.strip() and name for name in default)
    assert getattr(parser.parse_args([*argv, " , ".join(given) + ","]), field) == given
