"""seg-eval's report wording: organ vs lesion classes, untrained classes, post-processing."""

from types import SimpleNamespace

from adversarial_seg.seg.eval_report import (
    class_warnings,
    components_text,
    one_structure_per_case,
    postprocessing_text,
)


def row(cls, ref_lesions, ref_voxels=10, pred_voxels=12):
    return {"class": cls, "ref_lesions": ref_lesions, "ref_voxels": ref_voxels, "pred_voxels": pred_voxels}


LESIONS = {"detected_lesions": 3, "reference_lesions": 4, "detection_sensitivity": 0.75,
           "false_positive_lesions_per_case": 43.75}  # fmt: skip


def test_an_organ_is_described_as_one_structure_not_as_lesions():
    gland = [row("gland", 1), row("gland", 1), row("gland", 0, ref_voxels=0)]
    assert one_structure_per_case(gland)
    text = components_text(LESIONS, organ=True, lesion_overlap=0.1)
    assert "lesion" not in text.lower()
    assert "43.75 extra components per case" in text and "3 of 4 cases" in text


def test_lesions_keep_the_lesion_wording():
    tumour = [row("tumour", 2), row("tumour", 1)]
    assert not one_structure_per_case(tumour)
    text = components_text(LESIONS, organ=False, lesion_overlap=0.1)
    assert "3 of 4 detected (sensitivity 0.750), 43.75 false-positive lesions per case." in text


def test_a_class_never_predicted_or_never_present_is_named():
    rows = [row("lesion", 1, pred_voxels=0), row("lesion", 0, ref_voxels=0, pred_voxels=0), row("gland", 1)]
    assert class_warnings("lesion", rows) == [
        "class 'lesion' was never predicted in any of 2 cases (its reference holds voxels in 1): the model did not learn it"
    ]
    assert class_warnings("gland", rows) == []
    absent = [row("tz", 0, ref_voxels=0), row("tz", 0, ref_voxels=0)]
    assert class_warnings("tz", absent) == [
        "class 'tz' is absent from every reference of the 2 cases: nothing to learn or score"
    ]


def test_the_post_processing_seg_predict_applies_is_stated():
    run = SimpleNamespace(postprocessing={"keep_largest_component": {"gland": True, "lesion": False}})
    text = postprocessing_text(SimpleNamespace(run=run))
    assert "keep-largest-component is on for gland and off for lesion" in text
    assert "seg-predict applies it" in text and "raw predictions" in text
    unfinished = postprocessing_text(SimpleNamespace(run=SimpleNamespace(postprocessing=None)))
    assert "seg-predict applies none" in unfinished
