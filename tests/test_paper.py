"""The paper's published numbers as printed (pdlib.paper)."""

import pandas as pd
import pytest
import yaml

from pdlib import audit, paper, twin
from pdlib.arms import ARM_GROUPS, ARMS


def test_metric_tables_are_read_as_fractions():
    table2 = paper.metric_table("Table 2")
    assert len(table2) == 40 and set(table2["split"]) == {"train", "test"}
    pd_b7 = table2[(table2["row"] == "Progressive Distill (EfficientNet-B7)") & (table2["split"] == "test")].iloc[0]
    assert (pd_b7["auc"], pd_b7["acc"], pd_b7["sen"], pd_b7["spe"]) == (0.87, 0.8571, 0.8571, 0.8571)
    table3 = paper.metric_table("Table 3")
    assert list(table3.columns) == ["row", "split", "acc", "sen", "spe"]  # no AUC for the clinicians
    assert table3.set_index("row").loc["C20", "spe"] == pytest.approx(0.7557)
    with pytest.raises(ValueError, match="no metric table 'Table 9'"):
        paper.metric_table("Table 9")


def test_paper_values_match_arm_labels():
    labels = [ARMS[a].label for a in ARM_GROUPS["table2"]]
    found = paper.values_for(labels, "Table 2")
    assert set(found["label"]) == set(labels)  # every Table 2 arm has its printed row
    ablation = paper.values_for([ARMS[a].label for a in ARM_GROUPS["table4"]], "Table 4")
    assert len(ablation) == 8  # "EfficientNetB7 +KD" matches the printed "EfficientNetB7 + KD"
    pd_b7 = found[(found["label"] == ARMS["pd_b7"].label) & (found["split"] == "test")].iloc[0]
    assert (pd_b7["auc"], round(pd_b7["acc"], 4)) == (0.87, 0.8571)
    assert paper.values_for(["no such row"], "Table 2").empty


def test_table1_as_printed_misprints_included():
    printed = paper.table1()
    assert list(printed.columns) == ["train_GR", "train_PR", "test_GR", "test_PR"]
    assert printed.index[0] == paper.TABLE1_AGE_ROW
    assert printed.loc[paper.TABLE1_AGE_ROW, "train_GR"] == "66.1(41–81)"
    assert printed.loc[("Sex", "Male"), "test_PR"] == "1(92.9%)"
    # every printed row is one of the cohort table's rows, in the same order
    assert list(printed.index[1:]) == list(paper.TABLE1_ROWS.values())


def test_another_transcription_is_read_and_bad_files_are_named(tmp_path):
    numbers = paper.load_paper_numbers()
    numbers["metric_tables"][0]["rows"] = {"Mine": {"test": ["0.5", "50", "40", "60"]}}
    mine = tmp_path / "numbers.yaml"
    mine.write_text(yaml.safe_dump(numbers, allow_unicode=True), encoding="utf-8")
    table = paper.metric_table("Table 2", paper.load_paper_numbers(mine))
    assert table.to_dict("records") == [{"row": "Mine", "split": "test", "auc": 0.5, "acc": 0.5, "sen": 0.4,
                                        "spe": 0.6}]
    with pytest.raises(ValueError, match="not found: .*absent.yaml"):
        paper.load_paper_numbers(tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="list.yaml must hold a mapping"):
        paper.load_paper_numbers(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1,\n")
    with pytest.raises(ValueError, match="bad.yaml is not valid YAML"):
        paper.load_paper_numbers(tmp_path / "bad.yaml")


def test_the_audit_reads_the_same_numbers():
    assert audit.load_paper_numbers is paper.load_paper_numbers
    pd.testing.assert_frame_equal(audit.audit_paper(), audit.audit_paper(paper.load_paper_numbers()))


def test_table1_reading_and_its_corrections():
    reading = paper.load_table1_reading()
    assert {"cells", "corrections"} <= set(reading) and set(reading["cells"]) == set(twin.CELLS)
    corrections = paper.table1_corrections()
    assert list(corrections.columns) == ["table", "cell", "row", "printed", "used", "reason"]
    assert len(corrections) == len(twin.TABLE1_CORRECTIONS) > 0
    assert (corrections["printed"].astype(str) != corrections["used"].astype(str)).all()
