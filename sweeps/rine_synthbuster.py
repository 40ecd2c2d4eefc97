"""RINE, Table 6 (§5.8): detecting commercial diffusion images (Synthbuster) with ten-crop testing.

§5.8 scores Synthbuster "due to the images' size" with "the ten-crop validation technique" and the
predictions averaged: `test_crops=10` scores torchvision's TenCrop (four corners and the centre, and
the same of the mirrored image, 224 px each) and averages P(fake) over the ten, each crop a cached
view set. The model is trained on ProGAN (the 4-class setting's best configuration, Table 1: the
paper does not say which class setting Table 6 uses) and scored on the test sets of `--test-data`
instead of the training root's. Where the paper is silent: Synthbuster ships fakes only (its reals are
RAISE photographs), so `--test-data` must be a dataset aigid scans with real and fake test images,
e.g. test/<generator>/{0_real,1_fake}/ (UFD layout) with the RAISE images in each 0_real.
Not run here: Table 6's second row, RINE trained on Corvi et al.'s latent-diffusion training set
([15]); aigid trains RINE on ProGAN class folders only, so score the authors' released LDM model
instead: `aigid eval rine --checkpoint model_ldm_trainable.pth --data <Synthbuster> --set test_crops=10`.
The paper's Table 6 numbers are not in the text aigid has (papers/rine.txt omits the table body), so
none are printed beside ours. Offline, the test set is a second synthetic UFD stand-in (another seed).
"""
from aigid.methods import RINE
from aigid.methods.rine.config import SYNTHETIC_TEST_ROOT
from aigid.metrics import subset_key
from aigid.report import averaged_note, final, render
from aigid.trials import finished, test_sets
from trainables.launcher import main
from trainables.sweep import Offline, Option, Sweep, grid


def table(trials):
    done = finished(trials)
    tests = test_sets(trials)
    rows = [["trained on", "metric", *tests, "AVG"]]
    for metric in ("acc", "ap"):
        rows.append(["ProGAN (4-class)", metric.upper(), *[final(done, subset_key(s, metric)) for s in tests],
                     final(done, subset_key("mean", metric))])
    return render(rows, title="RINE Table 6 — ACC / AP (%) on the --test-data sets, ten-crop (P(fake) averaged over "
                              "the 10 crops); its LDM-trained row is not trained here (aigid eval the authors' "
                              "model_ldm_trainable.pth) and the paper's numbers are not in our copy of the text; "
                              f"AVG: {averaged_note(trials, RINE.test_sets)}")


SWEEP = Sweep(
    name="rine_synthbuster",
    method=RINE,
    plan=grid(classes=[4]),
    fixed={"paper_config": 1, "test_crops": 10, "test_root": Offline(None, SYNTHETIC_TEST_ROOT)},
    options=(Option("--test-data", "test_root", "the dataset scored instead of the training root's test sets "
                    "(Synthbuster with RAISE reals, as test/<generator>/{0_real,1_fake}/)", path=True,
                    required_with_data=True),),
    table=table,
    doc=__doc__,
)

if __name__ == "__main__":
    main(SWEEP)
