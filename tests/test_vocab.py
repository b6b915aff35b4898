"""The study's vocabulary (pdlib.vocab) and the modules that must share it."""

import pytest

from pdlib import figures, paper, stats, vocab


def test_recist_categories_map_to_the_two_response_groups():
    assert vocab.RECIST_CATEGORIES == ("CR", "PR", "SD", "PD")
    assert set(vocab.RECIST_TO_RESPONSE) == set(vocab.RECIST_CATEGORIES)
    assert [vocab.recist_of_group(g) for g in vocab.RESPONSE_GROUPS] == [("CR", "PR"), ("SD", "PD")]
    assert (vocab.other_group("PR"), vocab.other_group("GR")) == ("GR", "PR")
    with pytest.raises(ValueError, match="unknown response group 'SD'"):
        vocab.recist_of_group("SD")
    with pytest.raises(ValueError, match="unknown response group 'X'"):
        vocab.other_group("X")


def test_the_categories_of_patients_csv():
    assert vocab.CATEGORIES["split"] == vocab.SPLITS == ("train", "test")
    assert vocab.CATEGORIES["recist"] == vocab.RECIST_CATEGORIES
    assert set(vocab.CATEGORIES) == {"split", "response", "recist", *vocab.COVARIATE_CATEGORIES}
    # every covariate category has its row of the paper's Table 1
    assert {(c, v) for c, values in vocab.COVARIATE_CATEGORIES.items() for v in values} == set(paper.TABLE1_ROWS)


def test_one_vocabulary_in_the_statistics_and_the_figures():
    assert stats.RECIST_CATEGORIES is vocab.RECIST_CATEGORIES
    assert figures.RECIST_ORDER is vocab.RECIST_CATEGORIES and figures.RESPONSE_ORDER is vocab.RESPONSE_GROUPS
    assert paper.TABLE1_COLUMNS == (("train", "GR"), ("train", "PR"), ("test", "GR"), ("test", "PR"))
