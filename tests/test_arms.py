"""The arms of the study and their lineage keys (pdlib.arms)."""

import pytest

from pdlib import arms, models, pipeline


def test_every_row_of_tables_2_and_4_and_fig_6_is_an_arm():
    table2 = [arms.ARMS[n].label for n in arms.ARM_GROUPS["table2"]]
    assert len(table2) == 20 and "Progressive Distill (EfficientNet-B7)" in table2 and "Vgg-16" in table2
    assert len(arms.ARM_GROUPS["table4"]) == 8
    assert len(arms.ARM_GROUPS["fig6"]) == 10
    assert arms.ARMS["resnet50_3d"].member_keys() == ["r50_3d"]
    assert arms.ARMS["kd_b7_b3"].members == (arms.Member("efficientnet_b7"), arms.Member("efficientnet_b3"))
    pd_b0_b3_b7 = arms.ARMS["pd_b0_b3_b7"]
    assert [m.arch for m in pd_b0_b3_b7.members] == ["efficientnet_b0", "efficientnet_b3", "efficientnet_b7"]
    assert [m.noise for m in pd_b0_b3_b7.members] == [False, True, True]
    assert arms.ARMS["pd_b7_iter4"].iterations == 4


def test_arms_share_members_by_lineage():
    pd_b7 = arms.ARMS["pd_b7"].member_keys()
    assert pd_b7 == ["b7", "b7--b7mn", "b7--b7mn--b7mn"]
    assert arms.ARMS["ablation_b7_kd_mn"].member_keys() == pd_b7[:2]  # PD B7's first student
    assert arms.ARMS["ablation_b7_kd_mn_mi"].member_keys() == pd_b7
    assert arms.ARMS["pd_b7_iter2"].member_keys() == pd_b7
    assert arms.ARMS["ablation_b7_kd"].member_keys() == ["b7", "b7--b7"]  # KD: no noise
    assert arms.ARMS["pd_b7_b3"].member_keys()[:2] == pd_b7[:2]
    # the paper's study: 12 baselines, 4 KD students, 11 PD students
    assert len(arms.study_members(arms.PAPER_ARMS)) == 27
    assert arms.study_members(["kd_b7", "pd_b7", "efficientnet_b7"]) == ["b7", "b7--b7", "b7--b7mn", "b7--b7mn--b7mn"]


def test_a_teacher_with_noise_or_an_unknown_model_or_group_is_refused():
    with pytest.raises(ValueError, match="teacher"):
        arms.Arm((arms.Member("efficientnet_b0", noise=True),))
    with pytest.raises(ValueError, match="unknown architecture"):
        arms.progressive("efficientnet_b9", "efficientnet_b0")
    with pytest.raises(ValueError, match="at least one member"):
        arms.Arm(())
    with pytest.raises(ValueError, match="unknown group"):
        arms.baseline("efficientnet_b0", group="table2")


def test_the_controls_take_away_the_teacher_or_match_the_compute():
    noisy, matched = arms.ARMS["noisy_student_b7"], arms.ARMS["compute_matched_b7"]
    assert noisy.members == (arms.Member("efficientnet_b7", noise=True),) and noisy.member_keys() == ["b7mn"]
    # as many epochs as the three members of the PD-B7 chain together
    assert matched.members == (arms.Member("efficientnet_b7", epochs_factor=3),) and matched.final_key == "b7x3"
    assert {noisy.group, matched.group} == {"control"}
    assert not {"noisy_student_b7", "compute_matched_b7"} & set(arms.PAPER_ARMS)
    verdict = arms.ARM_GROUPS["verdict"]
    assert {"noisy_student_b7", "compute_matched_b7", "pd_b7", "efficientnet_b7", "pd_b3", "pd_b0_b3_b7",
            "kd_b7_b3", "pd_b7_b3"} <= set(verdict)
    # the verdict arms share their members: 15 trainings per seed
    assert len(arms.study_members(verdict)) == 15
    # a noisy first member only as a control; factors are positive integers and keys are canonical
    with pytest.raises(ValueError, match="teacher"):
        arms.Arm((arms.Member("efficientnet_b7", noise=True), arms.Member("efficientnet_b7")), group="control")
    with pytest.raises(ValueError, match="epochs_factor"):
        arms.Member("efficientnet_b7", epochs_factor=0)
    for bad in ("b7x1", "b7x0", "b7mnmn", "b7x03"):
        with pytest.raises(ValueError, match="unknown model"):
            arms.members_of_key(bad)
    assert arms.members_of_key("rx101--b7mnx2") == [arms.Member("resnext101_32x8d"),
                                                    arms.Member("efficientnet_b7", noise=True, epochs_factor=2)]


