"""Ready-made outside pipelines the tests name by import path (tests.ecosystem.pipelines:ALBU_COMPOSE)."""

import albumentations as A
from monai.transforms import Compose, RandAffined, RandGaussianNoised

ALBU_COMPOSE = A.Compose([A.HorizontalFlip(p=0.5), A.Affine(rotate=(-20, 20), p=0.8)])
MONAI_DICT = Compose(
    [
        RandAffined(keys=["image", "label"], prob=0.8, rotate_range=0.3, mode=["bilinear", "nearest"]),
        RandGaussianNoised(keys=["image"], prob=0.5, std=0.05),
    ]
)
