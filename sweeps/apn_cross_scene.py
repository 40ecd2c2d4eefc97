"""APN, Table 3: cross-scene detection.

Train on GenImage (ImageNet scene) SD v1.4, ADM or Midjourney; test on the same subset's
GenImage val images (ImageNet) and on the same generator in DiffusionForensics' LSUN-Bedroom
scene (§4.1.3). With --data (GenImage) pass the DF root with `--test-data PATH`.
Offline, DF is the synthetic stand-in written beside the synthetic GenImage one.
"""
from aigid.methods import APN
from aigid.data.test_root import SYNTHETIC_TEST_ROOT
from aigid.report import final, rows_table
from trainables.launcher import main
from trainables.sweep import Offline, Option, Sweep, grid

TRAIN_SUBSETS = ["sdv14", "adm", "midjourney"]  # Table 3 column groups
PAPER = {"sdv14": (99.9, 100.0), "adm": (99.9, 99.2), "midjourney": (99.1, 99.2)}  # APN, ImageNet / LSUN


def table(trials):
    return rows_table(trials, "train_subset", TRAIN_SUBSETS, {
        "ImageNet ACC (%)": lambda s, here: final(here, "test/mean/acc"),
        "LSUN ACC (%)": lambda s, here: final(here, "test_lsun_bedroom/mean/acc"),
        "paper ImageNet": lambda s, _: str(PAPER[s][0]), "paper LSUN": lambda s, _: str(PAPER[s][1])},
        title="APN Table 3 — ACC (%) on the training generator's ImageNet (GenImage) images, and on LSUN-Bedroom "
              "(DF) the mean of the real images' and the generator's fake images' ACC (§4.3)")


SWEEP = Sweep(
    name="apn_cross_scene",
    method=APN,
    plan=grid(train_subset=TRAIN_SUBSETS),
    fixed={"test_in_domain_only": True, "test_root": Offline(None, SYNTHETIC_TEST_ROOT)},
    options=(Option("--test-data", "test_root", "the DiffusionForensics root tested across scenes (LSUN-Bedroom)",
                    path=True, required_with_data=True),),
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