def test_member_keys_round_trip_through_the_arms():
    for name, arm in arms.ARMS.items():
        for key, member in zip(arm.member_keys(), arm.members):
            assert arms.members_of_key(key)[-1] == member, (name, key)
        assert arms.members_of_key(arm.final_key) == list(arm.members)
    assert arms.parent_key("b7--b7mn--b3mn") == "b7--b7mn"
    assert arms.parent_key("b7") is None
    with pytest.raises(ValueError, match="unknown model 'b9'"):
        arms.members_of_key("b7--b9")


def test_every_arm_belongs_to_one_chapter_by_its_attribute():
    groups = {name: arms.arm_group(name) for name in arms.ARMS}
    assert {groups[a] for a in arms.ARM_GROUPS["table4"]} == {"ablation"}
    assert {groups[a] for a in arms.ARM_GROUPS["fig6"]} == {"iteration"}
    assert {groups[a] for a in arms.ARM_GROUPS["table2"]} == {"baseline", "kd", "pd"}
    assert [a for a, g in groups.items() if g == "kd"] == ["kd_b0", "kd_b3", "kd_b7", "kd_b7_b3"]
    assert [a for a, g in groups.items() if g == "pd"] == ["pd_b0_b3_b7", "pd_b7_b3", "pd_b3", "pd_b7"]
    # baselines are single models; every other Table 2 arm distils at least once
    assert all(arms.ARMS[a].iterations == 0 for a, g in groups.items() if g == "baseline")
    assert all(arms.ARMS[a].iterations > 0 for a, g in groups.items() if g in ("kd", "pd"))
    # the Snakefile reads the group through the pipeline's namespace
    assert pipeline.arm_group is arms.arm_group


def test_explicit_attributes_replace_name_parsing():
    assert (arms.ARMS["resnet50_3d"].family, arms.ARMS["hybrid"].family, arms.ARMS["vgg11"].family) == (
        "3d", "hybrid", "2d")
    assert arms.ARMS["pd_b7_b3"].teacher_arch == "efficientnet_b7" and arms.ARMS["pd_b7_b3"].model == "EfficientNet-B3"
    assert [arms.ARMS[f"pd_b3_iter{i}"].model for i in range(5)] == ["EfficientNet-B3"] * 5
    steps = [arms.ARMS[a].step for a in arms.ARM_GROUPS["table4"]]
    assert steps == ["base", "+KD", "+KD +MN", "+KD +MN +MI"] * 2
    assert all(arms.ARMS[a].step == "" for a in arms.ARM_GROUPS["table2"])
    # every baseline's printed name is its model's
    assert all(arms.ARMS[a].model == arms.ARMS[a].label for a, arm in arms.ARMS.items() if arm.group == "baseline")


def test_final_member_teacher_and_arm_of_key():
    assert arms.final_member("pd_b7") == "b7--b7mn--b7mn"
    assert arms.arm_of_key("b7--b7mn--b7mn") == "pd_b7"  # the first arm that ends there
    assert arms.arm_of_key("b3") == "efficientnet_b3"
    assert [arms.teacher_arm(a) for a in ("kd_b0", "kd_b7_b3", "pd_b0_b3_b7")] == [
        "efficientnet_b0", "efficientnet_b7", "efficientnet_b0"]
    with pytest.raises(ValueError, match="no arm ends with member 'b9'"):
        arms.arm_of_key("b9")


def test_the_architectures_are_the_models_of_the_paper():
    assert tuple(arms.ARCHITECTURES) == models.PAPER_ARCHS
    shorts = list(arms.SHORT_NAMES.values())
    assert len(set(shorts)) == len(shorts)
    # no short name ends like a noisy student of another (keys must read back unambiguously)
    assert not [s for s in shorts if s.endswith(arms.NOISE_SUFFIX)]
